"""The collect without its map: how fast the run's process stores mapped rows.

    .venv/bin/python benchmarks/writer_bench.py [--config configs/shared-real.yaml] [--scale 8]

Every source is copied --scale times under distinct names (as collect_bench.py does) and every
file of every copy is mapped beforehand in this process (not timed). Then each source is
collected by the collector the pipeline runs (`collect_source`, inside `Warehouse.bulk_load()`,
into a fresh DuckDB file) through an executor that hands back the file's mapped batches instead
of mapping it: the collector's own checks, first occurrences, batching and writes, with the map
taken out. Printed: the seconds and CPU seconds (every thread of this process, DuckDB's
included) until the last source is done, then of the bulk load's end (the rows still waiting or
being written by the appends' writer thread, then the checkpoint), and both together.
Baseline, in the same process, on a second fresh file: DuckDB's best case for the same rows, one
`INSERT ... SELECT` per table of everything at once, then a checkpoint. The ratio is the price of
writing as the collect does: every source's own statements, and its new rows committed in
transactions of whole row groups (appends.py) so that a kill costs at most the rows waiting.
The whole collect, map included, is benchmarks/collect_bench.py; the whole run, pipeline_bench.py.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pyarrow as pa
from collect_bench import scaled

from globmed_data.config import LoadedConfig, load_config
from globmed_data.pipeline.executor import InlineExecutor
from globmed_data.schema import ENTRY_COLUMNS
from globmed_data.sources.collect import collect_source
from globmed_data.sources.locate import locate_files
from globmed_data.sources.mapped import MappedBatch, map_file_whole, without_row
from globmed_data.warehouse import Warehouse

Mapped = dict[tuple[str, str], list[MappedBatch]]  # (source, file) -> the file's batches


class Premapped(InlineExecutor):
    """The collect's executor with every file mapped already: a submitted map hands back the
    file's batches, so the collector sends every file "away" and writes as in the pipeline."""

    name, inline, workers = "premapped", False, 2

    def __init__(self, mapped: Mapped) -> None:
        self.mapped = mapped

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        source, rel = args[0], args[1]  # map_file_whole's (source, rel, path, settings, size)
        future: Future[Any] = Future()
        future.set_result(self.mapped[source.name, rel])
        return future


def mapped_files(loaded: LoadedConfig) -> Mapped:
    return {
        (source.name, f.rel): map_file_whole(source, f.rel, f.path, loaded.config.collect, f.size)
        for source in loaded.config.sources
        for f in locate_files(source, loaded).files
    }


def timed_collect(wh: Warehouse, loaded: LoadedConfig, executor: Premapped) -> tuple[float, ...]:
    """The collect's seconds and CPU seconds, then the same for the bulk load's end."""
    wh.start_run("bench", config_hash="bench", config_path="bench")
    wall, cpu = time.perf_counter(), time.process_time()
    with wh.bulk_load():
        for source in loaded.config.sources:
            collect_source(wh, loaded, source, "bench", executor=executor)
        collected = time.perf_counter(), time.process_time()
    done = time.perf_counter(), time.process_time()
    return collected[0] - wall, collected[1] - cpu, done[0] - collected[0], done[1] - collected[1]


def first_of_each(table: pa.Table, keys: list[str]) -> pa.Table:
    """The table's first row for each key (the collector quarantines the repeats)."""
    rows = table.append_column("_i", pa.array(range(table.num_rows), pa.int64()))
    first = rows.group_by(keys, use_threads=False).aggregate([("_i", "min")])["_i_min"]
    return table.take(first.combine_chunks().sort())


def timed_load(wh: Warehouse, mapped: Mapped) -> tuple[int, float, float]:
    """DuckDB's best case: every raw record and entry in one statement per table."""
    raws = pa.concat_tables([b.raws for batches in mapped.values() for b in batches])
    entries = pa.concat_tables([without_row(b.entries) for batches in mapped.values() for b in batches])
    raws, entries = first_of_each(raws, ["source", "record_key"]), first_of_each(entries, ["entry_id"])
    wall, cpu = time.perf_counter(), time.process_time()
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
    return entries.num_rows, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=Path("configs/shared-real.yaml"))
    ap.add_argument("--scale", type=int, default=8)
    args = ap.parse_args()
    loaded = scaled(load_config(args.config), args.scale)
    executor = loaded.config.executor.model_copy(update={"min_task_bytes": 0})  # every file "away"
    loaded = loaded.model_copy(update={"config": loaded.config.model_copy(update={"executor": executor})})
    started = time.perf_counter()
    mapped = mapped_files(loaded)
    records = sum(b.raws.num_rows for batches in mapped.values() for b in batches)
    print(
        f"writer_bench: {args.config} x{args.scale}: {records:,} keyed records in {len(mapped)} files, "
        f"mapped beforehand in {time.perf_counter() - started:.1f} s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        with Warehouse(Path(tmp) / "collect.duckdb") as wh:
            wall, cpu, cp_wall, cp_cpu = timed_collect(wh, loaded, Premapped(mapped))
            entries = wh.query("SELECT count(*) FROM entries")[0][0]
        print(
            f"the collector without its map: {entries:,} entries in {wall:.1f} s ({cpu:.1f} CPU-s) = "
            f"{entries / wall:,.0f} entries/s; the bulk load's end (last writes, checkpoint) {cp_wall:.1f} s "
            f"({cp_cpu:.1f} CPU-s); together {wall + cp_wall:.1f} s ({cpu + cp_cpu:.1f} CPU-s), "
            f"{(cpu + cp_cpu) / entries * 1e6:.1f} CPU-µs per entry"
        )
        with Warehouse(Path(tmp) / "once.duckdb") as wh:
            once_entries, once_wall, once_cpu = timed_load(wh, mapped)
        print(
            f"baseline, DuckDB's best case (one INSERT per table + checkpoint): {once_entries:,} entries "
            f"in {once_wall:.1f} s ({once_cpu:.1f} CPU-s) = {once_entries / once_wall:,.0f} entries/s"
        )
        ratio = (wall + cp_wall) / once_wall
        print(f"ratio, the collector with its bulk load's end / best case: {ratio:.2f}x")


if __name__ == "__main__":
    main()
