"""Export time and size of a dataset version of the full shared real data.

    .venv/bin/python benchmarks/export_bench.py [--warehouse PATH]

Collects ../shared/data (configs/shared-real.yaml) into a temp warehouse, runs language ID,
quality and dedup, then times, in one process:
  snapshot   read the curated view, final splits, row hashes and fingerprint;
  export     a new version: snapshot, Parquet shards (zstd), card, manifest, warehouse records;
  publish    the commit + tag in a local git repository, then the Prefect event (which, in a
             process with no Prefect API yet, includes starting Prefect's ephemeral server);
  unchanged  an export with nothing changed (no new version, tag already there: no work);
  verify     what `globmed pull` does after downloading: every checksum, and the fingerprint
             recomputed from the rows of every file.
Baseline in the same process: pyarrow writing the same curated rows as one zstd Parquet file
(no layout, no hashing, no card), the floor cost of getting the rows to disk.
Peak RSS is the whole process, language ID and dedup included.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pyarrow.parquet as pq
from _corpus import ROOT, collected, peak_rss_mib, scratch

from globmed_data.config import load_config
from globmed_data.dedup.stage import run_dedup
from globmed_data.export.layout import verify_folder
from globmed_data.export.snapshot import take_snapshot
from globmed_data.export.stage import run_export
from globmed_data.langid.stage import run_langid
from globmed_data.quality.stage import run_quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", type=Path, help="reuse this warehouse (default: a temp one)")
    args = parser.parse_args()
    tmp = scratch("globmed-export-bench-")
    wh = collected(args.warehouse or tmp / "wh.duckdb")
    loaded = load_config(ROOT / "configs" / "shared-real.yaml")
    # exports/ and dataset-repos/ go next to the warehouse (the config leaves them at their defaults)
    quiet = lambda _m: None  # noqa: E731
    for stage in (run_langid, run_quality, run_dedup):
        stage(wh, loaded, "bench", log=quiet)
    curated = wh.query("SELECT count(*) FROM v_curated_entries")[0][0]
    print(f"curated entries: {curated:,} (of {wh.query('SELECT count(*) FROM entries')[0][0]:,} collected)")

    t = time.perf_counter()
    snap = take_snapshot(wh, loaded.config.export)
    t_snap = time.perf_counter() - t

    marks: dict[str, float] = {}

    def mark(message: str) -> None:
        if "tagged in" in message:
            marks["tagged"] = time.perf_counter()

    t = time.perf_counter()
    first = run_export(wh, loaded, "bench", publish=False, log=quiet)
    t_export = time.perf_counter() - t
    t = time.perf_counter()
    published = run_export(wh, loaded, "bench", log=mark)
    t_publish_all = time.perf_counter() - t
    t_git = marks["tagged"] - t
    t_event = t_publish_all - t_git
    t = time.perf_counter()
    again = run_export(wh, loaded, "bench2", log=quiet)
    t_again = time.perf_counter() - t
    folder = Path(first["folder"])
    t = time.perf_counter()
    verify_folder(folder)
    t_verify = time.perf_counter() - t

    t = time.perf_counter()
    rows = wh.arrow("SELECT * FROM v_curated_entries ORDER BY entry_id")
    pq.write_table(rows, tmp / "baseline.parquet", compression="zstd", compression_level=9)
    t_base = time.perf_counter() - t
    base_mb = (tmp / "baseline.parquet").stat().st_size / 1e6

    size_mb = first["bytes"] / 1e6
    print(
        f"version v{first['version']} ({first['status']}): {first['files']} Parquet files, "
        f"{size_mb:.1f} MB, {len(snap.tasks)} configs, fingerprint {first['fingerprint'][:16]}"
    )
    print(f"{'step':<22}{'seconds':>9}{'entries/s':>12}")
    for name, secs in (
        ("snapshot", t_snap),
        ("export (new version)", t_export),
        ("publish: git tag", t_git),
        ("publish: event", t_event),
        ("export (unchanged)", t_again),
        ("verify (pull check)", t_verify),
        ("baseline: one parquet", t_base),
    ):
        print(f"{name:<22}{secs:>9.2f}{curated / secs:>12,.0f}")
    print(
        f"after publish: {published['status']}; the unchanged re-run made a new version: {again['created']}"
    )
    print(
        f"baseline file: {base_mb:.1f} MB (all columns, one file); "
        f"export/baseline time: {t_export / t_base:.1f}×"
    )
    print(f"peak RSS: {peak_rss_mib():,.0f} MiB")
    wh.close()


if __name__ == "__main__":
    main()
