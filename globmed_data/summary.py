"""Counts over the warehouse: `globmed status`, run summaries and the flow's artifacts."""

from __future__ import annotations

import json
from typing import Any

from globmed_data.pipeline.curation import undecided
from globmed_data.warehouse import Warehouse

STATUS_JSON_VERSION = 1


def _pairs(wh: Warehouse, sql: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in wh.query(sql)}


def status(wh: Warehouse) -> dict[str, Any]:
    """The stable `status --json` object (documented in docs/cli.md)."""
    active = "FROM entries WHERE status = 'active'"
    total = wh.query(f"SELECT count(*) {active}")[0][0]
    last = wh.query_dicts(
        "SELECT run_id, flow_run_id, status, started_at, finished_at FROM runs "
        "ORDER BY started_at DESC LIMIT 1"
    )
    if last and last[0]["status"] == "running" and wh.read_only:
        # Read-only opens only while no process writes the file: a run still "running" was killed
        # (the next run records it so).
        last[0]["status"] = "crashed"
    stages = wh.query_dicts(
        "SELECT stage, source, status, seconds, counts FROM run_stages WHERE run_id = ? "
        "ORDER BY stage, source",
        [last[0]["run_id"]] if last else [""],
    )
    return {
        "version": STATUS_JSON_VERSION,
        "warehouse": str(wh.path),
        "schema_version": wh.schema_version(),
        "entries": int(total),
        "by_language": _pairs(wh, f"SELECT language, count(*) {active} GROUP BY 1 ORDER BY 1"),
        "by_task": _pairs(wh, f"SELECT task, count(*) {active} GROUP BY 1 ORDER BY 1"),
        "by_source": _pairs(wh, f"SELECT source, count(*) {active} GROUP BY 1 ORDER BY 1"),
        "by_split": _pairs(wh, f"SELECT split, count(*) {active} GROUP BY 1 ORDER BY 1"),
        "by_origin": _pairs(wh, f"SELECT origin, count(*) {active} GROUP BY 1 ORDER BY 1"),
        "by_source_language_task": [
            {"source": s, "language": lang, "task": t, "entries": int(n)}
            for s, lang, t, n in wh.query(
                f"SELECT source, language, task, count(*) {active} GROUP BY ALL ORDER BY ALL"
            )
        ],
        "vanished": int(wh.query("SELECT count(*) FROM entries WHERE status = 'vanished'")[0][0]),
        "quarantined": int(wh.query("SELECT count(*) FROM quarantine")[0][0]),
        "quarantine_by_reason": _pairs(wh, "SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 1"),
        "quarantine_by_source": _pairs(wh, "SELECT source, count(*) FROM quarantine GROUP BY 1 ORDER BY 1"),
        "langid": _pairs(wh, "SELECT decision, count(*) FROM v_langid GROUP BY 1 ORDER BY 1"),
        "quality": _quality_counts(wh),
        "dedup": _dedup_counts(wh),
        "curated": int(wh.query("SELECT count(*) FROM v_curated_entries")[0][0]),
        "undecided": undecided(wh),
        "versions": _latest_versions(wh),
        "translated": _translation_counts(wh),
        "sources": [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
            for row in wh.query_dicts(
                "SELECT source, kind, status, revision, files, active_entries, quarantined, error "
                "FROM v_sources ORDER BY source"
            )
        ],
        "last_run": (
            {
                **{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in last[0].items()},
                "stages": [
                    {**{k: v for k, v in s.items() if k != "counts"}, "counts": _stage_counts(s["counts"])}
                    for s in stages
                ],
            }
            if last
            else None
        ),
    }


def _dedup_counts(wh: Warehouse) -> dict[str, Any]:
    decisions = _pairs(wh, "SELECT decision, count(*) FROM dedup_members GROUP BY 1")
    return {
        "clusters": int(wh.query("SELECT count(DISTINCT cluster_id) FROM dedup_members")[0][0]),
        "duplicates": decisions.get("duplicate", 0),
        "duplicates_by_method": _pairs(
            wh,
            "SELECT method, count(*) FROM dedup_members WHERE decision = 'duplicate' GROUP BY 1 ORDER BY 1",
        ),
        "contaminated": decisions.get("contaminated", 0),
    }


def _quality_counts(wh: Warehouse) -> dict[str, Any]:
    checked, passed = wh.query("SELECT count(*), count(*) FILTER (WHERE passed) FROM v_quality")[0]
    return {
        "checked": int(checked),
        "passed": int(passed),
        "rejected": int(checked - passed),
        "rejected_by_reason": _pairs(
            wh, "SELECT reason, count(*) FROM v_quality_hits WHERE kind = 'reject' GROUP BY 1 ORDER BY 1"
        ),
        "flagged_by_reason": _pairs(
            wh, "SELECT reason, count(*) FROM v_quality_hits WHERE kind = 'flag' GROUP BY 1 ORDER BY 1"
        ),
    }


