"""External test sets (`dedup.benchmarks`): read and mapped like sources, signed every run and
never stored, so that no train entry that duplicates one of their items is published."""

from __future__ import annotations

from typing import Any

import polars as pl

from globmed_data.config import LoadedConfig


def benchmark_entries(loaded: LoadedConfig) -> pl.DataFrame:
    """External test sets from `dedup.benchmarks`, read and mapped like sources (not stored).

    Records that do not map are skipped: a benchmark list only has to give the item's text.
    """
    from globmed_data.sources.locate import locate_files
    from globmed_data.sources.mapping import MappingError, RecordMapper
    from globmed_data.sources.readers import detect_format, read_file

    rows: list[dict[str, Any]] = []
    for spec in loaded.config.dedup.benchmarks:
        mapper = RecordMapper(spec)
        for f in locate_files(spec, loaded).files:
            ctx = mapper.file_context(f.rel)
            items = read_file(f.path, detect_format(f.path, spec.format), encoding=spec.encoding,
                              record_path=spec.resolved_record_path(), max_record_bytes=1 << 24)  # fmt: skip
            for item in items:
                if item.record is None:
                    continue
                extra = {"_file": f.rel, "_locator": item.locator, **item.extra}
                try:
                    key = mapper.record_key(item.record, extra, item.raw_text)
                    entry = mapper.map(item.record, extra, ctx, key)
                except MappingError:
                    continue
                rows.append({**entry, "entry_id": f"benchmark:{spec.name}:{key}", "split": "test",
                             "source": f"benchmark:{spec.name}", "content_hash": ""})  # fmt: skip
    columns = [
        "entry_id",
        "content_hash",
        "source",
        "task",
        "language",
        "split",
        "origin",
        "question",
        "premise",
        "hypothesis",
        "options",
        "answer_indices",
        "label",
        "answer",
        "rationale",
        "context",
    ]
    schema = {c: pl.String for c in columns} | {
        "options": pl.List(pl.String),
        "answer_indices": pl.List(pl.Int32),
    }
    return pl.DataFrame([{c: r.get(c) for c in columns} for r in rows], schema=schema)
