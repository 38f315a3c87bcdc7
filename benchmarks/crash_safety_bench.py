"""What crash safety costs: the dedup stage, the curated view and the export's pending check
on the shared real data (docs/crash-safety.md).

    .venv/bin/python benchmarks/crash_safety_bench.py [--scale 4]

Collects ../shared/data (configs/shared-real.yaml) into a temp warehouse, copies every entry
--scale times under new ids, runs language ID and quality, then times:
  dedup first   the whole stage on every entry (sign, search, one commit of links and clusters);
  dedup again   the stage with nothing new (reads the index, clusters again, rewrites them);
  curated view  `SELECT count(*) FROM v_curated_entries` (it now checks each stage's decision);
  snapshot      the export's read of the curated view into its rows;
  pending       the export's check that no stage has work left (new; "n/a" on older code).
The same script runs on an older checkout (copy it into that checkout's benchmarks/): the
figures before and after come from the same machine, back to back.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _corpus import ROOT, collected, peak_rss_mib
from curate_bench import scale_entries

from globmed_data.config import load_config
from globmed_data.dedup.stage import run_dedup
from globmed_data.export.snapshot import take_snapshot
from globmed_data.langid.stage import run_langid
from globmed_data.quality.stage import run_quality


def timed(label: str, work, entries: int) -> object:
    t0 = time.perf_counter()
    out = work()
    s = time.perf_counter() - t0
    print(f"{label:<14} {s:7.2f}s  {entries / s:>12,.0f} entries/s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1)
    args = ap.parse_args()
    loaded = load_config(ROOT / "configs" / "shared-real.yaml")
    try:
        from globmed_data.pipeline.curation import pending_work, record_stage_settings
    except ImportError:  # older code: no pending check, no stage settings
        pending_work = record_stage_settings = None
    with tempfile.TemporaryDirectory() as tmp:
        wh = collected(Path(tmp) / "bench.duckdb")
        scale_entries(wh, args.scale)
        wh.con.execute("CHECKPOINT")
        n = wh.query("SELECT count(*) FROM entries WHERE status = 'active'")[0][0]
        print(f"{n:,} active entries (shared-real x{args.scale}), code at {ROOT}")
        if record_stage_settings is not None:
            record_stage_settings(wh, loaded)
        run_langid(wh, loaded, "bench")
        run_quality(wh, loaded, "bench")
        timed("dedup first", lambda: run_dedup(wh, loaded, "bench"), n)
        timed("dedup again", lambda: run_dedup(wh, loaded, "bench2"), n)
        curated = timed("curated view", lambda: wh.query("SELECT count(*) FROM v_curated_entries")[0][0], n)
        timed("snapshot", lambda: take_snapshot(wh, loaded.config.export), n)
        if pending_work is not None:
            left = timed("pending", lambda: pending_work(wh, loaded), n)
            assert left == {}, left
        else:
            print(f"{'pending':<14}     n/a")
        print(f"curated entries: {curated:,}")
        wh.close()
    print(f"peak RSS: {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
