"""Language-ID and quality stage throughput on the shared real data, and peak memory.

    .venv/bin/python benchmarks/curate_bench.py [--scale 4] [--warehouse PATH]

Collects ../shared/data (configs/shared-real.yaml) into a temp warehouse, copies every entry
--scale times under new ids, then times each stage over all entries in one run:
  langid   whole stage: one streamed read from DuckDB, texts prepared in the parent (polars and
           a compiled pass), detection in worker processes (one per core), second opinions and
           the policy in the parent, writes in a background thread; batches pipelined;
  quality  whole stage: read, the rules (polars and compiled counts, one thread per core) on
           50k-entry batches, writes in a background thread;
  rules    the rule evaluation alone (quality_rules.evaluate), the part the issue's target names.
The --scale copies are exact copies under new ids: a stage that cached by text would gain from
them, so neither stage does (their rates at scale 1 are the real data as it is).
Baseline in the same process: fastText (lid.176) predictions alone on the prepared texts, one
process, which is the floor cost of language ID per entry.
Peak memory: this process, and its largest worker (ru_maxrss of the children).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import polars as pl
from _corpus import ROOT, collected, peak_rss_mib

from globmed_data.config import load_config
from globmed_data.langid import LanguageIdentifier, entry_text_expr, prepare_frame
from globmed_data.langid_stage import run_langid
from globmed_data.quality_rules import evaluate
from globmed_data.quality_stage import _READ, run_quality


def scale_entries(wh, scale: int) -> None:
    for k in range(1, scale):
        wh.con.execute(
            f"""INSERT INTO entries SELECT entry_id || '-x{k}', source, record_key || '-x{k}', content_hash,
                   task, language, split, question, context, options, answer_indices, label, premise,
                   hypothesis, answer, rationale, origin, parent_entry_id, license, metadata, status,
                   created_run_id, updated_run_id
                FROM entries WHERE entry_id NOT LIKE '%-x%'"""
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--warehouse", type=Path, help="a collected shared-real warehouse to copy from")
    args = ap.parse_args()
    loaded = load_config(ROOT / "configs" / "shared-real.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        if args.warehouse:
            import shutil

            shutil.copy(args.warehouse, path)
        wh = collected(path)
        wh.con.execute("DELETE FROM langid_results; DELETE FROM quality_results")
        scale_entries(wh, args.scale)
        wh.con.execute("CHECKPOINT")  # as after a collect run: the stages read a settled file
        n = wh.query("SELECT count(*) FROM entries WHERE status = 'active'")[0][0]
        print(f"{n:,} active entries (shared-real x{args.scale})")

        t0 = time.perf_counter()
        lid = run_langid(wh, loaded, "bench")
        s = time.perf_counter() - t0
        print(f"langid stage:  {lid['checked']:,} entries in {s:.2f}s = {lid['checked'] / s:,.0f} entries/s")

        t0 = time.perf_counter()
        q = run_quality(wh, loaded, "bench")
        s = time.perf_counter() - t0
        print(f"quality stage: {q['checked']:,} entries in {s:.2f}s = {q['checked'] / s:,.0f} entries/s")

        # Every active entry, as the stage reads them (a settings hash no decision has).
        frames = [pl.from_arrow(t) for t in wh.stream_arrow(_READ, ["all"], 50_000)]
        ids = [e for frame in frames for e in frame["entry_id"]]
        t0 = time.perf_counter()
        for frame in frames:
            evaluate(frame, loaded.config.quality)
        s = time.perf_counter() - t0
        print(f"rules alone:   {len(ids):,} entries in {s:.2f}s = {len(ids) / s:,.0f} entries/s")

        ident = LanguageIdentifier()
        sample = pl.concat(frames).head(65_000)
        prepared = prepare_frame(sample.select(entry_text_expr()).to_series(), ident.max_chars)["clean"]
        t0 = time.perf_counter()
        for text in prepared:
            ident.model.top(text, 3)
        s = time.perf_counter() - t0
        print(f"baseline fastText predictions alone, one process: {len(prepared) / s:,.0f} texts/s")
        wh.close()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: this process {peak_rss_mib():,.0f} MiB, largest worker {children:,.0f} MiB")


if __name__ == "__main__":
    main()
