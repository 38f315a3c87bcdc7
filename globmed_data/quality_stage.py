"""The quality stage: run the rules on every active entry whose content, language decision or
rule settings changed, and keep the decision (passed, score, reasons, flags, metrics)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import polars as pl

from globmed_data.batches import entry_frames
from globmed_data.config import LoadedConfig
from globmed_data.quality_rules import evaluate, settings_hash
from globmed_data.warehouse import Warehouse, now

CHUNK = 50_000
_READ = """SELECT e.entry_id, e.content_hash, e.source, e.task,
                  coalesce(l.language, e.language) AS language, e.question, e.context, e.options,
                  e.answer_indices, e.label, e.premise, e.hypothesis, e.answer, e.rationale,
                  l.decision AS langid_decision, l.agrees AS langid_agrees
           FROM b_ids JOIN entries e USING (entry_id)
           LEFT JOIN langid_results l ON l.entry_id = e.entry_id AND l.content_hash = e.content_hash
           ORDER BY e.entry_id"""


def pending(wh: Warehouse, rules_hash: str) -> list[str]:
    return [
        r[0]
        for r in wh.query(
            """SELECT e.entry_id FROM entries e
               LEFT JOIN quality_results q USING (entry_id)
               LEFT JOIN langid_results l USING (entry_id)
               WHERE e.status = 'active' AND (q.entry_id IS NULL OR q.content_hash <> e.content_hash
                     OR q.settings_hash <> ? OR l.decided_at > q.decided_at)
               ORDER BY e.entry_id""",
            [rules_hash],
        )
    ]


def run_quality(
    wh: Warehouse, loaded: LoadedConfig, run_id: str, log: Callable[[str], None] | None = None
) -> dict[str, object]:
    started = time.perf_counter()
    settings = loaded.config.quality
    rules_hash = settings_hash(settings)
    ids = pending(wh, rules_hash)
    reasons: Counter[str] = Counter()
    passed = 0
    for done, batch in entry_frames(wh, ids, _READ, CHUNK):
        decided = evaluate(batch, settings).with_columns(
            content_hash=batch.get_column("content_hash"),
            settings_hash=pl.lit(rules_hash),
            run_id=pl.lit(run_id),
            decided_at=pl.lit(now()),
        )
        wh.upsert("quality_results", decided.to_arrow())
        passed += int(decided.get_column("passed").sum())
        reasons.update(decided.get_column("reasons").explode().drop_nulls().to_list())
        if log:
            log(f"quality: {done}/{len(ids)} entries checked")
    total, total_passed = wh.query("SELECT count(*), count(*) FILTER (WHERE passed) FROM v_quality")[0]
    return {
        "checked": len(ids),
        "passed": passed,
        "rejected": len(ids) - passed,
        "reasons": dict(reasons.most_common()),
        "totals": {"entries": int(total), "passed": int(total_passed), "rejected": int(total - total_passed)},
        "seconds": round(time.perf_counter() - started, 3),
    }
