"""The quality report: pass rates per source, language and task, and hits per rule.

One structure feeds `globmed quality report` (text or JSON), `globmed status` and the
pipeline's Prefect artifact (markdown).
"""

from __future__ import annotations

from typing import Any

from globmed_data.quality.rules import RULES
from globmed_data.warehouse import Warehouse

GROUPINGS = ("source", "language", "task")


def _rate(passed: int, entries: int) -> float:
    return round(passed / entries, 4) if entries else 0.0


def quality_report(wh: Warehouse) -> dict[str, Any]:
    # One pass over each view: its totals and every grouping at once (GROUPING SETS), not a pass
    # per grouping (at 500k entries each pass of v_quality costs ~0.3 s, of v_quality_hits ~0.6 s).
    counts = wh.query(
        f"""SELECT grouping({", ".join(GROUPINGS)}), {", ".join(GROUPINGS)},
                   count(*), count(*) FILTER (WHERE passed)
            FROM v_quality GROUP BY GROUPING SETS ((), {", ".join(f"({k})" for k in GROUPINGS)})"""
    )
    everything = 2 ** len(GROUPINGS) - 1  # grouping() of the totals: every column rolled up
    total, passed = next((int(n), int(p)) for g, *_, n, p in counts if g == everything)
    report: dict[str, Any] = {
        "entries": total,
        "passed": passed,
        "rejected": total - passed,
        "pass_rate": _rate(passed, total),
    }
    for i, key in enumerate(GROUPINGS):
        only = everything - (1 << (len(GROUPINGS) - 1 - i))  # every column rolled up but this one
        rows = sorted(
            ((row[1 + i], int(row[-2]), int(row[-1])) for row in counts if row[0] == only),
            key=lambda r: (r[0] is None, r[0] or ""),  # as ORDER BY: nulls last
        )
        report[f"by_{key}"] = [
            {key: k, "entries": n, "passed": p, "rejected": n - p, "pass_rate": _rate(p, n)}
            for k, n, p in rows
        ]
    hits = wh.query(
        "SELECT grouping(source), source, kind, reason, count(*) FROM v_quality_hits "
        "GROUP BY GROUPING SETS ((kind, reason), (source, kind, reason))"
    )
    by_reason = sorted(((k, r, int(n)) for g, _, k, r, n in hits if g == 1), key=lambda x: (-x[2], x[1]))
    by_reason.sort(key=lambda x: x[0], reverse=True)  # stable: kind descending, then the above
    report["by_reason"] = [
        {
            "reason": reason,
            "group": RULES[reason].group if reason in RULES else "language",
            "kind": kind,
            "entries": n,
            "share": _rate(n, total),
        }
        for kind, reason, n in by_reason
    ]
    report["by_source_reason"] = [
        {"source": s, "reason": r, "kind": k, "entries": int(n)}
        for s, k, r, n in sorted((s, k, r, n) for g, s, k, r, n in hits if g == 0)
    ]
    report["langid"] = {
        str(k): int(v) for k, v in wh.query("SELECT decision, count(*) FROM v_langid GROUP BY 1 ORDER BY 1")
    }
    return report


def _table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        cells = [f"{r[c]:.1%}" if c in ("pass_rate", "share") else str(r[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Quality report",
        "",
        f"{report['entries']} entries checked: {report['passed']} passed, {report['rejected']} rejected "
        f"({report['pass_rate']:.1%} pass).",
        "",
    ]
    for key in GROUPINGS:
        lines += [
            f"## By {key}",
            "",
            *_table(report[f"by_{key}"], [key, "entries", "passed", "pass_rate"]),
            "",
        ]
    lines += ["## By rule (reject: excluded; flag: kept, marked)", ""]
    lines += (
        _table(report["by_reason"], ["reason", "group", "kind", "entries", "share"])
        if report["by_reason"]
        else ["No rule hits."]
    )
    if report["langid"]:
        lines += ["", "## Language ID decisions", ""]
        lines += _table(
            [{"decision": k, "entries": v} for k, v in report["langid"].items()], ["decision", "entries"]
        )
    return "\n".join(lines) + "\n"


def rejected_samples(
    wh: Warehouse, reason: str | None, source: str | None, limit: int
) -> list[dict[str, Any]]:
    """Entries hit by a rule (or any rejection), to read by eye."""
    return wh.query_dicts(
        """SELECT q.entry_id, q.source, q.language, q.task, q.passed, q.reasons, q.flags, q.metrics,
                  e.question, e.options, e.answer_indices, e.label, e.premise, e.hypothesis
           FROM v_quality q JOIN entries e USING (entry_id)
           WHERE ($reason IS NULL AND NOT q.passed
                  OR list_contains(q.reasons, $reason) OR list_contains(q.flags, $reason))
             AND ($source IS NULL OR q.source = $source)
           ORDER BY hash(q.entry_id) LIMIT $limit""",
        {"reason": reason, "source": source, "limit": limit},
    )
