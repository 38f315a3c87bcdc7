"""Dedup speed and memory at 500,000 entries, against plain datasketch, in one run.

    .venv/bin/python benchmarks/dedup_bench.py [--entries 500000] [--baseline 50000] [--warehouse PATH]

Corpus: every MCQA/yes-no/NLI entry of ../shared/data plus perturbed copies of them (typos,
reordered options, spacing) up to --entries, so a known share are duplicates.
globmed: the dedup method in memory (normalise, shingle, MinHash 128, bands, candidates,
verification, connected components) on the whole corpus.
datasketch: MinHash(num_perm=128).update_batch over the same shingles + MinHashLSH insert and
query + union-find, on the first --baseline entries (its rate is per entry and flat in n).
Peak RSS of the globmed part is read before the baseline starts.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import polars as pl
from _corpus import ROOT, collected, peak_rss_mib
from dedup_eval import datasketch_labels, perturb

from globmed_data.config import load_config
from globmed_data.dedup_stage import lsh_shape
from globmed_data.minhash import LshParams, cluster_labels, dedup_texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=500_000)
    ap.add_argument("--baseline", type=int, default=50_000)
    ap.add_argument("--warehouse", type=Path)
    args = ap.parse_args()
    s = load_config(ROOT / "configs" / "shared-real.yaml").config.dedup
    bands, rows = lsh_shape(s)
    params = LshParams(s.num_perm, bands, rows, s.threshold)
    with tempfile.TemporaryDirectory() as tmp:
        wh = collected(args.warehouse or Path(tmp) / "wh.duckdb")
        entries = wh.query_dicts(
            "SELECT entry_id, task, language, question, options, premise, hypothesis FROM entries "
            "WHERE status = 'active' AND task = 'mcqa' AND question IS NOT NULL"
        )
        wh.close()
    rng = random.Random(3)
    corpus = list(entries)
    while len(corpus) < args.entries:
        e = rng.choice(entries)
        copy = perturb(e, rng)
        corpus.append({**copy, "entry_id": f"{copy['entry_id']}#{len(corpus)}"})
    frame = pl.DataFrame(corpus[: args.entries])
    print(
        f"corpus: {len(frame):,} entries ({len(entries):,} real, {len(frame) - len(entries):,} perturbed copies)"
    )
    t0 = time.perf_counter()
    texts = dedup_texts(frame)
    labels = cluster_labels(texts, params, s.word_ngram, s.char_ngram)
    ours = time.perf_counter() - t0
    clusters = len(set(labels.tolist()))
    ours_rss = peak_rss_mib()
    print(f"globmed:    {len(frame):,} entries in {ours:.1f}s = {len(frame) / ours:,.0f} entries/s; "
          f"{len(frame) - clusters:,} entries fall in another's cluster; peak RSS {ours_rss:,.0f} MiB")  # fmt: skip
    sub = texts.head(args.baseline)
    t0 = time.perf_counter()
    datasketch_labels(sub, params, s.word_ngram, s.char_ngram)
    base = time.perf_counter() - t0
    print(f"datasketch: {len(sub):,} entries in {base:.1f}s = {len(sub) / base:,.0f} entries/s; "
          f"peak RSS now {peak_rss_mib():,.0f} MiB")  # fmt: skip
    print(f"ratio: {(len(frame) / ours) / (len(sub) / base):.1f}x datasketch's throughput")


if __name__ == "__main__":
    main()
