"""MinHash LSH, vectorised: normalised text, shingles, signatures, band keys, clusters.

The algorithm is datasketch 2's default MinHash (32-bit shingle hashes, MurmurHash3's finalizer,
affine permutations a·h + b mod 2^32 with odd a, the same seeded parameters), and LSH banding,
done on whole batches with polars and NumPy instead of one Python call per entry. The shingle hash is polars'
string hash, so signatures are stable for one polars version: SIGNATURE_VERSION includes it,
and a change of version recomputes the persisted signatures.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
    """exact_key, item_key and near_text, per entry.

    exact_key hashes the task, the normalised main text and the option *set*: reordered or
    relabelled options give the same key. Two similar texts are still two items when their
    answers differ (item_key: the correct options' texts, or the label) or when their numbers
    differ (numbers: a dose for 16 kg is not a dose for 18 kg, a heart rate of 40 is not one of
    88). A near link needs equal item keys and one question's numbers inside the other's.
    """
    df = df.with_columns(
        [pl.lit(None, dtype=t).alias(c) for c, t in _OPTIONAL.items() if c not in df.columns]
    )
    # An NLI item is its pair: one premise carries many hypotheses, each a different item. The
    # premise enters as one token (its hash), so only pairs on the same premise can match.
    premise_token = normalised(pl.col("premise")).hash(seed=3).cast(pl.String)
    nli = pl.concat_str([premise_token, normalised(pl.col("hypothesis"))], separator=" ")
    main = pl.when(pl.col("task") == "nli").then(nli).otherwise(normalised(pl.col("question")))
    # Normalise all options in one string (the separator survives normalisation), then sort.
    options = (
        normalised(pl.col("options").list.join(_SEP))
        .str.replace_all(f" ?{_SEP} ?", _SEP)
        .str.split(_SEP)
        .list.sort()
        .list.join(_SEP)
        .fill_null("")
    )
    raw = pl.concat_str(
        [pl.col("question"), pl.col("premise"), pl.col("hypothesis")], separator=" ", ignore_nulls=True
    )
    numbers = raw.str.extract_all(r"\d+").list.sort().list.join(" ")  # digit runs: "11,500" = "11 500"
    answer = (
        pl.when(pl.col("task") == "mcqa")
        .then(
            normalised(
                pl.col("options").list.gather(pl.col("answer_indices"), null_on_oob=True).list.join(_SEP)
            )
        )
        .otherwise(pl.col("label"))
    )
    out = df.select(
        "entry_id",
        "language",
        main.alias("_main"),
        options.alias("_options"),
        pl.col("task"),
        answer.fill_null("").hash(seed=5).alias("item_key"),
        numbers.fill_null("").alias("numbers"),
    )
    return out.select(
        "entry_id",
        "language",
        pl.concat_str(["task", "_main", "_options"], separator=_SEP).hash(seed=7).alias("exact_key"),
        "item_key",
        "numbers",
        pl.concat_str([pl.col("_main"), pl.col("_options").str.replace_all(_SEP, " ")], separator=" ")
        .str.strip_chars()
        .alias("near_text"),
    )


_OPTIONAL = {"answer_indices": pl.List(pl.Int32), "label": pl.String, "premise": pl.String,
             "hypothesis": pl.String}  # fmt: skip
_MIX = np.uint64(0x9E3779B97F4A7C15)


def shingles(
    texts: pl.DataFrame, word_ngram: int, char_ngram: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(rows, hv) groups of 32-bit shingle hashes, each grouped by row in ascending order.

    Word n-grams where words are spaced; character n-grams for zh, ja, th and the like. Tokens
    are hashed once (polars); an n-gram's hash combines its tokens' hashes in NumPy, so no
    n-gram string is ever built. A text shorter than one n-gram is one shingle (its own hash),
    so identical short texts still collide. Repeated shingles are left in: they cannot change
    a minimum.
    """
    df = texts.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
        pl.col("language").is_in(list(UNSPACED_LANGUAGES)).alias("unspaced"),
        "near_text",
    )
    for unspaced, n in ((False, word_ngram), (True, char_ngram)):
        sub = df.filter(pl.col("unspaced") == unspaced)
        if sub.is_empty():
            continue
        row, tok = _char_tokens(sub) if unspaced else _word_tokens(sub)
        grams_row, grams = _ngram_hashes(row, tok, n)
        # Rows with tokens but no full n-gram: the whole text is their one shingle.
        counts = np.bincount(row, minlength=len(df)) if len(row) else np.zeros(len(df), np.int64)
        short = np.flatnonzero((counts > 0) & (counts < n))
        yield grams_row, _fold32(grams)
        if len(short):
            whole = texts.select(pl.col("near_text").hash(seed=11)).to_series().to_numpy()[short]
            yield short, _fold32(whole)


