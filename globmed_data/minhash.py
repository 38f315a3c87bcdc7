"""MinHash LSH, vectorised: normalised text, shingles, signatures, band keys, clusters.

The algorithm is datasketch 2's default MinHash (32-bit shingle hashes, MurmurHash3's finalizer,
affine permutations a·h + b mod 2^32 with odd a, the same seeded parameters), and LSH banding,
done on whole batches with polars and NumPy instead of one Python call per entry. The shingle hash is polars'
string hash, so signatures are stable for one polars version: SIGNATURE_VERSION includes it,
and a change of version recomputes the persisted signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import polars as pl
from scipy.integrate import quad

from globmed_data.scripts import UNSPACED_LANGUAGES

SIGNATURE_VERSION = f"1-polars{pl.__version__}"
_SEP = "\x1f"


def normalised(expr: pl.Expr) -> pl.Expr:
    """Case, width, punctuation and spacing folded: what exact dedup compares."""
    return (
        expr.fill_null("")
        .str.normalize("NFKC")
        .str.to_lowercase()
        .str.replace_all(r"[\p{P}\p{S}\s]+", " ")
        .str.strip_chars()
    )


def dedup_texts(df: pl.DataFrame) -> pl.DataFrame:
    """exact_key (hash of task, main text and the option *set*) and near_text, per entry.

    Options are compared as a set: reordered or relabelled options give the same key.
    """
    # An NLI item is its pair: one premise carries many hypotheses, each a different item. The
    # premise enters as one token (its hash), so only pairs on the same premise can match.
    premise_token = normalised(pl.col("premise")).hash(seed=3).cast(pl.String)
    nli = pl.concat_str([premise_token, normalised(pl.col("hypothesis"))], separator=" ")
    main = pl.when(pl.col("task") == "nli").then(nli).otherwise(normalised(pl.col("question")))
    options = pl.col("options").list.eval(normalised(pl.element())).list.sort().list.join(_SEP).fill_null("")
    out = df.select(
        "entry_id",
        "language",
        main.alias("_main"),
        options.alias("_options"),
        pl.col("task"),
    )
    return out.select(
        "entry_id",
        "language",
        pl.concat_str(["task", "_main", "_options"], separator=_SEP).hash(seed=7).alias("exact_key"),
        pl.concat_str([pl.col("_main"), pl.col("_options").str.replace_all(_SEP, " ")], separator=" ")
        .str.strip_chars()
        .alias("near_text"),
    )


def shingles(texts: pl.DataFrame, word_ngram: int, char_ngram: int) -> pl.DataFrame:
    """(row, hv) pairs: distinct 32-bit shingle hashes per text row.

    Word n-grams where words are spaced; character n-grams for zh, ja, th and the like. A text
    shorter than one n-gram is one shingle, so identical short texts still collide.
    """
    df = texts.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("row"),
        pl.col("language").is_in(list(UNSPACED_LANGUAGES)).alias("unspaced"),
        "near_text",
    )
    parts = []
    for unspaced, n, sep in ((False, word_ngram, " "), (True, char_ngram, "")):
        sub = df.filter(pl.col("unspaced") == unspaced)
        if sub.is_empty():
            continue
        tokens = (
            pl.col("near_text").str.replace_all(" ", "").str.split("")
            if unspaced
            else pl.col("near_text").str.split(" ")
        )
        exploded = sub.select("row", tokens.alias("tok")).explode("tok").filter(pl.col("tok") != "")
        grams = exploded.with_columns(
            pl.concat_str(
                [pl.col("tok").shift(-k).over("row") for k in range(n)], separator=sep, ignore_nulls=False
            ).alias("gram")
        )
        has_full = grams.group_by("row").agg(pl.col("gram").is_not_null().any().alias("full"))
        short = sub.join(has_full.filter(~pl.col("full")), on="row", how="semi").select(
            "row", pl.col("near_text").alias("gram")
        )
        parts.append(grams.filter(pl.col("gram").is_not_null()).select("row", "gram"))
        parts.append(short)
    if not parts:
        return pl.DataFrame({"row": [], "hv": []}, schema={"row": pl.UInt32, "hv": pl.UInt64})
    allg = pl.concat(parts)
    return allg.select("row", (pl.col("gram").hash(seed=11) & 0xFFFFFFFF).alias("hv")).unique().sort("row")


@cache
def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's default ("affine32") permutation parameters: same generator and seed."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def fmix32(hv: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, as datasketch applies it before the permutations."""
    hv = hv.astype(np.uint32)
    with np.errstate(over="ignore"):
        hv = hv ^ (hv >> np.uint32(16))
        hv = hv * np.uint32(0x85EBCA6B)
        hv = hv ^ (hv >> np.uint32(13))
        hv = hv * np.uint32(0xC2B2AE35)
        return hv ^ (hv >> np.uint32(16))


