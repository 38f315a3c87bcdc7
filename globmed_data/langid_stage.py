"""The language-ID stage: decide every active entry whose content or settings changed.

Per batch, the parent reads entries and prepares their texts (polars, then one compiled pass);
worker processes detect them (fastText holds the GIL, so each core adds its full rate); the
parent asks second opinions for the few texts fastText is unsure of, applies the policy over
whole columns and hands the rows to a background writer. The batches are pipelined: while the
workers detect one, the parent finishes the one before.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, cast

import polars as pl
import pyarrow as pa

from globmed_data.config import LangIdSettings, LoadedConfig
from globmed_data.fasttext_model import Ranked
from globmed_data.ids import stable_hash
from globmed_data.langid import (
    LANGID_VERSION,
    Detection,
    LanguageIdentifier,
    Prepared,
    default_model_path,
    detect_prepared_texts,
    entry_text_expr,
    judge_frame,
    prepare_frame,
    start_worker,
)
from globmed_data.warehouse import Warehouse, now

CHUNK = 16_384  # small enough that reading and writing one batch overlaps detecting the next
PARALLEL_MIN = 20_000  # fewer entries than this are not worth starting worker processes
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


Detected = tuple[list[list[Any]], list[tuple[int, Ranked]]]  # columns, unsure (position, top 3)


class Detector:
    """Detections (columns of Detection fields) of entry texts, in this process or across
    worker processes."""

    def __init__(self, options: dict[str, Any], workers: int) -> None:
        self.options, self.workers = options, workers
        self.pool: ProcessPoolExecutor | None = None
        if workers <= 1:
            start_worker(options)
            return
        # Spawned, never forked: the parent holds a DuckDB connection.
        self.pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_worker,
            initargs=(options,),
        )
        # The pool starts a process per submit until it has them all: start them now, with the
        # parent's __main__ hidden. Spawned processes re-import it, and it may be the CLI or a
        # script that imports the whole engine and Prefect (seconds of CPU each, on the cores
        # detection needs); the workers need globmed_data.langid only (and no numba: the texts
        # come prepared). One polars thread each: the workers already fill the cores.
        with _main_hidden(), _env(POLARS_MAX_THREADS="1"):
            for _ in range(workers):
                self.pool.submit(int)

    def submit(self, texts: list[Prepared], declared: list[str]) -> Callable[[], Detected]:
        """Start detecting; the returned function waits for the result."""
        if self.pool is None:
            done = detect_prepared_texts(texts, declared)
            return lambda: done
        size = -(-len(texts) // self.workers)
        try:
            parts = [
                self.pool.submit(detect_prepared_texts, texts[k : k + size], declared[k : k + size])
                for k in range(0, len(texts), size)
            ]
        except BrokenProcessPool:
            return self._in_process(texts, declared)
        return lambda: self._gather(parts, texts, declared)

    def _gather(self, parts: list[Future[Detected]], texts: list[Prepared], declared: list[str]) -> Detected:
        try:
            done = [part.result() for part in parts]
        except BrokenProcessPool as exc:
            # A worker died (killed for memory, or a __main__ that is not import-safe under
            # spawn): finish in this process rather than fail the stage.
            warnings.warn(f"langid worker processes failed ({exc}); detecting in-process", stacklevel=2)
            return self._in_process(texts, declared)()
        columns = [[v for columns, _ in done for v in columns[k]] for k in range(len(Detection._fields))]
        unsure, start = [], 0
        for part_columns, part_unsure in done:  # positions are the part's: shift them
            unsure += [(start + k, top) for k, top in part_unsure]
            start += len(part_columns[0])
        return columns, unsure

    def _in_process(self, texts: list[Prepared], declared: list[str]) -> Callable[[], Detected]:
        self.close()
        start_worker(self.options)
        done = detect_prepared_texts(texts, declared)
        return lambda: done

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


@contextmanager
def _env(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def pending(wh: Warehouse, settings_hash: str) -> int:
    return int(wh.query(f"SELECT count(*) {_PENDING}", [settings_hash])[0][0])


@contextmanager
def _main_hidden() -> Iterator[None]:
    """While processes are spawned, the parent's __main__ has no file or spec, so they do not
    import it (multiprocessing re-imports it from either). Nothing they run comes from it."""
    main = sys.modules["__main__"]
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class Batch:
    """One batch on its way through the pipeline: its texts handed to the detector."""

    def __init__(self, frame: pl.DataFrame, detector: Detector) -> None:
        self.frame = frame
        self.declared: list[str] = frame.get_column("language").to_list()
        texts = frame.select(entry_text_expr()).to_series()
        self.prepared = list(prepare_frame(texts, detector.options["max_chars"]).iter_rows())
        self.detected = detector.submit(self.prepared, self.declared)

    def detections(self, ident: LanguageIdentifier) -> list[list[Any]]:
        """The workers' detections, with second opinions asked here for the unsure texts: this
        process loads their models once, the workers never."""
        columns, unsure = self.detected()
        for k, top in unsure:
            det = ident.finish(*self.prepared[k], self.declared[k], top)
            for field, value in enumerate(det):
                columns[field][k] = value
        return columns


def decide_batch(
    batch: Batch, ident: LanguageIdentifier, settings: LangIdSettings, settings_hash: str, run_id: str
) -> pa.Table:
    d = batch.detections(ident)
    frame = pl.DataFrame(
        dict(zip(Detection._fields, d, strict=True)) | {"declared": batch.declared},
        schema=DETECTION_SCHEMA | {"declared": pl.String},
    )
    sources = batch.frame.get_column("source")
    policies = {s: settings.policy(s) for s in sources.unique().to_list()}
    supported = {lang: ident.supports(lang) for lang in set(batch.declared)}
    frame = frame.with_columns(
        policy=sources.replace_strict(policies, return_dtype=pl.String),
        supported=pl.col("declared").replace_strict(supported, return_dtype=pl.Boolean),
        run_id=pl.lit(run_id),
        settings_hash=pl.lit(settings_hash),
        decided_at=pl.lit(now()),
    )
    frame = frame.hstack(judge_frame(frame, settings.min_confidence))
    table = frame.with_columns(
        entry_id=batch.frame["entry_id"],
        content_hash=batch.frame["content_hash"],
        declared_language="declared",
        detected_language="language",
        language="language_out",
        confidence=pl.col("confidence").round(6),
        runner_up_confidence=pl.col("runner_up_confidence").round(6),
    ).select(RESULT_SCHEMA.names)
    return table.to_arrow().cast(RESULT_SCHEMA)


DETECTION_SCHEMA = {"language": pl.String, "confidence": pl.Float64, "detector": pl.String,
                    "runner_up": pl.String, "runner_up_confidence": pl.Float64, "script": pl.String,
                    "letters": pl.Int32}  # fmt: skip


def run_langid(
    wh: Warehouse, loaded: LoadedConfig, run_id: str, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Detect and decide; returns counts for this run (checked) and over all active entries."""
    started = time.perf_counter()
    settings = loaded.config.langid
    settings_hash = stage_hash(settings, loaded)
    todo = pending(wh, settings_hash)
    this_run: Counter[str] = Counter()
    done = 0
    if todo:
        options = identifier_options(settings, loaded)
        ident = LanguageIdentifier(**options)  # for supports(): which languages are covered
        workers = settings.workers or min(os.cpu_count() or 1, 8)
        detector = Detector(options, workers if todo >= PARALLEL_MIN else 1)
        waiting: Batch | None = None
        with ExitStack() as stack:
            stack.callback(detector.close)
            # Pipelined: batch k is handed to the workers before batch k-1 is judged, and
            # DuckDB writes in the background, so the parent's share overlaps the workers'.
            upsert = stack.enter_context(wh.background_upserts())
            tables = wh.stream_arrow(_READ, [settings_hash], CHUNK)
            frames = (cast(pl.DataFrame, pl.from_arrow(t)) for t in tables)
            for frame in itertools.chain(frames, [None]):
                batch = Batch(frame, detector) if frame is not None else None
                if waiting is not None:
                    table = decide_batch(waiting, ident, settings, settings_hash, run_id)
                    upsert("langid_results", table)
                    this_run.update(table.column("decision").to_pylist())
                    done += table.num_rows
                    if log:
                        log(f"langid: {done}/{todo} entries decided")
                waiting = batch
    totals = dict(wh.query("SELECT decision, count(*) FROM v_langid GROUP BY 1 ORDER BY 1"))
    return {
        "checked": done,
        "decisions": dict(sorted(this_run.items())),
        "totals": {k: int(v) for k, v in totals.items()},
        "seconds": round(time.perf_counter() - started, 3),
    }
