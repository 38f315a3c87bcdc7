"""Compiled kernels of the dedup map and reduce (numba): normalise, shingle-and-sign, band keys,
pair similarity.

They work on Arrow string buffers (UTF-8 bytes and int64 offsets), one pass per text, with no
intermediate token or shingle arrays: that is what makes the map fast and its memory small.
Each kernel releases the GIL, so threads over slices of a batch use every core. Compiled code
is cached on disk (numba's `cache=True`), so only the first process after an install compiles.
"""

from __future__ import annotations

import unicodedata
from functools import cache

import numba
import numpy as np
import polars as pl
import pyarrow as pa

from globmed_data.kernels.utf8 import decode, encode, from_utf8_buffers, space_before, utf8_buffers

_COMPOSING = r"[\p{M}\u1100-\u11ff\ua960-\ua97f\ud7b0-\ud7ff]"  # marks, conjoining jamo
# Code points above this are letters NFKC leaves alone (CJK extensions, private use, tags).
_TABLE_LIMIT = 0x30000
_SPACE = 0x20
_WHITESPACE = set("\t\n\x0b\x0c\r\x85")  # Unicode White_Space outside Z*; not \x1c-\x1f
MIX = np.uint64(0x9E3779B97F4A7C15)


@cache
def fold_table() -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per code point, what normalisation writes: NFKC of the character, lower-cased, with
    punctuation, symbols and white space as a space. (start, length) index `pool`; length 0
    means the character stays as it is. The last value bounds output bytes per input byte."""
    start = np.zeros(_TABLE_LIMIT, np.int32)
    length = np.zeros(_TABLE_LIMIT, np.int8)
    pool: list[int] = []
    growth = 1
    for cp in range(_TABLE_LIMIT):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        out = [_SPACE if _separator(o) else ord(o) for o in unicodedata.normalize("NFKC", ch).lower()]
        if out != [cp] or cp == _SPACE:  # a space still joins a run of separators
            start[cp], length[cp] = len(pool), len(out)
            pool.extend(out)
            written = sum(len(chr(o).encode()) + 1 for o in out)  # + a space before each
            growth = max(growth, -(-written // len(ch.encode())))
    return start, length, np.array(pool, np.int32), growth


def _separator(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PSZ" or ch in _WHITESPACE


def normalise_series(series: pl.Series | pa.Array, name: str = "") -> pl.Series:
    """NFKC, lower case, runs of punctuation, symbols and spaces as one space, no space at
    either end. Null gives "".

    The table applies NFKC one character at a time, which is NFKC itself except where
    characters compose: a base and a combining mark ("e" + U+0301 is "é"), or conjoining Hangul
    jamo. The few texts holding either are put in NFKC by polars first.
    """
    texts = (series if isinstance(series, pl.Series) else pl.Series(series)).cast(pl.String)
    composing = texts.str.contains(_COMPOSING).fill_null(False)
    if composing.any():
        rows = composing.arg_true()
        texts = texts.scatter(rows, texts.gather(rows).str.normalize("NFKC"))
    data, offsets = utf8_buffers(texts)
    out, out_offsets = _normalise(data, offsets, *fold_table())
    return from_utf8_buffers(name or getattr(series, "name", ""), out, out_offsets)


@numba.njit(cache=True, nogil=True)
def _normalise(data: np.ndarray, offsets: np.ndarray, start: np.ndarray, length: np.ndarray,
               pool: np.ndarray, growth: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    n = len(offsets) - 1
    out = np.empty(len(data) + 64, np.uint8)
    out_offsets = np.zeros(n + 1, np.int64)
    w = 0
    for row in range(n):
        need = (offsets[row + 1] - offsets[row]) * growth + 8
        if len(out) - w < need:  # room for the row's worst case, checked once per row
            bigger = np.empty(2 * len(out) + need, np.uint8)
            bigger[:w] = out[:w]
            out = bigger
        w = _normalise_row(data, offsets[row], offsets[row + 1], start, length, pool, out, w)
        out_offsets[row + 1] = w
    return out[:w].copy(), out_offsets


@numba.njit(cache=True, nogil=True)
def _normalise_row(data: np.ndarray, k: int, end: int, start: np.ndarray, length: np.ndarray,
                   pool: np.ndarray, out: np.ndarray, w: int) -> int:  # fmt: skip
    row_start = w
    pending_space = False
    while k < end:
        c = data[k]
        if c < 0x80 and (0x61 <= c <= 0x7A or 0x30 <= c <= 0x39):  # a-z, 0-9: as they are
            w = space_before(out, w, pending_space)
            pending_space = False
            out[w] = c
            w += 1
            k += 1
            continue
        cp, nxt = decode(data, k)
        count = length[cp] if cp < len(length) else 0
        if count == 0:  # unchanged: copy its bytes
            w = space_before(out, w, pending_space)
            pending_space = False
            for m in range(k, nxt):
                out[w] = data[m]
                w += 1
        else:
            first = start[cp]
            for m in range(count):
                mapped = pool[first + m]
                if mapped == 0x20:
                    pending_space = w > row_start
                    continue
                w = space_before(out, w, pending_space)
                pending_space = False
                w = encode(out, w, mapped)
        k = nxt
    return w


def sign_texts(main: pl.Series, options: pl.Series, option_offsets: np.ndarray, unspaced: np.ndarray,
               word_ngram: int, char_ngram: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:  # fmt: skip
    """MinHash signatures (rows × len(a), uint32) of normalised texts, in one compiled pass: a
    row's text is its main text followed by its options (options[option_offsets[r]:
    option_offsets[r + 1]])."""
    main_data, main_offsets = utf8_buffers(main)
    opt_data, opt_offsets = utf8_buffers(options)
    sig = np.empty((len(main), len(a)), np.uint32)
    _sign(main_data, main_offsets, opt_data, opt_offsets, option_offsets, unspaced.astype(np.bool_),
          word_ngram, char_ngram, a.astype(np.uint32), b.astype(np.uint32), sig)  # fmt: skip
    return sig


@numba.njit(cache=True, nogil=True, inline="always")
def _fmix32(h: np.uint64) -> np.uint32:
    h = h & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & np.uint64(0xFFFFFFFF)
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & np.uint64(0xFFFFFFFF)
    return np.uint32(h ^ (h >> np.uint64(16)))


@numba.njit(cache=True, nogil=True, inline="always")
def _permute_min(mins: np.ndarray, shingle: np.uint64, a: np.ndarray, b: np.ndarray) -> None:
    """mins = min(mins, a·fmix32(h) + b mod 2^32), h the shingle hash folded to 32 bits."""
    hv = _fmix32((shingle ^ (shingle >> np.uint64(32))) & np.uint64(0xFFFFFFFF))
    for p in range(len(a)):
        mins[p] = min(mins[p], np.uint32(a[p] * hv + b[p]))


@numba.njit(cache=True, nogil=True)
def _sign(main_data: np.ndarray, main_offsets: np.ndarray, opt_data: np.ndarray, opt_offsets: np.ndarray,
          option_offsets: np.ndarray, unspaced: np.ndarray, word_ngram: int, char_ngram: int,
          a: np.ndarray, b: np.ndarray, sig: np.ndarray) -> None:  # fmt: skip
    """A row's text is its main text, then its options in the given order, as one stream of
    tokens: word n-grams (tokens split on spaces) or character n-grams (spaces dropped). A row
    with fewer tokens than n is one shingle, the hash of its bytes; a row with none keeps the
    all-max signature, like datasketch's empty MinHash."""
    mins = np.empty(len(a), np.uint32)
    ring = np.zeros(max(word_ngram, char_ngram), np.uint64)  # the last n token hashes
    state = np.zeros(2, np.uint64)  # tokens so far; hash of the bytes so far
    for row in range(len(main_offsets) - 1):
        mins[:] = 0xFFFFFFFF
        state[0], state[1] = 0, 0xCBF29CE484222325
        n = char_ngram if unspaced[row] else word_ngram
        _tokens(
            main_data, main_offsets[row], main_offsets[row + 1], unspaced[row], n, ring, state, mins, a, b
        )
        for o in range(option_offsets[row], option_offsets[row + 1]):
            _tokens(opt_data, opt_offsets[o], opt_offsets[o + 1], unspaced[row], n, ring, state, mins, a, b)
        if 0 < state[0] < n:
            _permute_min(mins, state[1], a, b)
        sig[row, :] = mins


