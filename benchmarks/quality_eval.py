"""Quality rules on real data: rejection per dataset, and corruptions caught per kind.

    .venv/bin/python benchmarks/quality_eval.py [--sample 2000] [--warehouse PATH]

1. Collects ../shared/data (configs/shared-real.yaml), runs language ID and the quality rules
   with the default settings, and prints the share rejected per dataset and per rule.
2. Takes a seeded sample of real MCQA entries that passed, corrupts each one in each of the
   ways below, and prints the share of corrupted copies the stages reject (and flag):
     truncate        question cut to its first 15% (at most 12 characters)
     dup_options     the second option replaced by the first
     drop_answer     no answer key
     swap_language   question and options taken from an entry in another language
                     (declared language kept; langid policy `reject` for this test)
     mojibake        question encoded as UTF-8 and read back as Latin-1
     markup          question wrapped in HTML with entities
     repeat          question repeated three times
     llm_artifact    one option replaced by a translator's refusal
   Copies the corruption leaves unchanged (mojibake of ASCII text) are not counted. The
   uncorrupted sample is run too: its rejection rate is the false-positive rate.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import polars as pl
from _corpus import ROOT, collected

from globmed_data.config import load_config
from globmed_data.ids import CONTENT_FIELDS
from globmed_data.langid.identify import LanguageIdentifier, entry_text_expr, prepare_frame
from globmed_data.langid.stage import run_langid
from globmed_data.quality.evaluate import evaluate
from globmed_data.quality.stage import run_quality

COLUMNS = ["entry_id", "source", *(c for c in CONTENT_FIELDS if c != "split")]


def corruptions(row: dict, other: dict, rng: random.Random) -> dict[str, dict]:
    q = row["question"]
    opts = list(row["options"])
    return {
        "none": row,
        "truncate": {**row, "question": q[: min(12, max(3, len(q) * 15 // 100))]},
        "dup_options": {**row, "options": [opts[0], opts[0], *opts[2:]]},
        "drop_answer": {**row, "answer_indices": []},
        "swap_language": {**row, "question": other["question"], "options": other["options"]},
        "mojibake": {**row, "question": q.encode("utf-8").decode("latin-1")},
        "markup": {**row, "question": f"<p><b>{q}</b>&nbsp;</p>"},
        "repeat": {**row, "question": f"{q} {q} {q}"},
        "llm_artifact": {
            **row,
            "options": [*opts[:-1], "I'm sorry, but there is no text provided for me to translate."],
        },
    }


def langid_columns(frame: pl.DataFrame, ident: LanguageIdentifier) -> pl.DataFrame:
    prepared = prepare_frame(frame.select(entry_text_expr()).to_series(), ident.max_chars)
    decisions, agrees = [], []
    for (clean, script, letters), lang in zip(prepared.iter_rows(), frame["language"], strict=True):
        _, verdict = ident.decide(clean, script, letters, lang, "reject", min_confidence=0.5)
        decisions.append(verdict.decision)
        agrees.append(verdict.agrees)
    return frame.with_columns(
        langid_decision=pl.Series(decisions), langid_agrees=pl.Series(agrees, dtype=pl.Boolean)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--warehouse", type=Path)
    args = ap.parse_args()
    loaded = load_config(ROOT / "configs" / "shared-real.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        wh = collected(args.warehouse or Path(tmp) / "wh.duckdb")
        run_langid(wh, loaded, "eval")
        run_quality(wh, loaded, "eval")
        print("== real data: share rejected per dataset (default settings) ==")
        for source, n, rejected in wh.query(
            "SELECT source, count(*), count(*) FILTER (WHERE NOT passed) FROM v_quality GROUP BY 1 ORDER BY 1"
        ):
            print(f"  {source:18} {n:>7} entries  {rejected:>5} rejected ({rejected / n:.2%})")
        print("== real data: entries per rule ==")
        for kind, reason, n in wh.query(
            "SELECT kind, reason, count(*) FROM v_quality_hits GROUP BY 1, 2 ORDER BY 1 DESC, 3 DESC"
        ):
            print(f"  {kind:6} {reason:22} {n:>6}")
        cols = ", ".join(f"e.{c}" for c in COLUMNS)
        rows = wh.query_dicts(
            f"SELECT {cols} FROM v_quality q JOIN entries e USING (entry_id) "
            "WHERE q.passed AND e.task = 'mcqa' AND len(e.options) >= 3 AND length(e.question) >= 40 "
            "ORDER BY hash(e.entry_id)"
        )
        wh.close()
    rng = random.Random(11)
    sample = rng.sample(rows, min(args.sample, len(rows)))
    by_lang: dict[str, list[dict]] = {}
    for r in rows:
        by_lang.setdefault(r["language"], []).append(r)
    ident = LanguageIdentifier()
    settings = loaded.config.quality
    print(f"\n== corrupted copies of {len(sample)} real MCQA entries that passed ==")
    print(f"  {'corruption':14} {'n':>5} {'rejected':>9} {'flagged':>8}  top reasons")
    t0 = time.perf_counter()
    kinds: dict[str, list[dict]] = {}
    for row in sample:
        other_lang = rng.choice(sorted(set(by_lang) - {row["language"]}))
        for kind, corrupted in corruptions(row, rng.choice(by_lang[other_lang]), rng).items():
            if kind == "none" or corrupted != row:  # e.g. mojibake leaves ASCII text as it is
                kinds.setdefault(kind, []).append(corrupted)
    for kind, items in kinds.items():
        frame = langid_columns(pl.DataFrame(items, infer_schema_length=None), ident)
        decided = evaluate(frame, settings)
        rejected = (~decided["passed"]).mean()
        flagged = decided.filter(pl.col("passed"))["flags"].list.len().gt(0).sum() / len(decided)
        top = decided["reasons"].explode().drop_nulls().value_counts(sort=True).head(3)
        reasons = ", ".join(f"{r} {c}" for r, c in top.iter_rows())
        print(f"  {kind:14} {len(items):>5} {rejected:>9.1%} {flagged:>8.1%}  {reasons}")
    print(f"\n({time.perf_counter() - t0:.0f}s for the corrupted sets)")


if __name__ == "__main__":
    main()
