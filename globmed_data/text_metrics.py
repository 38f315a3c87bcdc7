"""Character counts of many texts in one compiled pass (numba): what the quality rules measure.

Per text: characters, letters (Unicode L and M), digits (N), symbols (what is neither those nor
white space, a run of blanks `__`, dots `..`, `…` or dashes `--` counting once), and characters
per script (the ranges of globmed_data.scripts). It gives the same numbers as the regex
definitions it replaces, which a test checks on awkward strings and, with ../shared/data, on
every real question.
"""

from __future__ import annotations

from functools import cache

import numba
import numpy as np
import polars as pl

from globmed_data.minhash_kernels import _decode, utf8_buffers
from globmed_data.scripts import SCRIPT_RANGES

LETTER, DIGIT, SPACE = 1, 2, 3  # character kinds; 0 is anything else (a symbol)
_TABLE_LIMIT = 0x40000  # past this: variation selectors (marks), tags and private use
SCRIPTS = list(SCRIPT_RANGES)  # script k counts in column k + 1; column 0 is "none"
_RUN_ONCE = np.array([ord("_"), ord("."), ord("-")], np.int64)  # a run of 2+ counts once
_ELLIPSIS = ord("…")  # a run of 1+ counts once


@cache
def char_tables() -> tuple[np.ndarray, np.ndarray]:
    """(kind, script) per code point below _TABLE_LIMIT.

    The kinds come from the very regex classes the measures are defined by (polars' Unicode
    tables), applied to every code point at once: no Python loop over 262,144 characters.
    """
    points = np.r_[np.arange(0xD800), np.arange(0xE000, _TABLE_LIMIT)]  # no surrogates
    chars = pl.Series([chr(cp) for cp in points], dtype=pl.String)
    kind = np.zeros(_TABLE_LIMIT, np.uint8)
    for value, cls in ((LETTER, r"[\p{L}\p{M}]"), (DIGIT, r"\p{N}"), (SPACE, r"\s")):
        kind[points[chars.str.contains(f"^{cls}$").to_numpy()]] = value
    script = np.zeros(_TABLE_LIMIT, np.uint8)
    for k, name in enumerate(SCRIPTS):
        for lo, hi in _ranges(SCRIPT_RANGES[name]):
            script[lo : hi + 1] = k + 1
    return kind, script


def _ranges(chars: str) -> list[tuple[int, int]]:
    """The (first, last) code points of a regex class body like "A-Za-z\u00c0-\u024f"."""
    out, k = [], 0
    while k < len(chars):
        if k + 2 < len(chars) and chars[k + 1] == "-":
            out.append((ord(chars[k]), ord(chars[k + 2])))
            k += 3
        else:
            out.append((ord(chars[k]), ord(chars[k])))
            k += 1
    return out


def char_counts(texts: pl.Series) -> dict[str, np.ndarray]:
    """chars, letters, digits, symbols (int64 per text) and scripts (texts × len(SCRIPTS) + 1)."""
    data, offsets = utf8_buffers(texts)
    kind, script = char_tables()
    n = len(offsets) - 1
    counts = np.zeros((n, 4), np.int64)
    scripts = np.zeros((n, len(SCRIPTS) + 1), np.int32)
    _count(data, offsets, kind, script, _RUN_ONCE, _ELLIPSIS, counts, scripts)
    return {"chars": counts[:, 0], "letters": counts[:, 1], "digits": counts[:, 2], "symbols": counts[:, 3],
            "scripts": scripts}  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _count(data: np.ndarray, offsets: np.ndarray, kind: np.ndarray, script: np.ndarray, run_once: np.ndarray,
           ellipsis: int, counts: np.ndarray, scripts: np.ndarray) -> None:  # fmt: skip
    limit = len(kind)
    for row in range(len(offsets) - 1):
        k, end = offsets[row], offsets[row + 1]
        chars = letters = digits = symbols = 0
        last = -1  # the last symbol, to fold runs; letters, digits and spaces do not break a run
        while k < end:
            cp, k = _decode(data, k)
            chars += 1
            if cp < limit:
                c = kind[cp]
                scripts[row, script[cp]] += 1
            else:
                c = LETTER if 0xE0100 <= cp <= 0xE01EF else 0  # variation selectors are marks
                scripts[row, 0] += 1
            if c == LETTER:
                letters += 1
            elif c == DIGIT:
                digits += 1
            elif c == 0:
                folds = cp == last and (cp == ellipsis or cp in run_once)
                if not folds:
                    symbols += 1
                last = cp
        counts[row, 0], counts[row, 1], counts[row, 2], counts[row, 3] = chars, letters, digits, symbols


def dup_ngram_fractions(texts: pl.Series, unspaced: np.ndarray) -> np.ndarray:
    """Share of each text's tokens inside an n-gram that occurs more than once (Gopher-style).

    Word 5-grams, a word weighing its length, where words are spaced; character 10-grams (each
    non-space character a token) where they are not. A text under two n-grams long scores 0.
    Words split as Python's str.split() does; n-grams compare by a 64-bit hash of their tokens.
    """
    data, offsets = utf8_buffers(texts)
    kind, _ = char_tables()
    out = np.zeros(len(offsets) - 1, np.float64)
    _dup_ngrams(data, offsets, kind, unspaced.astype(np.bool_), out)
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _is_space(cp: int, kind: np.ndarray) -> bool:
    # str.isspace(): Unicode White_Space (regex \s) and the information separators \x1c-\x1f.
    return (cp < len(kind) and kind[cp] == SPACE) or 0x1C <= cp <= 0x1F


@numba.njit(cache=True, nogil=True)
def _dup_ngrams(data: np.ndarray, offsets: np.ndarray, kind: np.ndarray, unspaced: np.ndarray,
                out: np.ndarray) -> None:  # fmt: skip
    mix = np.uint64(0x9E3779B97F4A7C15)
    for row in range(len(offsets) - 1):
        k, end = offsets[row], offsets[row + 1]
        n = 10 if unspaced[row] else 5
        hashes = np.empty(end - k, np.uint64)  # at most one token per byte
        weights = np.empty(end - k, np.int64)
        count = 0
        while k < end:
            cp, nxt = _decode(data, k)
            if _is_space(cp, kind):
                k = nxt
                continue
            if unspaced[row]:
                hashes[count], weights[count] = np.uint64(cp) * mix, 1
                k = nxt
            else:  # a word: its bytes hashed, its characters counted
                h, chars = np.uint64(0xCBF29CE484222325), 0
                while k < end:
                    cp, nxt = _decode(data, k)
                    if _is_space(cp, kind):
                        break
                    for m in range(k, nxt):
                        h = (h ^ np.uint64(data[m])) * np.uint64(0x100000001B3)
                    chars += 1
                    k = nxt
                hashes[count], weights[count] = h, chars
            count += 1
        if count < 2 * n:
            continue
        grams = np.empty(count - n + 1, np.uint64)
        for i in range(count - n + 1):
            acc = np.uint64(0)
            for m in range(n):
                acc = (acc + hashes[i + m]) * mix
                acc ^= acc >> np.uint64(29)
            grams[i] = acc
        order = np.argsort(grams)
        covered = np.zeros(count, np.bool_)
        g = 0
        while g < len(order):
            h = g + 1
            while h < len(order) and grams[order[h]] == grams[order[g]]:
                h += 1
            if h - g > 1:
                for q in range(g, h):
                    covered[order[q] : order[q] + n] = True
            g = h
        total = weights[:count].sum()
        out[row] = weights[:count][covered].sum() / max(1, total)
