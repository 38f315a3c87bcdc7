"""The collect's single writer alone: how fast the run's process stores mapped rows.

    .venv/bin/python benchmarks/writer_bench.py [--config configs/shared-real.yaml] [--scale 8]

Every source's files are mapped once in this process (not timed), then written --scale times
under distinct names (`<source>-<k>`, entry ids recomputed) into a fresh DuckDB file, exactly as
the collect writes a source it has never stored: `Warehouse.write_batch(fresh=True)` per batch of
`collect.batch_size` rows, the file's completion with its last batch, all inside
`Warehouse.bulk_load()`. Printed: the seconds and CPU seconds (every thread of this process,
DuckDB's included) of the writes and of the bulk load's closing checkpoint.
Baseline, in the same process, on a second fresh file: DuckDB's best case for the same rows, one
`INSERT ... SELECT` per table of everything at once, then a checkpoint. The ratio is the price of
writing batch by batch, one transaction each (what makes a kill lose nothing).
The whole collect, map included, is benchmarks/collect_bench.py; the whole run, pipeline_bench.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from globmed_data.config import load_config
from globmed_data.ids import entry_id
from globmed_data.schema import ENTRY_COLUMNS
from globmed_data.sources.locate import locate_files
from globmed_data.sources.mapped import ROW, MappedBatch, map_file_whole, without_row
from globmed_data.warehouse import FileDone, Warehouse

Batch = tuple[pa.Table, pa.Table, pa.Table]  # raws, entries, quarantine of one source copy
File = tuple[str, list[Batch]]


def mapped_sources(config: Path) -> dict[str, list[tuple[str, list[MappedBatch]]]]:
    """Each source's files, mapped: {source: [(file, batches)]}."""
    loaded = load_config(config)
    out: dict[str, list[tuple[str, list[MappedBatch]]]] = {}
    for source in loaded.config.sources:
        files = locate_files(source, loaded).files
        out[source.name] = [
            (f.rel, map_file_whole(source, f.rel, f.path, loaded.config.collect, f.size)) for f in files
        ]
    return out


def renamed(batch: MappedBatch, name: str, seen: set[str]) -> Batch:
    """A batch as the source `name` would have it, first occurrences only (`seen`: the source's
    keys so far; the collector makes repeated keys quarantine rows before the writer sees them)."""
    keep = []
    for row, key in enumerate(batch.raws["record_key"].to_pylist()):
        if key not in seen:
            seen.add(key)
            keep.append(row)
    raws = batch.raws.take(pa.array(keep, pa.int64()))
    raws = raws.set_column(0, "source", pa.array([name] * raws.num_rows, pa.string()))
    entries = batch.entries.filter(pc.is_in(batch.entries[ROW], pa.array(keep, pa.int32())))
    entries = without_row(entries)
    keys = entries["record_key"].to_pylist()
    entries = entries.set_column(0, "entry_id", pa.array([entry_id(name, k) for k in keys], pa.string()))
    source_at = ENTRY_COLUMNS.index("source")
    entries = entries.set_column(source_at, "source", pa.array([name] * entries.num_rows, pa.string()))
    quarantine = without_row(batch.quarantine)
    quarantine = quarantine.set_column(0, "source", pa.array([name] * quarantine.num_rows, pa.string()))
    return raws, entries, quarantine