@numba.njit(cache=True, nogil=True)
def _tokens(data: np.ndarray, k: int, end: int, unspaced: bool, n: int, ring: np.ndarray, state: np.ndarray,
            mins: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:  # fmt: skip
    """Fold one text's tokens into the row's n-gram stream (ring, state) and its shingles into
    mins."""
    mix = np.uint64(0x9E3779B97F4A7C15)
    fnv = np.uint64(0x100000001B3)
    tokens = state[0]
    if tokens < n:  # the whole-row hash matters only while the row is shorter than one n-gram
        whole = state[1] ^ np.uint64(0x20)
        for m in range(k, end):
            whole = (whole ^ np.uint64(data[m])) * fnv
        state[1] = whole
    while k < end:
        if unspaced:
            cp, k = decode(data, k)
            if cp == 0x20:
                continue
            tok = (np.uint64(cp) + np.uint64(0x51ED27)) * mix
        else:
            if data[k] == 0x20:
                k += 1
                continue
            # Bytes packed by rotate-and-xor (exact for tokens up to 8 bytes, one cycle each),
            # then mixed once with the length.
            tok = np.uint64(0)
            first = k
            while k < end and data[k] != 0x20:
                tok = ((tok << np.uint64(8)) | (tok >> np.uint64(56))) ^ np.uint64(data[k])
                k += 1
            tok = (tok ^ np.uint64(k - first)) * mix
            tok ^= tok >> np.uint64(31)
            tok *= np.uint64(0xBF58476D1CE4E5B9)
            tok ^= tok >> np.uint64(29)
        for m in range(n - 1):
            ring[m] = ring[m + 1]
        ring[n - 1] = tok
        tokens += 1
        if tokens >= n:
            acc = np.uint64(0)
            for m in range(n):  # ((t0·M + t1)·M + t2)·M …: order-sensitive
                acc = (acc + ring[m]) * mix
            _permute_min(mins, acc, a, b)
    state[0] = tokens


@numba.njit(cache=True, nogil=True)
def answer_keys(option_hash: np.ndarray, option_offsets: np.ndarray, answers: np.ndarray,
                answer_offsets: np.ndarray) -> np.ndarray:  # fmt: skip
    """Per row, an ordered hash of its correct options' hashes (an index out of range counts as
    a missing option)."""
    out = np.empty(len(option_offsets) - 1, np.uint64)
    for row in range(len(out)):
        acc = np.uint64(0x2545F4914F6CDD1D)
        count = option_offsets[row + 1] - option_offsets[row]
        for q in range(answer_offsets[row], answer_offsets[row + 1]):
            idx = answers[q]
            h = option_hash[option_offsets[row] + idx] if 0 <= idx < count else np.uint64(0)
            acc = (acc ^ h) * np.uint64(0x9E3779B97F4A7C15)
            acc ^= acc >> np.uint64(29)
        out[row] = acc
    return out


@numba.njit(cache=True, nogil=True)
def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (band, entry): a hash of the band's r signature values. Bands are
    rows of the result, so each band's keys are contiguous for sorting."""
    n = sig.shape[0]
    keys = np.empty((bands, n), np.uint64)
    mult = np.uint64(0x9E3779B97F4A7C15)
    for e in range(n):
        for i in range(bands):
            acc = np.uint64(i + 1)
            for j in range(rows):
                acc = (acc ^ np.uint64(sig[e, i * rows + j])) * mult
                acc ^= acc >> np.uint64(29)
            keys[i, e] = acc
    return keys


@numba.njit(cache=True, nogil=True)
def group_partners(keys: np.ndarray, order: np.ndarray, is_new: np.ndarray, exact: np.ndarray,
                   seen: np.ndarray, out_i: np.ndarray, out_j: np.ndarray, filled: int) -> int:  # fmt: skip
    """Links from one key column (entries sorted by key in `order`): each new member of a group
    of 2+ to two partners, the group's smallest index and the smallest of another exact key
    (else the second smallest): exact copies of one entry, linked by the exact key's own
    column, would otherwise take both places, and an entry that fails to verify with them
    would never meet the rest of the group. `seen` (entries × slots) remembers each entry's
    latest partners, so a pair that shares many bands is written once or a few times, not once
    per band. Returns the new fill of out_i/out_j, which need room for two pairs per entry."""
    n = len(order)
    slots = seen.shape[1]
    g = 0
    while g < n:
        h = g + 1
        while h < n and keys[order[h]] == keys[order[g]]:
            h += 1
        if h - g > 1:
            m1 = n
            for q in range(g, h):
                m1 = min(m1, order[q])
            m2, second = n, n
            for q in range(g, h):
                x = order[q]
                if x == m1:
                    continue
                second = min(second, x)
                if exact[x] != exact[m1]:
                    m2 = min(m2, x)
            if m2 == n:
                m2 = second
            for q in range(g, h):
                x = order[q]
                if not is_new[x]:
                    continue
                for partner in (m1, m2):
                    if partner == x:
                        continue
                    known = False
                    for t in range(slots):
                        if seen[x, t] == partner:
                            known = True
                    if known:
                        continue
                    seen[x, filled % slots] = partner
                    out_i[filled] = x
                    out_j[filled] = partner
                    filled += 1
        g = h
    return filled


@numba.njit(cache=True, nogil=True)
def similarity(sig: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity of entry pairs: the share of equal signature values."""
    out = np.empty(len(left), np.float32)
    width = sig.shape[1]
    for k in range(len(left)):
        same = 0
        x, y = left[k], right[k]
        for p in range(width):
            same += sig[x, p] == sig[y, p]
        out[k] = same / width
    return out
