"""The language-ID stage: decide every active entry whose content or settings changed.

Per batch: one streamed read, the entry texts prepared in one compiled pass, fastText compiled
(fasttext_native) on a thread per core, second opinions for the few texts it is unsure of, the
policy over whole columns, and the rows handed to a background writer.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, cast

import polars as pl
import pyarrow as pa

from globmed_data import faults
from globmed_data.config import LoadedConfig, PipelineConfig
from globmed_data.ids import stable_hash
from globmed_data.langid.identify import (
    LANGID_VERSION,
    LanguageIdentifier,
    default_model_path,
    entry_text_expr,
    judge_frame,
    prepare_frame,
)
from globmed_data.langid.settings import LangIdSettings
from globmed_data.pipeline.executor import BatchMap, Executor
from globmed_data.pipeline.stage import Context, Report
from globmed_data.prefetch import prefetched
from globmed_data.warehouse import Warehouse, now

CHUNK = 16_384  # small enough that writing one batch overlaps detecting the next
RESULT_SCHEMA = pa.schema(
    [
        ("entry_id", pa.string()),
        ("content_hash", pa.string()),
        ("settings_hash", pa.string()),
        ("declared_language", pa.string()),
        ("detected_language", pa.string()),
        ("confidence", pa.float64()),
        ("detector", pa.string()),
        ("runner_up", pa.string()),
        ("runner_up_confidence", pa.float64()),
        ("script", pa.string()),
        ("letters", pa.int32()),
        ("agrees", pa.bool_()),
        ("decision", pa.string()),
        ("language", pa.string()),
        ("run_id", pa.string()),
        ("decided_at", pa.timestamp("us", tz="UTC")),
    ]
)
# Active entries whose content or settings changed since their last decision.
_PENDING = """FROM entries e LEFT JOIN langid_results l USING (entry_id)
              WHERE e.status = 'active' AND (l.entry_id IS NULL OR l.content_hash <> e.content_hash
                    OR l.settings_hash <> ?)"""
_READ = f"""SELECT e.entry_id, e.content_hash, e.source, e.task, e.language, e.question, e.context,
                   e.options, e.premise, e.hypothesis, e.answer
            {_PENDING} ORDER BY e.entry_id"""
_DROP_STALE = f"DELETE FROM langid_results WHERE entry_id IN (SELECT e.entry_id {_PENDING})"


def identifier_options(settings: LangIdSettings, loaded: LoadedConfig) -> dict[str, Any]:
    return {
        "model_path": str(loaded.resolve(settings.model)) if settings.model else None,
        "second_opinion": tuple(settings.second_opinion),
        "coverage": settings.coverage,
        "confident": settings.confident,
        "min_letters": settings.min_letters,
        "max_chars": settings.max_chars,
    }


def stage_hash(settings: LangIdSettings, loaded: LoadedConfig) -> str:
    """Changes when the model file, the detectors, a threshold or a policy changes."""
    model = Path(identifier_options(settings, loaded)["model_path"] or default_model_path())
    size = model.stat().st_size if model.is_file() else -1
    return stable_hash("langid", LANGID_VERSION, str(model), str(size), settings.model_dump_json())


def pending(wh: Warehouse, settings_hash: str) -> int:
    return int(wh.query(f"SELECT count(*) {_PENDING}", [settings_hash])[0][0])


def read_batches(wh: Warehouse, settings_hash: str, max_chars: int) -> Iterator[tuple[pl.DataFrame, ...]]:
    """The pending entries in batches, each with its prepared texts."""
    for table in wh.stream_arrow(_READ, [settings_hash], CHUNK):
        frame = cast(pl.DataFrame, pl.from_arrow(table))
        yield frame, _prepared(frame, max_chars)


def _prepared(frame: pl.DataFrame, max_chars: int) -> pl.DataFrame:
    """The batch's entry texts, prepared for detection."""
    return prepare_frame(frame.select(entry_text_expr()).to_series(), max_chars)


@cache
def _identifier(options: tuple[tuple[str, Any], ...]) -> LanguageIdentifier:
    """One identifier per process and options: a worker loads the models once, not per batch."""
    return LanguageIdentifier(**dict(options))


def decide_table(
    table: pa.Table,
    options: tuple[tuple[str, Any], ...],
    settings: LangIdSettings,
    settings_hash: str,
    run_id: str,
    threads: int | None,
) -> pa.Table:
    """One batch as read from the warehouse, prepared, detected and judged. A pure map (no
    warehouse), so a worker process or a Ray task runs it as well as the run's process."""
    ident = _identifier(options)
    frame = cast(pl.DataFrame, pl.from_arrow(table))
    prepared = _prepared(frame, ident.max_chars)
    return decide_batch(frame, prepared, ident, settings, settings_hash, run_id, threads or 1)


