"""Duplicate-pair precision, recall and F1 on labelled real data, against datasketch.

    .venv/bin/python benchmarks/dedup_eval.py [--perturbed 2000] [--warehouse PATH]

Labelled pairs, all from ../shared/data (configs/shared-real.yaml):
  known     true cross-source duplicates listed in ../shared/data/README.md, found independently
            of MinHash: same normalised question in the overlapping sources (Apollo-XMedBench
            es/fr/zh vs HEAD-QA, FrenchMedMCQA and medLLM zh; medLLM IgakuQA vs IgakuQA; MedQA
            5-option vs 4-option files), whatever their options' format;
  perturbed a real entry and a copy with typos, reordered options, spacing/punctuation changes,
            or the last tenth of the question cut;
  lookalike two different questions of one source and language that share their first four
            words (same topic, different question): must not be called duplicates;
  numeric   a real entry and a copy with one number of the question changed (another dose,
            another heart rate): a different item, must not be called a duplicate;
  templated two real questions of one source and language that differ in one word only, a key
            word (5+ letters, not a spelling variant or inflection: "porfiria" / "glucogenosis",
            "hypokaliémiant" / "hyperkaliémiant"): different items;
  swapped   a real entry and a copy with one key word of its question replaced by a key word of
            another question (options and answer kept): a different item ("ascending" /
            "descending colon").
F1 is printed over all pairs and without the numeric, templated and swapped pairs.
Both methods see the same entries, shingles, num_perm, threshold and band shape; a pair counts
as "duplicate" when both entries end in one cluster (union-find over links). datasketch links
every LSH candidate; globmed links a candidate whose estimated similarity reaches
threshold − verify_margin (or whose exact keys match).
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from _corpus import ROOT, collected

from globmed_data.config import load_config
from globmed_data.dedup.linking import _key_word, _variant, cluster_labels, lsh_shape
from globmed_data.dedup.settings import DedupSettings
from globmed_data.dedup.signing import dedup_texts, normalised
from globmed_data.kernels.scripts import UNSPACED_LANGUAGES

OVERLAPS = [
    ("apollo_xmedbench", "head_qa_es"),
    ("apollo_xmedbench", "frenchmedmcqa"),
    ("apollo_xmedbench", "medllm_zh"),
    ("medllm_ja", "igakuqa"),
    ("medllm_en", "medllm_en"),
    ("medllm_zh", "medllm_zh"),
]


def typo(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(2):
        k = rng.randrange(len(chars))
        chars[k] = rng.choice("aeiourstn") if chars[k].isascii() else chars[k]
    return "".join(chars)


def perturb(e: dict, rng: random.Random) -> dict:
    q, opts = e["question"], list(e["options"])
    kind = rng.choice(["typo", "reorder", "spacing", "truncate"])
    if kind == "typo":
        q = typo(q, rng)
    elif kind == "reorder":
        rng.shuffle(opts)
    elif kind == "spacing":
        q = "  " + q.replace(" ", "  ").replace(",", " ,").rstrip("?.") + " ?"
    else:
        q = q[: max(1, len(q) * 9 // 10)]
    return {**e, "entry_id": e["entry_id"] + "~" + kind, "question": q, "options": opts}


def templated_pairs(frame: pl.DataFrame) -> list[tuple[str, str]]:
    """Real questions of one source and language (spaced scripts, 8+ words) that differ in one
    key word at one position: one masked copy of each question per position, grouped."""
    spaced = frame.filter(~pl.col("language").is_in(list(UNSPACED_LANGUAGES)))
    words = (
        spaced.select("entry_id", "source", "language")
        .with_columns(tok=normalised(spaced["question"]).str.split(" "))
        .filter(pl.col("tok").list.len() >= 8)
    )
    by_id = dict(zip(words["entry_id"].to_list(), words["tok"].to_list(), strict=True))
    masked = words.with_columns(pos=pl.int_ranges(0, pl.col("tok").list.len())).explode("pos")
    masked = masked.with_columns(
        key=pl.concat_str([pl.col("tok").list.head(pl.col("pos")).list.join(" "), pl.lit("*"),
                           pl.col("tok").list.slice(pl.col("pos") + 1).list.join(" ")], separator=" ")
    )  # fmt: skip
    groups = (
        masked.group_by("source", "language", "key")
        .agg("entry_id", "pos")
        .filter(pl.col("entry_id").list.len() == 2)
    )
    pairs = []
    for ids, pos in groups.select("entry_id", "pos").iter_rows():
        a, b = by_id[ids[0]][pos[0]], by_id[ids[1]][pos[1]]
        if _key_word(a) and _key_word(b) and not _variant(a, b) and a[:4] != b[:4]:
            pairs.append((ids[0], ids[1]))
    return pairs


def swap_word(e: dict, other: dict, rng: random.Random) -> dict | None:
    """A copy of `e` with one key word of its question replaced by one of `other`'s."""
    mine = [w for w in re.findall(r"\w+", e["question"] or "") if _key_word(w.lower())]
    theirs = [w for w in re.findall(r"\w+", other["question"] or "") if _key_word(w.lower())]
    choices = [
        (a, b)
        for a in mine
        for b in theirs
        if not _variant(a.lower(), b.lower()) and a.lower()[:4] != b.lower()[:4]
    ]
    if not choices:
        return None
    a, b = rng.choice(choices)
    return {
        **e,
        "entry_id": e["entry_id"] + "~swapped",
        "question": re.sub(rf"\b{re.escape(a)}\b", b, e["question"], count=1),
    }


