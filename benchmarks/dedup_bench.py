"""Dedup speed and memory at 500,000 entries, against plain datasketch, in one run.

    .venv/bin/python benchmarks/dedup_bench.py [--entries 500000] [--baseline 50000] [--warehouse PATH]

Corpus: every MCQA entry of ../shared/data plus perturbed copies of them (typos, reordered
options, spacing, a cut tail) up to --entries, so a known share are duplicates. It is built in a
child process and handed over as a Parquet file, so this process's peak memory is the method's.
globmed: the dedup method in memory, in 20,000-entry map batches (normalise, shingle, MinHash
128, band keys), then candidates, verification and connected components over all entries.
datasketch: MinHash(num_perm=128).update_batch over the same shingles + MinHashLSH insert and
query + union-find, on the first --baseline entries (its cost per entry is flat in n), with the
texts already normalised (normalisation is not counted for it).
Peak RSS of the globmed part is read before the baseline starts.
stage: the same corpus as entries of a DuckDB warehouse, deduplicated by the dedup stage exactly
as the pipeline runs it (`DedupStage().run`: read the eligible entries, sign and store in
batches, read the signatures back, link, cluster, keep policy, one transaction of writes), in a
child process of its own so that its peak RSS is its own; with the seconds of each phase.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from _corpus import ROOT, collected, peak_rss_mib
from dedup_eval import datasketch_labels, perturb

from globmed_data.config import load_config
from globmed_data.dedup.linking import cluster_labels
from globmed_data.dedup.signing import dedup_texts


def build(out: Path, entries_wanted: int, warehouse: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wh = collected(warehouse or Path(tmp) / "wh.duckdb")
        entries = wh.query_dicts(
            "SELECT entry_id, task, language, question, options, premise, hypothesis FROM entries "
            "WHERE status = 'active' AND task = 'mcqa' AND question IS NOT NULL"
        )
        wh.close()
    rng = random.Random(3)
    corpus = list(entries)
    while len(corpus) < entries_wanted:
        copy = perturb(rng.choice(entries), rng)
        corpus.append({**copy, "entry_id": f"{copy['entry_id']}#{len(corpus)}"})
    pl.DataFrame(corpus[:entries_wanted]).with_columns(
        real=pl.int_range(pl.len()) < len(entries)
    ).write_parquet(out)


def stage(corpus: Path) -> None:
    """The dedup stage as the pipeline runs it, on the corpus loaded as warehouse entries."""
    from globmed_data.dedup.stage import DedupStage
    from globmed_data.pipeline.stage import Context
    from globmed_data.warehouse import Warehouse

    loaded = load_config(ROOT / "configs" / "shared-real.yaml")
    with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "wh.duckdb") as wh:
        wh.con.execute(
            "INSERT INTO entries (entry_id, source, record_key, content_hash, task, language, split, "
            "question, options, premise, hypothesis, origin, status, created_run_id, updated_run_id) "
            "SELECT entry_id, 'bench', entry_id, md5(entry_id), task, language, 'train', question, "
            "options, premise, hypothesis, 'native', 'active', 'bench', 'bench' FROM read_parquet(?)",
            [str(corpus)],
        )
        n = wh.query("SELECT count(*) FROM entries")[0][0]
        report = DedupStage().run(Context(wh, loaded, "bench"))
        seconds = report.counts["seconds"]
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in report.counts["phases"].items())
        print(
            f"stage:      {n:,} entries in {seconds:.1f}s = {n / seconds:,.0f} entries/s, as the pipeline "
            f"runs it (warehouse read and write included); peak RSS {peak_rss_mib():,.0f} MiB"
        )
        print(f"            {phases}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=500_000)
    ap.add_argument("--baseline", type=int, default=50_000)
    ap.add_argument("--warehouse", type=Path)
    ap.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--stage", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:
        build(args.build, args.entries, args.warehouse)
        return
    if args.stage:
        stage(args.stage)
        return
    s = load_config(ROOT / "configs" / "shared-real.yaml").config.dedup
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.parquet"
        cmd = [sys.executable, __file__, "--build", str(corpus), "--entries", str(args.entries)]
        subprocess.run(cmd + (["--warehouse", str(args.warehouse)] if args.warehouse else []), check=True)
        frame = pl.read_parquet(corpus)
        in_pipeline = subprocess.run([sys.executable, __file__, "--stage", str(corpus)], check=True,
                                     capture_output=True, text=True).stdout  # fmt: skip
    real = int(frame["real"].sum())
    print(f"corpus: {len(frame):,} entries ({real:,} real, {len(frame) - real:,} perturbed copies)")
    print(f"rss after loading the corpus: {peak_rss_mib():,.0f} MiB")
    # Once per process: the normalisation table and loading the compiled kernels (numba's disk
    # cache; the first run after an install compiles them). Timed apart, on 1,000 entries.
    t0 = time.perf_counter()
    cluster_labels(frame.head(1000), s)
    print(f"process start (table, compiled kernels, 1,000 entries): {time.perf_counter() - t0:.2f}s")
    t0 = time.perf_counter()
    labels = cluster_labels(frame, s)
    ours = time.perf_counter() - t0
    grouped = len(frame) - len(set(labels.tolist()))
    ours_rss = peak_rss_mib()
    print(
        f"globmed:    {len(frame):,} entries in {ours:.1f}s = {len(frame) / ours:,.0f} entries/s; "
        f"{grouped:,} entries fall in another's cluster; peak RSS {ours_rss:,.0f} MiB"
    )
    sub = dedup_texts(frame.head(args.baseline))
    t0 = time.perf_counter()
    datasketch_labels(sub, s)
    base = time.perf_counter() - t0
    print(
        f"datasketch: {len(sub):,} entries in {base:.1f}s = {len(sub) / base:,.0f} entries/s; "
        f"peak RSS now {peak_rss_mib():,.0f} MiB"
    )
    print(f"ratio: {(len(frame) / ours) / (len(sub) / base):.1f}x datasketch's throughput")
    print(in_pipeline.strip())


if __name__ == "__main__":
    main()