def permute(hv: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a·fmix32(hv) + b modulo 2^32, for every shingle (rows) and permutation (columns)."""
    with np.errstate(over="ignore"):
        return fmix32(hv)[:, None] * a[None, :] + b[None, :]


def signatures(grams: pl.DataFrame, rows: int, num_perm: int, chunk: int = 1 << 15) -> np.ndarray:
    """MinHash signatures (rows × num_perm, uint32) from (row, hv) pairs sorted by row.

    A row with no shingle (empty text) gets the all-max signature, like datasketch's empty MinHash.
    """
    a, b = permutations(num_perm)
    sig = np.full((rows, num_perm), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    row = grams.get_column("row").to_numpy()
    hv = grams.get_column("hv").to_numpy().astype(np.uint32)
    # Process whole rows per chunk, so each row's minimum comes from one reduceat.
    bounds = np.searchsorted(row, np.arange(0, rows + 1, dtype=row.dtype), side="left")
    start = 0
    while start < len(hv):
        stop_row = int(row[min(start + chunk, len(hv)) - 1]) + 1
        stop = int(bounds[stop_row]) if stop_row <= rows else len(hv)
        part_rows, part = row[start:stop], hv[start:stop]
        ph = permute(part, a, b)
        first = np.flatnonzero(np.r_[True, part_rows[1:] != part_rows[:-1]])
        sig[part_rows[first]] = np.minimum.reduceat(ph, first, axis=0)
        start = stop
    return sig


def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """Bands b and rows r (b·r ≤ num_perm) minimising false positives + false negatives.

    The same weighting as datasketch's MinHashLSH (equal weights): the integrals of the
    S-curve 1 − (1 − s^r)^b below and above the threshold.
    """
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = quad(lambda s, b=b, r=r: 1 - (1 - s**r) ** b, 0.0, threshold)[0]
            fn = quad(lambda s, b=b, r=r: 1 - (1 - (1 - s**r) ** b), threshold, 1.0)[0]
            if fp + fn < best_err:
                best, best_err = (b, r), fp + fn
    return best


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (entry, band): a hash of the band's r signature values."""
    n = sig.shape[0]
    keys = np.empty((n, bands), dtype=np.uint64)
    mult = np.uint64(0x9E3779B97F4A7C15)
    for i in range(bands):
        part = sig[:, i * rows : (i + 1) * rows].astype(np.uint64)
        acc = np.full(n, np.uint64(i + 1), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(rows):
                acc = (acc ^ part[:, j]) * mult
                acc ^= acc >> np.uint64(29)
        keys[:, i] = acc
    return keys


def similarity(sig: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity of entry pairs: the share of equal signature values."""
    out = np.empty(len(left), dtype=np.float32)
    for s in range(0, len(left), 1 << 16):
        e = s + (1 << 16)
        out[s:e] = (sig[left[s:e]] == sig[right[s:e]]).mean(axis=1)
    return out


@dataclass(frozen=True)
class LshParams:
    num_perm: int
    bands: int
    rows: int
    threshold: float


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Union-find over edges, vectorised: the component label of each of n nodes."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def cluster_labels(texts: pl.DataFrame, params: LshParams, word_ngram: int, char_ngram: int) -> np.ndarray:
    """The whole method in memory (what the stage does, minus storage): cluster label per text.

    Map: shingles, signatures, band keys. Reduce: one candidate per shared key, verification
    against the threshold (exact keys always link), connected components.
    """
    from globmed_data.dedup_stage import candidate_links

    sig = signatures(shingles(texts, word_ngram, char_ngram), len(texts), params.num_perm)
    exact = texts["exact_key"].to_numpy().astype(np.uint64)
    pairs = candidate_links(exact, band_keys(sig, params.bands, params.rows), np.ones(len(texts), dtype=bool))
    i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
    keep = (exact[i] == exact[j]) | (similarity(sig, i, j) >= params.threshold)
    return components(len(texts), i[keep], j[keep])
