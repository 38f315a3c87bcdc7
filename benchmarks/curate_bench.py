"""Language-ID and quality stage throughput on the shared real data, and peak memory.

    .venv/bin/python benchmarks/curate_bench.py [--scale 4] [--warehouse PATH]

Collects ../shared/data (configs/shared-real.yaml) into a temp warehouse, copies every entry
--scale times under new ids, then times each stage over all entries in one run:
  langid   whole stage: one streamed read from DuckDB, the next batch read and prepared (a
           compiled pass) in the background, fastText compiled (fasttext_native) on a thread
           per core, second opinions for the unsure, the policy over columns, writes in a
           background thread. Timed twice: "first run" in this fresh process (it pays the
           process's one-time costs: numba's start, loading the models and compiled kernels),
           then "again" after its results are deleted (the rate of a process that has run
           before, as a long-lived worker does);
  quality  whole stage: read, the rules (polars and compiled counts, one thread per core) on
           50k-entry batches, writes in a background thread;
  rules    the rule evaluation alone (quality.evaluate.evaluate), the part the issue's target names.
The --scale copies are exact copies under new ids: a stage that cached by text would gain from
them, so neither stage does (their rates at scale 1 are the real data as it is).
Baseline in the same process: fastText's C++ engine (fasttext-predict, lid.176) predicting the
texts language ID sends to fastText one by one, against the compiled predictor on one thread
and on every core.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import fasttext
import polars as pl
from _corpus import ROOT, collected, peak_rss_mib

from globmed_data.config import load_config
from globmed_data.langid.fasttext_model import default_model_path
from globmed_data.langid.identify import LanguageIdentifier, entry_text_expr, prepare_frame
from globmed_data.langid.stage import run_langid
from globmed_data.quality.evaluate import evaluate
from globmed_data.quality.stage import _READ, run_quality


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

        for label in ("first run", "again"):
            wh.con.execute("DELETE FROM langid_results")
            t0 = time.perf_counter()
            lid = run_langid(wh, loaded, "bench")
            s = time.perf_counter() - t0
            rate = lid["checked"] / s
            print(f"langid stage ({label}):  {lid['checked']:,} entries in {s:.2f}s = {rate:,.0f} entries/s")

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
        prepared = prepare_frame(pl.concat(frames).select(entry_text_expr()).to_series(), ident.max_chars)
        texts = prepared.filter(  # what reaches fastText: long enough, not decided by script
            pl.col("letters") >= ident.min_letters, ~pl.col("script").is_in(["Han", "Kana"])
        )["clean"]
        engine = fasttext.load_model(str(default_model_path())).f
        t0 = time.perf_counter()
        for text in texts:
            engine.predict(text + "\n", 3, 0.0, "strict")
        base = len(texts) / (time.perf_counter() - t0)
        print(f"fastText C++ engine, one by one: {len(texts):,} texts at {base:,.0f} texts/s")
        for threads in (1, os.cpu_count() or 1):
            t0 = time.perf_counter()
            ident.model.top_k(texts, 3, threads)
            rate = len(texts) / (time.perf_counter() - t0)
            print(f"compiled, {threads} thread(s): {rate:,.0f} texts/s = {rate / base:.1f}x the engine")
        wh.close()
    print(f"peak RSS: {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
