"""MinHash LSH over whole batches: normalised text, shingles, signatures, band keys, clusters.

The algorithm is datasketch 2's default MinHash (32-bit shingle hashes, MurmurHash3's finalizer,
affine permutations a·h + b mod 2^32 with odd a, the same seeded parameters), and LSH banding.
Normalisation, shingling, signing, band keys and pair similarity are compiled kernels
(minhash_kernels); structure (option sets, answers, numbers) and keys are polars. The exact and
item keys are polars' string hash, stable for one polars version: SIGNATURE_VERSION includes
it, and a change of version recomputes the persisted signatures.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from scipy.integrate import quad

from globmed_data.dedup.kernels import (
    answer_keys,
    group_partners,
    normalise_series,
    sign_texts,
    similarity,
)
from globmed_data.dedup.kernels import band_keys as band_keys  # re-exported for the stage
from globmed_data.kernels.scripts import UNSPACED_LANGUAGES
from globmed_data.kernels.utf8 import list_parts

SIGNATURE_VERSION = f"2-polars{pl.__version__}"
_SEP = "\x1f"


def normalised(series: pl.Series | pa.Array) -> pl.Series:
    """Case, width, punctuation and spacing folded: what exact dedup compares (null: "")."""
    return normalise_series(series)


def dedup_texts(df: pl.DataFrame) -> pl.DataFrame:
    """exact_key, item_key, numbers and the normalised texts MinHash reads, per entry.

    exact_key hashes the task, the normalised main text and the option *set*: reordered or
    relabelled options give the same key. Two similar texts are still two items when their
    answers differ (item_key: the correct options' texts, or the label) or when their numbers
    differ (numbers: a dose for 16 kg is not a dose for 18 kg, a heart rate of 40 is not one of
    88). A near link needs equal item keys and one question's numbers inside the other's.
    near_text is the main text and near_options the normalised options in a canonical order:
    MinHash reads them as one text, so their order never matters.
    """
    df = df.with_columns(
        [pl.lit(None, dtype=t).alias(c) for c, t in _OPTIONAL.items() if c not in df.columns]
    )
    option_offsets, flat = list_parts(df["options"])
    options = normalised(flat)
    option_hash = options.hash(seed=7).to_numpy()
    # MinHash reads the options after the main text in one canonical order (by hash, within
    # each row), so reordered options give the same signature.
    row_of = np.repeat(np.arange(len(df)), np.diff(option_offsets))
    canonical = options.gather(np.lexsort((option_hash, row_of)))
    # The option set: an order-free sum of mixed option hashes (a multiset, like sorting).
    mixed = np.cumsum(_mix64(option_hash), dtype=np.uint64)
    summed = np.r_[np.uint64(0), mixed]
    set_key = summed[option_offsets[1:]] - summed[option_offsets[:-1]]
    answer_offsets, answers = list_parts(df["answer_indices"])
    answer_key = answer_keys(option_hash, option_offsets,
                             pc.fill_null(answers, -1).to_numpy(zero_copy_only=False).astype(np.int64),
                             answer_offsets)  # fmt: skip
    # An NLI item is its pair: one premise carries many hypotheses, each a different item. The
    # premise enters as one token (its hash), so only pairs on the same premise can match.
    norm = pl.DataFrame({"_q": normalised(df["question"]), "_p": normalised(df["premise"]),
                         "_h": normalised(df["hypothesis"])})  # fmt: skip
    nli = pl.concat_str([pl.col("_p").hash(seed=3).cast(pl.String), pl.col("_h")], separator=" ")
    main = norm.select(pl.when(df["task"] == "nli").then(nli).otherwise(pl.col("_q"))).to_series()
    raw = pl.concat_str(
        [pl.col("question"), pl.col("premise"), pl.col("hypothesis")], separator=" ", ignore_nulls=True
    )
    numbers = raw.str.extract_all(r"\d+").list.sort().list.join(" ")  # digit runs: "11,500" = "11 500"
    main_key = (df["task"].fill_null("") + _SEP + main).hash(seed=7).to_numpy()
    label_key = df["label"].fill_null("").hash(seed=5).to_numpy()
    return df.select(
        "entry_id",
        "language",
        pl.Series("exact_key", _mix64(main_key ^ _mix64(set_key)), dtype=pl.UInt64),
        pl.Series(
            "item_key", np.where(df["task"].to_numpy() == "mcqa", answer_key, label_key), dtype=pl.UInt64
        ),
        numbers.fill_null("").alias("numbers"),
        main.alias("near_text"),
        pl.Series("near_options", pa.LargeListArray.from_arrays(option_offsets, canonical.to_arrow())),
    )


def _mix64(h: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(31))) * np.uint64(0x9E3779B97F4A7C15)
        return h ^ (h >> np.uint64(29))


_OPTIONAL = {"answer_indices": pl.List(pl.Int32), "label": pl.String, "premise": pl.String,
             "hypothesis": pl.String}  # fmt: skip


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

    The reference form of what `signatures` computes, one shingle at a time, in compiled code.
    """
    with np.errstate(over="ignore"):
        return fmix32(hv)[:, None] * a[None, :] + b[None, :]


def signatures(texts: pl.DataFrame, word_ngram: int, char_ngram: int, num_perm: int) -> np.ndarray:
    """MinHash signatures (rows × num_perm, uint32) of dedup texts: word n-grams where words are
    spaced, character n-grams for zh, ja, th and the like (see minhash_kernels._sign)."""
    unspaced = texts["language"].is_in(list(UNSPACED_LANGUAGES)).fill_null(False).to_numpy()
    option_offsets, options = list_parts(texts["near_options"])
    a, b = permutations(num_perm)
    return sign_texts(texts["near_text"], pl.Series(options, dtype=pl.String), option_offsets, unspaced,
                      word_ngram, char_ngram, a, b)  # fmt: skip


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


@dataclass(frozen=True)
class LshParams:
    num_perm: int
    bands: int
    rows: int
    threshold: float
    verify_margin: float = 0.0


def candidate_pairs(
    exact: np.ndarray, bands: np.ndarray, is_new: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) to verify: each new entry against the two smallest others sharing a key.

    Linking to two partners per key (not to every member, as an LSH query would) keeps big
    clusters linear in size; every member still links into its group, so the components are
    the same. (Linking every pair of groups up to 8 members was measured: no change in F1.)
    Key columns: the exact key, then each band (`bands`: bands × entries).
    """
    columns = [np.ascontiguousarray(k) for k in [exact.astype(np.uint64), *bands]]
    workers = max(1, min(os.cpu_count() or 1, 8, len(columns)))
    with ThreadPoolExecutor(workers) as pool:  # sorts and kernels release the GIL
        found = list(
            pool.map(lambda part: _links(part, is_new), [columns[w::workers] for w in range(workers)])
        )
    lo = np.concatenate([np.minimum(i, j) for i, j in found]).astype(np.uint64)
    hi = np.concatenate([np.maximum(i, j) for i, j in found]).astype(np.uint64)
    pair = np.sort((lo << np.uint64(32)) | hi)
    pair = pair[np.r_[True, pair[1:] != pair[:-1]]] if len(pair) else pair
    return (pair >> np.uint64(32)).astype(np.int64), (pair & np.uint64(0xFFFFFFFF)).astype(np.int64)


def _links(columns: list[np.ndarray], is_new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """group_partners over some key columns, with their own memory of pairs already written."""
    n = len(is_new)
    seen = np.full((n, 4), -1, np.int64)
    # A column writes at most two pairs per entry. Untouched pages of np.empty cost no memory,
    # so the bound is allocated at once and only the pairs written are resident.
    out_i, out_j = np.empty(2 * n * len(columns), np.int64), np.empty(2 * n * len(columns), np.int64)
    filled = 0
    for keys in columns:
        filled = group_partners(keys, np.argsort(keys), is_new, seen, out_i, out_j, filled)
    return out_i[:filled], out_j[:filled]


def verified(
    exact: np.ndarray,
    item: np.ndarray,
    numbers: pl.Series,
    sig: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    at: float,
) -> np.ndarray:
    """Links that stand: equal exact keys; or estimated similarity >= `at`, equal answers, and
    one question's numbers all found in the other's (a cut or edited question keeps a subset)."""
    same = exact[i] == exact[j]
    near = ~same & (item[i] == item[j]) & (similarity(sig, i, j) >= at)
    number_key = numbers.hash(seed=13).to_numpy()
    for k in np.flatnonzero(near & (number_key[i] != number_key[j])):  # the rare case, in Python
        a, b = numbers[int(i[k])], numbers[int(j[k])]
        if a != b and not _within(a.split(), b.split()):
            near[k] = False
    return same | near


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
    # The map runs batch by batch, as the stage's does, so memory stays bounded by a batch.
    parts = [sign_entries(frame.slice(k, batch), word_ngram, char_ngram, params.num_perm)
             for k in range(0, len(frame), batch)]  # fmt: skip
    exact = np.concatenate([t["exact_key"].to_numpy() for t, _ in parts]).astype(np.uint64)
    item = np.concatenate([t["item_key"].to_numpy() for t, _ in parts]).astype(np.uint64)
    numbers = pl.concat([t["numbers"] for t, _ in parts])
    sig = np.concatenate([g for _, g in parts])
    keys = band_keys(sig, params.bands, params.rows)
    i, j = candidate_pairs(exact, keys, np.ones(len(frame), dtype=bool))
    keep = verified(exact, item, numbers, sig, i, j, params.threshold - params.verify_margin)
    return components(len(frame), i[keep], j[keep])
