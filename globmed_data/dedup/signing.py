"""Dedup's map: per batch of entries, the normalised texts, their keys and MinHash signatures.

Each batch is signed on its own (the stage signs new and edited entries batch by batch, and Ray
can run the batches as tasks); linking.py is the reduce over every signed entry.

The algorithm is datasketch 2's default MinHash (32-bit shingle hashes, MurmurHash3's finalizer,
affine permutations a·h + b mod 2^32 with odd a, the same seeded parameters), and LSH banding.
Normalisation, shingling, signing, band keys and pair similarity are compiled kernels
(minhash_kernels); structure (option sets, answers, numbers) and keys are polars. The exact and
item keys are polars' string hash, stable for one polars version: SIGNATURE_VERSION includes
it, and a change of version recomputes the persisted signatures.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from globmed_data.dedup.kernels import (
    answer_keys,
    normalise_series,
    sign_texts,
)
from globmed_data.kernels.scripts import UNSPACED_LANGUAGES
from globmed_data.kernels.utf8 import list_parts

if TYPE_CHECKING:
    from globmed_data.dedup.settings import DedupSettings

SIGNATURE_VERSION = f"3-polars{pl.__version__}"
ANSWER_PERM = 32  # permutations of an open answer's MinHash: its similarity is a coarse gate
_SEP = "\x1f"


def normalised(series: pl.Series | pa.Array) -> pl.Series:
    """Case, width, punctuation and spacing folded: what exact dedup compares (null: "")."""
    return normalise_series(series)


def dedup_texts(df: pl.DataFrame) -> pl.DataFrame:
    """exact_key, item_key, numbers and the normalised texts MinHash reads, per entry.

    exact_key hashes the task, the normalised main text, the option *set* (reordered or
    relabelled options give the same key) and the item key: the same question with another
    answer is another item. Two similar texts are still two items when their
    answers differ (item_key: the correct options' texts, or the label) or when their numbers
    differ (numbers: a dose for 16 kg is not a dose for 18 kg, a heart rate of 40 is not one of
    88). A near link needs equal item keys and one question's numbers inside the other's.
    near_text is the main text and near_options the normalised options in a canonical order:
    MinHash reads them as one text, so their order never matters. An open question's answer is
    free text: its normalised form enters the exact key (an exact copy has the same answer) and
    answer_text is signed apart, so near links compare answers by similarity (linking.py).
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
    is_open = (df["task"] == "open_qa").fill_null(False)
    answer_text = normalised(df["answer"]).zip_with(is_open, pl.Series([""] * len(df), dtype=pl.String))
    answer_hash = np.where(is_open.to_numpy(), answer_text.hash(seed=11).to_numpy(), np.uint64(0))
    main_key = (df["task"].fill_null("") + _SEP + main).hash(seed=7).to_numpy() ^ _mix64(answer_hash)
    label_key = df["label"].fill_null("").hash(seed=5).to_numpy()
    item_key = np.where(df["task"].to_numpy() == "mcqa", answer_key, label_key).astype(np.uint64)
    # The answer is part of the item: one question keyed two ways (two intents, two answer
    # letters) is two items, never an exact duplicate.
    exact_key = _mix64(main_key ^ _mix64(set_key)) ^ _mix64(item_key ^ np.uint64(0x5BD1E995))
    return df.select(
        "entry_id",
        "language",
        pl.Series("exact_key", exact_key, dtype=pl.UInt64),
        pl.Series("item_key", item_key, dtype=pl.UInt64),
        numbers.fill_null("").alias("numbers"),
        main.alias("near_text"),
        answer_text.alias("answer_text"),
        pl.Series("near_options", pa.LargeListArray.from_arrays(option_offsets, canonical.to_arrow())),
    )


def _mix64(h: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = (h ^ (h >> np.uint64(31))) * np.uint64(0x9E3779B97F4A7C15)
        return h ^ (h >> np.uint64(29))


_OPTIONAL = {"answer_indices": pl.List(pl.Int32), "label": pl.String, "premise": pl.String,
             "hypothesis": pl.String, "answer": pl.String}  # fmt: skip


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


def answer_signatures(texts: pl.DataFrame, word_ngram: int, char_ngram: int) -> np.ndarray:
    """MinHash signatures (rows × ANSWER_PERM) of open answers; all zero for other tasks."""
    unspaced = texts["language"].is_in(list(UNSPACED_LANGUAGES)).fill_null(False).to_numpy()
    a, b = permutations(ANSWER_PERM, seed=2)
    none = pl.Series([], dtype=pl.String)
    sig = sign_texts(texts["answer_text"], none, np.zeros(len(texts) + 1, np.int64), unspaced,
                     word_ngram, char_ngram, a, b)  # fmt: skip
    sig[texts["answer_text"].str.len_bytes().to_numpy() == 0] = 0
    return sig


def sign_entries(
    frame: pl.DataFrame, word_ngram: int, char_ngram: int, num_perm: int, threads: int | None = None
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """The map step on `threads` threads (default the cores up to 8): dedup texts and signatures
    of a batch of entries.

    The batch is cut into one slice per thread, each normalised, shingled and signed in its own
    thread: polars and NumPy release the GIL, so the slices run side by side.
    """
    parts = max(1, min(threads or min(os.cpu_count() or 1, 8), len(frame) // 2000))
    size = -(-len(frame) // parts) if len(frame) else 0

    def one(k: int) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
        texts = dedup_texts(frame.slice(k * size, size))
        return (texts, signatures(texts, word_ngram, char_ngram, num_perm),
                answer_signatures(texts, word_ngram, char_ngram))  # fmt: skip

    if parts == 1:
        return one(0)
    with ThreadPoolExecutor(parts) as pool:
        done = list(pool.map(one, range(parts)))
    return (pl.concat([t for t, _, _ in done]), np.concatenate([g for _, g, _ in done]),
            np.concatenate([x for _, _, x in done]))  # fmt: skip


@dataclass
class Signed:
    """Signed entries: per row its entry_id, exact_key, item_key and numbers, its signature, and
    its open answer's signature (zero when it has none)."""

    keys: pl.DataFrame
    sig: np.ndarray  # rows × num_perm, uint32
    answer_sig: np.ndarray  # rows × ANSWER_PERM, uint32

    @staticmethod
    def concat(parts: list[Signed]) -> Signed:
        return Signed(pl.concat([p.keys for p in parts]), np.concatenate([p.sig for p in parts]),
                      np.concatenate([p.answer_sig for p in parts]))  # fmt: skip


def sign_batch(frame: pl.DataFrame, s: DedupSettings, threads: int | None = None) -> Signed:
    """The map step: keys and signatures of one batch of entries under the dedup settings. Pure
    (no warehouse), so a worker process or a Ray task runs it as well as the run's process."""
    texts, sig, answer_sig = sign_entries(frame, s.word_ngram, s.char_ngram, s.num_perm, threads)
    return Signed(texts.select("entry_id", "exact_key", "item_key", "numbers"), sig, answer_sig)
