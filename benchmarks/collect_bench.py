"""Collect-stage benchmark: throughput, peak memory, and a no-change re-run.

    .venv/bin/python benchmarks/collect_bench.py --config configs/shared-real.yaml [--scale 4] [--workers 2]

Runs the engine directly (no Prefect server), on a fresh DuckDB file in a temp folder.
Baseline, in the same process: "parse-only", i.e. the same files read by the same
streaming readers with no mapping, normalisation or warehouse writes; the ratio shows
what mapping + normalisation + transactional writes cost on top of reading.
--scale N collects every source N times under distinct names (N x the records); sources are
collected one after another, their files mapped by --workers processes (1: in this process).
The whole pipeline through the CLI is benchmarks/pipeline_bench.py.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from globmed_data.config import LoadedConfig, load_config
from globmed_data.pipeline.executor import Executor, executor_for
from globmed_data.pipeline.settings import ExecutorSettings
from globmed_data.sources.collect import collect_source
from globmed_data.sources.locate import locate_files
from globmed_data.sources.readers import detect_format, read_file
from globmed_data.warehouse import Warehouse


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scaled(loaded: LoadedConfig, scale: int) -> LoadedConfig:
    if scale == 1:
        return loaded
    sources = []
    for k in range(scale):
        for s in loaded.config.sources:
            sources.append(
                s.model_copy(update={"name": f"{s.name}-{k}", "translation_of": None, "origin": "native"})
            )
    config = loaded.config.model_copy(update={"sources": sources})
    return loaded.model_copy(update={"config": config})


def parse_only(loaded: LoadedConfig) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = 0
    for s in loaded.config.sources:
        for f in locate_files(s, loaded).files:
            for _ in read_file(
                f.path,
                detect_format(f.path, s.format),
                encoding=s.encoding,
                record_path=s.resolved_record_path(),
                max_record_bytes=loaded.config.collect.max_record_bytes,
            ):
                n += 1
    return n, time.perf_counter() - t0


def collect(wh: Warehouse, loaded: LoadedConfig, executor: Executor) -> tuple[dict, float]:
    run_id = uuid.uuid4().hex
    wh.start_run(run_id, config_hash=loaded.config.config_hash(), config_path=str(loaded.path))
    t0 = time.perf_counter()
    with wh.bulk_load():  # as the collect stage writes
        reports = {
            s.name: collect_source(wh, loaded, s, run_id, executor=executor) for s in loaded.config.sources
        }
    wh.finish_run(run_id, "succeeded", {})
    return reports, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/shared-real.yaml")
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1, help="processes mapping files (1: this process)")
    args = ap.parse_args()
    loaded = scaled(load_config(args.config), args.scale)

    base_records, base_s = parse_only(loaded)
    print(
        f"baseline parse-only: {base_records} records in {base_s:.2f}s = "
        f"{base_records / base_s:,.0f} records/s"
    )

    with (
        tempfile.TemporaryDirectory() as tmp,
        Warehouse(Path(tmp) / "bench.duckdb") as wh,
        closing(executor_for(ExecutorSettings(workers=args.workers))) as executor,
    ):
        reports, first_s = collect(wh, loaded, executor)
        records = sum(r.records for r in reports.values())
        entries = sum(r.added for r in reports.values())
        print(
            f"collect (fresh warehouse): {records} records -> {entries} entries in {first_s:.2f}s = "
            f"{records / first_s:,.0f} records/s, {entries / first_s:,.0f} entries/s "
            f"({(records / first_s) / (base_records / base_s):.2f}x parse-only)"
        )
        print(f"peak RSS so far: {peak_rss_mib():,.0f} MiB")
        again, second_s = collect(wh, loaded, executor)
        skipped = sum(r.status == "skipped" for r in again.values())
        print(f"second run, nothing changed: {second_s:.2f}s ({skipped}/{len(again)} sources skipped)")
        files = [Path(tmp) / "bench.duckdb", Path(tmp) / "bench.duckdb.wal"]
        size = sum(f.stat().st_size for f in files if f.exists())
        print(f"warehouse size (file + WAL): {size / 2**20:,.1f} MiB")
        print("\nentries by language and task:")
        for lang, task, n in wh.query(
            "SELECT language, task, count(*) FROM entries GROUP BY ALL ORDER BY ALL"
        ):
            print(f"  {lang:6} {task:8} {n:>8}")
        print("\nquarantine by reason:")
        for reason, n in wh.query("SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 2 DESC"):
            print(f"  {reason:22} {n:>8}")
    print(f"\npeak RSS: {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