def datasketch_labels(texts: pl.DataFrame, s: DedupSettings) -> np.ndarray:
    """Plain datasketch: MinHash.update_batch over the same shingles (main text, then the
    options in our canonical order), MinHashLSH, union-find."""
    from datasketch import MinHash, MinHashLSH
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    lsh = MinHashLSH(threshold=s.threshold, num_perm=s.num_perm, params=lsh_shape(s))
    hashes = []
    for k, (lang, text, options) in enumerate(
        texts.select("language", "near_text", "near_options").iter_rows()
    ):
        m = MinHash(num_perm=s.num_perm)
        unspaced = lang in UNSPACED_LANGUAGES
        m.update_batch(
            shingle_bytes(" ".join([text, *options]).strip(), unspaced, s.word_ngram, s.char_ngram)
        )
        lsh.insert(k, m)
        hashes.append(m)
    left, right = [], []
    for k, m in enumerate(hashes):
        for other in lsh.query(m):
            if other != k:
                left.append(k)
                right.append(other)
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(len(hashes), len(hashes)))
    return connected_components(graph, directed=False)[1]


def shingle_bytes(text: str, unspaced: bool, word_ngram: int, char_ngram: int) -> list[bytes]:
    tokens = list(text.replace(" ", "")) if unspaced else [t for t in text.split(" ") if t]
    n, sep = (char_ngram, "") if unspaced else (word_ngram, " ")
    if not tokens:
        return []
    if len(tokens) < n:
        return [text.encode()]
    return list({sep.join(tokens[k : k + n]).encode() for k in range(len(tokens) - n + 1)})