def copies(sources: dict[str, list[tuple[str, list[MappedBatch]]]], scale: int) -> dict[str, list[File]]:
    out: dict[str, list[File]] = {}
    for k in range(scale):
        for name, files in sources.items():
            seen: set[str] = set()
            copy = f"{name}-{k}"
            out[copy] = [(rel, [renamed(b, copy, seen) for b in batches]) for rel, batches in files]
    return out


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def batch_by_batch(
    wh: Warehouse, sources: dict[str, list[File]], batch_size: int
) -> tuple[float, float, float, float]:
    """The collect's writes (seconds, CPU seconds), then the bulk load's checkpoint (the same).
    As SourceCollector._add/_flush: a source's batches wait until `batch_size` rows are pending
    (small files share a transaction), and a file's completion goes with the rows after it."""
    wh.start_run("bench", config_hash="bench", config_path="bench")
    checkpoint_started = [0.0, 0.0]

    def flush(name: str, pending: list[Batch], done: list[FileDone]) -> None:
        raws, entries, quarantine = (pa.concat_tables(t) for t in zip(*pending, strict=True))
        wh.write_batch(
            source=name, run_id="bench", raws=raws, entries=entries, quarantined=quarantine,
            quarantined_keys=[], done=done, fresh=True,
        )  # fmt: skip

    def writes() -> None:
        with wh.bulk_load():
            for name, files in sources.items():
                pending: list[Batch] = []
                done: list[FileDone] = []
                rows = 0
                for rel, batches in files:
                    for batch in batches:
                        pending.append(batch)
                        rows += sum(t.num_rows for t in batch)
                        if rows >= batch_size:
                            flush(name, pending, done)
                            pending, done, rows = [], [], 0
                    done.append(FileDone(rel, 0, "sha", "spec", 0))
                if pending:
                    flush(name, pending, done)
            checkpoint_started[:] = [time.perf_counter(), time.process_time()]

    wall, cpu = timed(writes)
    checkpoint = time.perf_counter() - checkpoint_started[0], time.process_time() - checkpoint_started[1]
    return wall - checkpoint[0], cpu - checkpoint[1], checkpoint[0], checkpoint[1]


def all_at_once(wh: Warehouse, sources: dict[str, list[File]]) -> tuple[float, float]:
    batches = [b for files in sources.values() for _, bs in files for b in bs]
    raws = pa.concat_tables([r for r, _, _ in batches])
    entries = pa.concat_tables([e for _, e, _ in batches])

    def load() -> None:
        wh.con.register("b_raw", raws)
        wh.con.register("b_ent", entries)
        cols = ", ".join(ENTRY_COLUMNS)
        wh.con.execute(
            "INSERT INTO raw_records SELECT source, record_key, file, locator, raw_hash, payload, "
            "'bench', 'bench', 'bench', NULL FROM b_raw"
        )
        wh.con.execute(
            f"INSERT INTO entries ({cols}, status, created_run_id, updated_run_id) "
            f"SELECT {cols}, 'active', 'bench', 'bench' FROM b_ent"
        )
        wh.con.execute("CHECKPOINT")

    return timed(load)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=Path("configs/shared-real.yaml"))
    ap.add_argument("--scale", type=int, default=8)
    args = ap.parse_args()
    batch_size = load_config(args.config).config.collect.batch_size
    sources = copies(mapped_sources(args.config), args.scale)
    rows = sum(r.num_rows for files in sources.values() for _, bs in files for r, _, _ in bs)
    batches = sum(len(bs) for files in sources.values() for _, bs in files)
    print(f"writer_bench: {args.config} x{args.scale}: {rows:,} raw records + entries, {batches} map batches")
    with tempfile.TemporaryDirectory() as tmp:
        with Warehouse(Path(tmp) / "batches.duckdb") as wh:
            wall, cpu, cp_wall, cp_cpu = batch_by_batch(wh, sources, batch_size)
        print(
            f"batch by batch (the collect's writer): writes {wall:.1f} s ({cpu:.1f} CPU-s) = "
            f"{rows / wall:,.0f} records/s, {cpu / rows * 1e6:.1f} CPU-µs per record; "
            f"closing checkpoint {cp_wall:.1f} s ({cp_cpu:.1f} CPU-s)"
        )
        with Warehouse(Path(tmp) / "once.duckdb") as wh:
            once_wall, once_cpu = all_at_once(wh, sources)
        print(
            f"baseline, DuckDB's best case (one INSERT per table + checkpoint): {once_wall:.1f} s "
            f"({once_cpu:.1f} CPU-s) = {rows / once_wall:,.0f} records/s"
        )
        print(f"ratio, batch by batch with its checkpoint / best case: {(wall + cp_wall) / once_wall:.2f}x")


if __name__ == "__main__":
    main()