def _fold32(h: np.ndarray) -> np.ndarray:
    return ((h ^ (h >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def _word_tokens(sub: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    exploded = sub.select("row", pl.col("near_text").str.split(" ").alias("tok")).explode("tok")
    exploded = exploded.filter(pl.col("tok") != "")
    return exploded["row"].to_numpy(), exploded.select(pl.col("tok").hash(seed=11)).to_series().to_numpy()


def _char_tokens(sub: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Characters as tokens: the code points themselves, read in one pass through UTF-32."""
    texts = sub.select(pl.col("near_text").str.replace_all(" ", "")).to_series()
    lengths = texts.str.len_chars().to_numpy()
    points = np.frombuffer("".join(texts.to_list()).encode("utf-32-le"), dtype=np.uint32)
    with np.errstate(over="ignore"):
        tok = (points.astype(np.uint64) + np.uint64(0x51ED27)) * _MIX  # spread small code points
    return np.repeat(sub["row"].to_numpy(), lengths), tok


def _ngram_hashes(row: np.ndarray, tok: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every n consecutive tokens that lie in one row (order-sensitive)."""
    m = len(tok) - n + 1
    if m <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    with np.errstate(over="ignore"):
        acc = tok[:m] * _MIX  # one new array; the rest is in place
        for k in range(1, n):
            np.add(acc, tok[k : k + m], out=acc)
            if k < n - 1:
                np.multiply(acc, _MIX, out=acc)
    valid = row[:m] == row[n - 1 :]
    return row[:m][valid], acc[valid]


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
    """a·fmix32(hv) + b modulo 2^32, for every shingle (rows) and permutation (columns).

    The reference form of what `signatures` computes in cache-sized, transposed parts.
    """
    with np.errstate(over="ignore"):
        return fmix32(hv)[:, None] * a[None, :] + b[None, :]


def signatures(
    texts: pl.DataFrame, word_ngram: int, char_ngram: int, num_perm: int, threads: int = 1
) -> np.ndarray:
    """MinHash signatures (rows × num_perm, uint32) of dedup texts.

    A text with no shingle (empty) keeps the all-max signature, like datasketch's empty MinHash.
    """
    sig = np.full((len(texts), num_perm), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    jobs = []
    for rows, hv in shingles(texts, word_ngram, char_ngram):
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else np.zeros(0, np.int64)
        # Parts of about _CHUNK shingles that end on row boundaries; threads share the work
        # (NumPy's ufuncs release the GIL).
        at = np.searchsorted(starts, np.arange(_CHUNK, len(rows), _CHUNK))
        cuts = starts[at[at < len(starts)]]  # a row longer than a chunk stays whole
        bounds = np.unique(np.r_[0, cuts, len(rows)])
        jobs += [(rows[x:y], hv[x:y]) for x, y in itertools.pairwise(bounds) if y > x]
    a, b = permutations(num_perm)

    def run(job: tuple[np.ndarray, np.ndarray]) -> None:
        # Permutations × shingles, so each row's minimum is a contiguous run per permutation:
        # reduceat along the last axis is several times faster than down the columns.
        rows, hv = job
        buf = np.multiply(a[:, None], fmix32(hv)[None, :])
        np.add(buf, b[:, None], out=buf)
        first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        sig[rows[first]] = np.minimum.reduceat(buf, first, axis=1).T

    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, jobs))
    else:
        for job in jobs:
            run(job)
    return sig


def sign_entries(
    frame: pl.DataFrame, word_ngram: int, char_ngram: int, num_perm: int
) -> tuple[pl.DataFrame, np.ndarray]:
    """The map step on all cores: dedup texts and signatures of a batch of entries.

    The batch is cut into one slice per core, each normalised, shingled and signed in its own
    thread: polars and NumPy release the GIL, so the slices run side by side.
    """
    parts = max(1, min(os.cpu_count() or 1, 8, len(frame) // 2000))
    size = -(-len(frame) // parts) if len(frame) else 0

    def one(k: int) -> tuple[pl.DataFrame, np.ndarray]:
        texts = dedup_texts(frame.slice(k * size, size))
        return texts, signatures(texts, word_ngram, char_ngram, num_perm)

    if parts == 1:
        return one(0)
    with ThreadPoolExecutor(parts) as pool:
        done = list(pool.map(one, range(parts)))
    return pl.concat([t for t, _ in done]), np.concatenate([g for _, g in done])


_CHUNK = 1 << 12  # shingles per job: its 128 × 4096 buffer stays in cache


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
    verify_margin: float = 0.0


def verified(
    exact: np.ndarray,
    item: np.ndarray,
    numbers: list[str],
    sig: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    at: float,
) -> np.ndarray:
    """Links that stand: equal exact keys; or estimated similarity >= `at`, equal answers, and
    one question's numbers all found in the other's (a cut or edited question keeps a subset)."""
    near = ~(exact[i] == exact[j]) & (item[i] == item[j]) & (similarity(sig, i, j) >= at)
    for k in np.flatnonzero(near):
        a, b = numbers[i[k]], numbers[j[k]]
        if a != b and not _within(a.split(), b.split()):
            near[k] = False
    return (exact[i] == exact[j]) | near


def _within(a: list[str], b: list[str]) -> bool:
    """One multiset of numbers contained in the other."""
    small, big = (a, b) if len(a) <= len(b) else (b, a)
    pool = Counter(big)
    return all(pool[x] >= c for x, c in Counter(small).items())


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Union-find over edges, vectorised: the component label of each of n nodes."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def cluster_labels(
    frame: pl.DataFrame, params: LshParams, word_ngram: int, char_ngram: int, batch: int = 50_000
) -> np.ndarray:
    """The whole method in memory (what the stage does, minus storage): cluster label per entry.

    Map: normalise, shingle, sign, band keys. Reduce: two candidates per shared key,
    verification against the threshold (exact keys always link), connected components.
    """
    from globmed_data.dedup_stage import candidate_links

    # The map runs batch by batch, as the stage's does, so memory stays bounded by a batch.
    parts = [sign_entries(frame.slice(k, batch), word_ngram, char_ngram, params.num_perm)
             for k in range(0, len(frame), batch)]  # fmt: skip
    exact = np.concatenate([t["exact_key"].to_numpy() for t, _ in parts]).astype(np.uint64)
    item = np.concatenate([t["item_key"].to_numpy() for t, _ in parts]).astype(np.uint64)
    numbers = [n for t, _ in parts for n in t["numbers"].to_list()]
    sig = np.concatenate([g for _, g in parts])
    texts = frame
    pairs = candidate_links(exact, band_keys(sig, params.bands, params.rows), np.ones(len(texts), dtype=bool))
    i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
    keep = verified(exact, item, numbers, sig, i, j, params.threshold - params.verify_margin)
    return components(len(texts), i[keep], j[keep])