_STAGE_KEYS = (
    "checked",
    "duplicates",
    "contaminated",
    "passed",
    "rejected",
    "files",
    "files_unchanged",
    "records",
    "added",
    "updated",
    "unchanged",
    "quarantined",
    "vanished",
)


def _stage_counts(raw: str | None) -> dict[str, int]:
    counts = json.loads(raw) if raw else {}
    return {k: counts[k] for k in _STAGE_KEYS if k in counts}


# Quarantine rows of one source and/or reason (either may be None: all).
_QUARANTINE_OF = (
    "FROM quarantine WHERE ($source IS NULL OR source = $source) AND ($reason IS NULL OR reason = $reason)"
)


def quarantine_count(wh: Warehouse, source: str | None = None, reason: str | None = None) -> int:
    return int(wh.query(f"SELECT count(*) {_QUARANTINE_OF}", {"source": source, "reason": reason})[0][0])


def quarantine_rows(
    wh: Warehouse, source: str | None = None, reason: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    sql = (
        "SELECT source, file, locator, record_key, reason, detail, payload, payload_bytes, run_id "
        f"{_QUARANTINE_OF} ORDER BY source, file, locator"
    )
    params: dict[str, Any] = {"source": source, "reason": reason}
    if limit is not None:
        sql += " LIMIT $limit"
        params["limit"] = limit
    return wh.query_dicts(sql, params)


def run_table(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per source for this run's collect stage."""
    return [
        {
            "source": r["source"],
            "status": r["status"],
            "files": r["files"],
            "unchanged_files": r["files_unchanged"],
            "records": r["records"],
            "added": r["added"],
            "updated": r["updated"],
            "unchanged": r["unchanged"],
            "quarantined": r["quarantined"],
            "vanished": r["vanished"],
            "seconds": r["seconds"],
            "error": r["error"] or "",
        }
        for r in reports
    ]


def funnel(wh: Warehouse, repo_id: str) -> list[dict[str, Any]]:
    """Per source and language, how many active entries each stage let through: collected,
    language kept (not rejected by language ID), quality passed, kept by dedup (the curated
    view), exported (in the newest version of `repo_id`). The language is the one language ID
    settled on, else the declared one."""
    rows = wh.query_dicts(
        """WITH latest AS (
               SELECT version FROM dataset_versions WHERE repo_id = $repo
               ORDER BY created_at DESC LIMIT 1),
           exported AS (
               SELECT entry_id FROM dataset_version_entries
               WHERE repo_id = $repo AND version = (SELECT version FROM latest))
           SELECT e.source, coalesce(l.language, e.language) AS language,
                  count(*) AS collected,
                  count(*) FILTER (WHERE coalesce(l.decision, '') <> 'reject') AS language_kept,
                  count(g.entry_id) AS quality_passed,
                  count(c.entry_id) AS kept_by_dedup,
                  count(x.entry_id) AS exported
           FROM entries e
           LEFT JOIN langid_results l ON l.entry_id = e.entry_id AND l.content_hash = e.content_hash
           LEFT JOIN (SELECT entry_id FROM v_eligible_entries) g ON g.entry_id = e.entry_id
           LEFT JOIN (SELECT entry_id FROM v_curated_entries) c ON c.entry_id = e.entry_id
           LEFT JOIN exported x ON x.entry_id = e.entry_id
           WHERE e.status = 'active'
           GROUP BY ALL ORDER BY source, language""",
        {"repo": repo_id},
    )
    return [{k: (v if k in ("source", "language") else int(v)) for k, v in r.items()} for r in rows]


def _latest_versions(wh: Warehouse) -> list[dict[str, Any]]:
    """The newest version of each dataset repo (by creation time)."""
    rows = wh.query_dicts(
        "SELECT repo_id, version, status, entries, fingerprint, created_at, published_at, error "
        "FROM v_dataset_versions "
        "QUALIFY row_number() OVER (PARTITION BY repo_id ORDER BY created_at DESC) = 1 ORDER BY repo_id"
    )
    return [
        {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
        | {"entries": int(r["entries"])}
        for r in rows
    ]


def _translation_counts(wh: Warehouse) -> dict[str, Any]:
    """Translation outcomes: ok / rejected per target language, and reviews."""
    rows = wh.query("SELECT target_language, status, count(*) FROM translations GROUP BY ALL ORDER BY ALL")
    by_target: dict[str, dict[str, int]] = {}
    for lang, status, n in rows:
        by_target.setdefault(lang, {"ok": 0, "rejected": 0})[status] = int(n)
    reviews = dict(wh.query("SELECT review, count(*) FROM translations WHERE review IS NOT NULL GROUP BY 1"))
    return {
        "ok": sum(v["ok"] for v in by_target.values()),
        "rejected": sum(v["rejected"] for v in by_target.values()),
        "by_target": by_target,
        "reviews": {k: int(v) for k, v in sorted(reviews.items())},
    }