def score(labels: np.ndarray, pairs: list[tuple[int, int, bool]]) -> tuple[float, float, float]:
    tp = sum(labels[a] == labels[b] and dup for a, b, dup in pairs)
    fp = sum(labels[a] == labels[b] and not dup for a, b, dup in pairs)
    fn = sum(labels[a] != labels[b] and dup for a, b, dup in pairs)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--perturbed", type=int, default=2000)
    ap.add_argument("--warehouse", type=Path)
    args = ap.parse_args()
    loaded = load_config(ROOT / "configs" / "shared-real.yaml")
    s = loaded.config.dedup
    bands, rows = lsh_shape(s)
    with tempfile.TemporaryDirectory() as tmp:
        wh = collected(args.warehouse or Path(tmp) / "wh.duckdb")
        entries = wh.query_dicts(
            "SELECT entry_id, source, task, language, question, options, premise, hypothesis, "
            "json_extract_string(metadata, '$._file') AS file, record_key "
            "FROM entries WHERE status = 'active' AND task = 'mcqa'"
        )
        wh.close()
    rng = random.Random(5)
    frame = pl.DataFrame(entries)
    norm = dedup_texts(frame.with_columns(options=pl.lit([], dtype=pl.List(pl.String)))).select(
        pl.col("exact_key").alias("qkey")
    )
    frame = frame.with_columns(norm["qkey"], pl.col("record_key").str.replace(r"[:/].*$", "").alias("part"))
    labelled: list[tuple[str, str, str]] = []  # (id a, id b, kind)
    for a, b in OVERLAPS:
        left = frame.filter(pl.col("source") == a)
        right = frame.filter(pl.col("source") == b)
        joined = left.join(right, on=["qkey", "language"], suffix="_b").filter(
            pl.col("entry_id") < pl.col("entry_id_b")
        )
        if a == b:  # within medLLM: the 5-option and 4-option MedQA files
            joined = joined.filter(
                pl.col("record_key").str.contains("4op") != pl.col("record_key_b").str.contains("4op")
            )
        for x, y in joined.select("entry_id", "entry_id_b").unique().iter_rows():
            labelled.append((x, y, "known"))
    sample = rng.sample(entries, args.perturbed)
    copies = [perturb(e, rng) for e in sample]
    labelled += [(e["entry_id"], c["entry_id"], "perturbed") for e, c in zip(sample, copies, strict=True)]
    numeric = []
    for e in rng.sample([e for e in entries if re.search(r"\d", e["question"] or "")], args.perturbed // 2):
        changed = re.sub(r"\d+", lambda m: str(int(m.group()) + 7), e["question"], count=1)
        numeric.append({**e, "entry_id": e["entry_id"] + "~numeric", "question": changed})
    labelled += [(c["entry_id"].removesuffix("~numeric"), c["entry_id"], "numeric") for c in numeric]
    copies += numeric
    spaced = [e for e in entries if e["language"] not in UNSPACED_LANGUAGES]
    swapped = []
    for e in rng.sample(spaced, args.perturbed // 2):
        copy = swap_word(
            e, rng.choice([o for o in rng.sample(spaced, 5) if o["language"] == e["language"]] or [e]), rng
        )
        if copy is not None:
            swapped.append(copy)
    labelled += [(c["entry_id"].removesuffix("~swapped"), c["entry_id"], "swapped") for c in swapped]
    copies += swapped
    labelled += [(a, b, "templated") for a, b in templated_pairs(frame)]
    by_start = frame.with_columns(start=pl.col("question").str.split(" ").list.head(4).list.join(" ")).filter(
        pl.col("question").str.split(" ").list.len() > 8
    )
    groups = (
        by_start.group_by("source", "language", "start")
        .agg("entry_id", "qkey")
        .filter(pl.col("entry_id").list.len() > 1)
    )
    for ids, keys in groups.select("entry_id", "qkey").iter_rows():
        if keys[0] != keys[1] and len(labelled) < 10**6:
            labelled.append((ids[0], ids[1], "lookalike"))
    pool = pl.concat(
        [
            frame.drop("qkey", "part", "file", "record_key"),
            pl.DataFrame(copies).select(frame.drop("qkey", "part", "file", "record_key").columns),
        ],
        how="vertical_relaxed",
    )
    texts = dedup_texts(pool)
    index = {e: k for k, e in enumerate(texts["entry_id"].to_list())}
    kinds = {"known": 0, "perturbed": 0, "lookalike": 0, "numeric": 0, "templated": 0, "swapped": 0}
    pairs = []
    for a, b, kind in labelled:
        pairs.append((index[a], index[b], kind in ("known", "perturbed"), kind))
        kinds[kind] += 1
    print(f"{len(texts):,} entries; labelled pairs: " + ", ".join(f"{k} {v:,}" for k, v in kinds.items()))
    print(
        f"parameters: num_perm {s.num_perm}, threshold {s.threshold} (verified at "
        f"{s.threshold - s.verify_margin:.2f}), bands {bands} x rows {rows}, "
        f"word {s.word_ngram}-grams / char {s.char_ngram}-grams"
    )
    for name, fn, data in (("globmed", cluster_labels, pool), ("datasketch", datasketch_labels, texts)):
        t0 = time.perf_counter()
        labels = fn(data, s)
        seconds = time.perf_counter() - t0
        p, r, f1 = score(labels, [(a, b, d) for a, b, d, _ in pairs])
        _, _, f1_plain = score(
            labels, [(a, b, d) for a, b, d, k in pairs if k not in ("numeric", "templated", "swapped")]
        )
        per_kind = []
        for kind in kinds:
            sub = [(a, b, d) for a, b, d, k in pairs if k == kind]
            hits = sum(labels[a] == labels[b] for a, b, _ in sub)
            per_kind.append(f"{kind} {hits / len(sub):.1%} same-cluster")
        print(
            f"{name:10} precision {p:.4f} recall {r:.4f} F1 {f1:.4f} (without numeric/templated/swapped "
            f"{f1_plain:.4f}) ({seconds:.1f}s)  " + "; ".join(per_kind)
        )


if __name__ == "__main__":
    main()
