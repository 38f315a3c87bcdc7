"""A dataset version written from rows in hand, by the export's own writer, so it verifies like
any published version: for the tests' small versions and the benchmarks' item sets (a memorisation
check picks real items from a published version)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from globmed_data.export.layout import write_version_folder
from globmed_data.export.snapshot import (
    EXPORT_SCHEMA_VERSION,
    TASK_COLUMNS,
    Snapshot,
    arrow_schema,
    fingerprint,
    row_hash,
)


def write_rows_version(
    folder: Path,
    rows: dict[tuple[str, str, str], list[dict[str, Any]]],
    *,
    repo_id: str,
    version: str = "1.0.0",
    card: str = "# handmade version\n",
) -> Path:
    """rows: (task, language, split) -> rows with that task's columns (missing ones are null;
    origin defaults to native, license to CC0-1.0). One config per task."""
    tables, tasks, index = {}, {}, []
    for (task, language, split), items in sorted(rows.items()):
        if not items:
            continue
        full = [
            {c: r.get(c) for c in TASK_COLUMNS[task]}
            | {"origin": r.get("origin") or "native", "license": r.get("license") or "CC0-1.0"}
            for r in sorted(items, key=lambda r: r["entry_id"])
        ]
        table = pl.DataFrame(full).to_arrow().cast(arrow_schema(task))
        tables[(task, language, split)] = table
        tasks[task] = task
        index += [(r["entry_id"], task, split, row_hash(list(r.values()))) for r in table.to_pylist()]
    snapshot = Snapshot(
        tables=tables,
        tasks=tasks,
        index=pl.DataFrame({"entry_id": [i[0] for i in index]}),
        new_splits=pl.DataFrame(),
        fingerprint=fingerprint(EXPORT_SCHEMA_VERSION, sorted(index)),
        schema_version=EXPORT_SCHEMA_VERSION,
    )
    write_version_folder(
        snapshot,
        folder,
        repo_id=repo_id,
        version=version,
        render_card=lambda _f: card,
        max_shard_mb=64,
        row_group_rows=1000,
        zstd_level=3,
    )
    return folder
