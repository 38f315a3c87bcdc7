"""The language-ID stage: decide every active entry whose content or settings changed.

The parent prepares texts with polars (whole columns); detection and the policy decision run
in worker processes, because fastText holds the GIL and each core adds its full rate.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from globmed_data.batches import batched, entry_frames
from globmed_data.config import LangIdSettings, LoadedConfig
from globmed_data.ids import stable_hash
from globmed_data.langid import (
    LANGID_VERSION,
    Detection,
    LanguageIdentifier,
    Verdict,
    default_model_path,
    entry_text_expr,
    prepare_frame,
)
from globmed_data.warehouse import Warehouse, now

CHUNK = 50_000
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
_READ = """SELECT e.entry_id, e.content_hash, e.source, e.task, e.language, e.question, e.context,
                  e.options, e.premise, e.hypothesis, e.answer
           FROM b_ids JOIN entries e USING (entry_id) ORDER BY e.entry_id"""

Row = tuple[str, str, str]  # entry text, declared language, mismatch policy


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


_WORKER: tuple[LanguageIdentifier, float] | None = None


def _init_worker(options: dict[str, Any], min_confidence: float) -> None:
    global _WORKER
    _WORKER = (LanguageIdentifier(**options), min_confidence)


COLUMNS = (*Detection._fields, *Verdict._fields)


def _decide_part(rows: list[Row]) -> list[list[Any]]:
    """Prepare, detect and decide a part. The result is columnar (one list per field of
    Detection then Verdict): a few long lists pickle far cheaper than many small tuples."""
    assert _WORKER is not None
    ident, min_confidence = _WORKER
    texts, declared, policies = zip(*rows, strict=True) if rows else ((), (), ())
    prepared = prepare_frame(pl.Series(texts, dtype=pl.String), ident.max_chars)
    decided = [
        (*det, *verdict)
        for (clean, script, letters), lang, policy in zip(
            prepared.iter_rows(), declared, policies, strict=True
        )
        for det, verdict in [
            ident.decide(clean, script, letters, lang, policy, min_confidence=min_confidence)
        ]
    ]
    return [list(col) for col in zip(*decided, strict=True)] if decided else [[] for _ in COLUMNS]


class Decider:
    """Decides rows in this process, or across a pool of worker processes."""

    def __init__(self, options: dict[str, Any], min_confidence: float, workers: int) -> None:
        self.options, self.min_confidence, self.workers = options, min_confidence, workers
        self.pool: ProcessPoolExecutor | None = None
        if workers > 1:
            self.pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),  # never fork a process holding DuckDB
                initializer=_init_worker,
                initargs=(options, min_confidence),
            )
            # One polars thread per worker: the workers already fill the cores. Spawned
            # processes inherit the environment when they start, at the first submit.
            with _env(POLARS_MAX_THREADS="1"):
                for f in [self.pool.submit(time.sleep, 0.2) for _ in range(workers)]:
                    f.result()
        else:
            _init_worker(options, min_confidence)

    def decide(self, rows: list[Row]) -> dict[str, list[Any]]:
        """Columns named as the fields of Detection and Verdict, one value per row."""
        if self.pool is None:
            return dict(zip(COLUMNS, _decide_part(rows), strict=True))
        size = -(-len(rows) // (self.workers * 4))
        try:
            parts = list(self.pool.map(_decide_part, batched(rows, size)))
            return {name: [v for part in parts for v in part[k]] for k, name in enumerate(COLUMNS)}
        except BrokenProcessPool as exc:
            # A worker died (killed for memory, or a __main__ that is not import-safe under
            # spawn): finish in this process rather than fail the stage.
            warnings.warn(f"langid worker processes failed ({exc}); detecting in-process", stacklevel=2)
            self.close()
            _init_worker(self.options, self.min_confidence)
            return dict(zip(COLUMNS, _decide_part(rows), strict=True))

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


def pending(wh: Warehouse, settings_hash: str) -> list[str]:
    return [
        r[0]
        for r in wh.query(
            """SELECT e.entry_id FROM entries e LEFT JOIN langid_results l USING (entry_id)
               WHERE e.status = 'active' AND (l.entry_id IS NULL OR l.content_hash <> e.content_hash
                     OR l.settings_hash <> ?)
               ORDER BY e.entry_id""",
            [settings_hash],
        )
    ]


def decide_batch(
    batch: pl.DataFrame, decider: Decider, settings: LangIdSettings, settings_hash: str, run_id: str
) -> pa.Table:
    texts = batch.select(entry_text_expr()).to_series().to_list()
    declared = batch.get_column("language").to_list()
    policies = [settings.policy(s) for s in batch.get_column("source").to_list()]
    rows = list(zip(texts, declared, policies, strict=True))
    c = decider.decide(rows)
    return pa.table(
        {
            "entry_id": batch["entry_id"].to_arrow(),
            "content_hash": batch["content_hash"].to_arrow(),
            "settings_hash": pa.array([settings_hash] * len(rows), pa.string()),
            "declared_language": pa.array(declared, pa.string()),
            "detected_language": pa.array(c["language"], pa.string()),
            "confidence": pc.round(pa.array(c["confidence"], pa.float64()), 6),
            "detector": pa.array(c["detector"], pa.string()),
            "runner_up": pa.array(c["runner_up"], pa.string()),
            "runner_up_confidence": pc.round(pa.array(c["runner_up_confidence"], pa.float64()), 6),
            "script": pa.array(c["script"], pa.string()),
            "letters": pa.array(c["letters"], pa.int32()),
            "agrees": pa.array(c["agrees"], pa.bool_()),
            "decision": pa.array(c["decision"], pa.string()),
            "language": pa.array(c["language_out"], pa.string()),
            "run_id": pa.array([run_id] * len(rows), pa.string()),
            "decided_at": pa.array([now()] * len(rows), pa.timestamp("us", tz="UTC")),
        },
        schema=RESULT_SCHEMA,
    )


def run_langid(
    wh: Warehouse, loaded: LoadedConfig, run_id: str, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Detect and decide; returns counts for this run (checked) and over all active entries."""
    started = time.perf_counter()
    settings = loaded.config.langid
    settings_hash = stage_hash(settings, loaded)
    ids = pending(wh, settings_hash)
    this_run: Counter[str] = Counter()
    if ids:
        workers = settings.workers or min(os.cpu_count() or 1, 8)
        decider = Decider(
            identifier_options(settings, loaded),
            settings.min_confidence,
            workers if len(ids) >= PARALLEL_MIN else 1,
        )
        try:
            for done, batch in entry_frames(wh, ids, _READ, CHUNK):
                table = decide_batch(batch, decider, settings, settings_hash, run_id)
                wh.upsert("langid_results", table)
                this_run.update(table.column("decision").to_pylist())
                if log:
                    log(f"langid: {done}/{len(ids)} entries decided")
        finally:
            decider.close()
    totals = dict(wh.query("SELECT decision, count(*) FROM v_langid GROUP BY 1 ORDER BY 1"))
    return {
        "checked": len(ids),
        "decisions": dict(sorted(this_run.items())),
        "totals": {k: int(v) for k, v in totals.items()},
        "seconds": round(time.perf_counter() - started, 3),
    }