def decide_batch(
    frame: pl.DataFrame,
    prepared: pl.DataFrame,
    ident: LanguageIdentifier,
    settings: LangIdSettings,
    settings_hash: str,
    run_id: str,
    threads: int = 1,
) -> pa.Table:
    """Detect and judge one batch of entries (`prepared`: its texts, from prepare_frame); the
    rows for langid_results."""
    declared = frame.get_column("language")
    detections = ident.detect_frame(prepared, declared, threads)
    sources = frame.get_column("source")
    policies = {s: settings.policy(s) for s in sources.unique().to_list()}
    supported = {lang: ident.supports(lang) for lang in declared.unique().to_list()}
    detections = detections.with_columns(
        declared=declared,
        policy=sources.replace_strict(policies, return_dtype=pl.String),
        supported=declared.replace_strict(supported, return_dtype=pl.Boolean),
        run_id=pl.lit(run_id),
        settings_hash=pl.lit(settings_hash),
        decided_at=pl.lit(now()),
    )
    detections = detections.hstack(judge_frame(detections, settings.min_confidence))
    table = detections.with_columns(
        entry_id=frame["entry_id"],
        content_hash=frame["content_hash"],
        declared_language="declared",
        detected_language="language",
        language="language_out",
        confidence=pl.col("confidence").round(6),
        runner_up_confidence=pl.col("runner_up_confidence").round(6),
    ).select(RESULT_SCHEMA.names)
    return table.to_arrow().cast(RESULT_SCHEMA)


def run_langid(
    wh: Warehouse,
    loaded: LoadedConfig,
    run_id: str,
    log: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Detect and decide; returns counts for this run (checked) and over all active entries.
    Batches are read here, decided here (on `langid.workers` threads) or by the executor's
    workers (one thread each, in the order read), and written here."""
    started = time.perf_counter()
    settings = loaded.config.langid
    settings_hash = stage_hash(settings, loaded)
    todo = pending(wh, settings_hash)
    this_run: Counter[str] = Counter()
    done = 0
    if progress:
        progress(0, todo)
    if todo:
        options = identifier_options(settings, loaded)
        batches = BatchMap(executor, todo, loaded.config.executor.min_task_entries)
        # The pending entries' stale results go first, so the new ones are plain inserts (about
        # half the cost of replacing). A crash in between leaves those entries pending, nothing
        # else: the next run decides them.
        with wh.transaction() as con:
            con.execute(_DROP_STALE, [settings_hash])
        faults.point("langid.dropped")
        with wh.background_upserts(new_rows=True) as insert:
            if batches.executor.inline:
                decided_batches = _decided_here(wh, options, settings, settings_hash, run_id)
            else:
                tables = wh.stream_arrow(_READ, [settings_hash], batches.rows(CHUNK, CHUNK // 4))
                args = (tuple(sorted(options.items())), settings, settings_hash, run_id)
                decided_batches = batches.map(decide_table, tables, *args)
            for decided in decided_batches:
                insert("langid_results", decided)
                this_run.update(decided.column("decision").to_pylist())
                done += decided.num_rows
                faults.point("langid.batch")
                if log:
                    log(f"langid: {done}/{todo} entries decided")
                if progress:
                    progress(done, todo)
    totals = dict(wh.query("SELECT decision, count(*) FROM v_langid GROUP BY 1 ORDER BY 1"))
    return {
        "checked": done,
        "decisions": dict(sorted(this_run.items())),
        "totals": {k: int(v) for k, v in totals.items()},
        "seconds": round(time.perf_counter() - started, 3),
    }


def _decided_here(
    wh: Warehouse, options: dict[str, Any], settings: LangIdSettings, settings_hash: str, run_id: str
) -> Iterator[pa.Table]:
    """The batches decided in this process on `langid.workers` threads, the next batch read and
    prepared in the background while this one is detected."""
    ident = LanguageIdentifier(**options)
    threads = settings.workers or min(os.cpu_count() or 1, 8)
    for frame, prepared in prefetched(read_batches(wh, settings_hash, ident.max_chars)):
        yield decide_batch(frame, prepared, ident, settings, settings_hash, run_id, threads)


class LangIdStage:
    name = "langid"
    reads = ("entries", "langid_results")
    writes = ("langid_results",)
    decides_entries = True
    adds_entries = None

    def settings(self, config: PipelineConfig) -> LangIdSettings:
        return config.langid

    def settings_hash(self, loaded: LoadedConfig) -> str:
        return stage_hash(loaded.config.langid, loaded)

    def pending(self, wh: Warehouse, loaded: LoadedConfig) -> dict[str, int]:
        return {self.name: pending(wh, self.settings_hash(loaded))}

    def undecided(self, wh: Warehouse, settings_hash: str) -> int | None:
        return pending(wh, settings_hash)

    def run(self, context: Context) -> Report:
        c = run_langid(
            context.wh, context.loaded, context.run_id, context.log, context.progress, context.executor
        )
        decided = ", ".join(f"{k} {v}" for k, v in c["totals"].items())
        return Report(
            self.name, c, f"{c['checked']} entries decided in {c['seconds']:.1f}s; all entries: {decided}"
        )
