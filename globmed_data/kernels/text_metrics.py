"""Character counts of many texts in one compiled pass (numba): what the quality rules measure.

Per text: characters, letters (Unicode L and M), digits (N), symbols (what is neither those nor
white space, a run of blanks `__`, dots `..`, `…` or dashes `--` counting once), and characters
per script (the ranges of globmed_data.kernels.scripts). It gives the same numbers as the regex
definitions it replaces, which a test checks on awkward strings and, with ../shared/data, on
every real question.
"""

from __future__ import annotations

from functools import cache

import numba
import numpy as np
import polars as pl

from globmed_data.kernels.scripts import SCRIPT_RANGES
from globmed_data.kernels.utf8 import decode, list_parts, utf8_buffers

LETTER, DIGIT, SPACE = 1, 2, 3  # character kinds; 0 is anything else (a symbol)
TABLE_LIMIT = 0x40000  # past this: variation selectors (marks), tags and private use
SCRIPTS = list(SCRIPT_RANGES)  # script k counts in column k + 1; column 0 is "none"
_RUN_ONCE = np.array([ord("_"), ord("."), ord("-")], np.int64)  # a run of 2+ counts once
_ELLIPSIS = ord("…")  # a run of 1+ counts once


@cache
def code_points() -> tuple[np.ndarray, pl.Series]:
    """Every code point below TABLE_LIMIT but the surrogates, and each as a one-character
    string: the tables below apply polars' own Unicode routines to them all at once."""
    points = np.r_[np.arange(0xD800), np.arange(0xE000, TABLE_LIMIT)]
    return points, pl.Series([chr(cp) for cp in points], dtype=pl.String)


@cache
def char_tables() -> tuple[np.ndarray, np.ndarray]:
    """(kind, script) per code point below TABLE_LIMIT.

    The kinds come from the very regex classes the measures are defined by (polars' Unicode
    tables), applied to every code point at once: no Python loop over 262,144 characters.
    """
    points, chars = code_points()
    kind = np.zeros(TABLE_LIMIT, np.uint8)
    for value, cls in ((LETTER, r"[\p{L}\p{M}]"), (DIGIT, r"\p{N}"), (SPACE, r"\s")):
        kind[points[chars.str.contains(f"^{cls}$").to_numpy()]] = value
    script = np.zeros(TABLE_LIMIT, np.uint8)
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
            cp, k = decode(data, k)
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
            cp, nxt = decode(data, k)
            if _is_space(cp, kind):
                k = nxt
                continue
            if unspaced[row]:
                hashes[count], weights[count] = np.uint64(cp) * mix, 1
                k = nxt
            else:  # a word: its bytes hashed, its characters counted
                h, chars = np.uint64(0xCBF29CE484222325), 0
                while k < end:
                    cp, nxt = decode(data, k)
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


@cache
def lower_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per code point, its lower case (polars' to_lowercase, one character at a time) as
    (start, length) into a pool; length 0: unchanged. The Greek sigmas all read as σ, since
    lower-casing a whole string picks ς or σ by the letters around it."""
    points, chars = code_points()
    lowered = chars.str.to_lowercase()
    start = np.zeros(TABLE_LIMIT, np.int32)
    length = np.zeros(TABLE_LIMIT, np.int8)
    pool: list[int] = []
    for k in (chars != lowered).arg_true().to_list():
        start[points[k]], length[points[k]] = len(pool), len(lowered[k])
        pool.extend(ord(c) for c in lowered[k])
    for sigma in (0x03A3, 0x03C2):
        start[sigma], length[sigma] = len(pool), 1
    pool.append(0x03C3)
    return start, length, np.array(pool, np.int64)


def option_counts(options: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of a list-of-strings Series: options, empty options (white space only), and
    whether its options may repeat once case and white space are set aside (False: they are
    certainly all distinct; True: compare them exactly). Null lists have none.

    The check reads each option lower-cased with all white space left out: options equal once
    lower-cased with their spaces folded are equal in it too, so "all distinct" is exact."""
    offsets, flat = list_parts(options)
    data, flat_offsets = utf8_buffers(flat)
    kind, _ = char_tables()
    n = len(offsets) - 1
    empty = np.zeros(n, np.int64)
    maybe_same = np.zeros(n, np.bool_)
    _option_counts(data, flat_offsets, offsets, kind, *lower_table(), empty, maybe_same)
    return np.diff(offsets), empty, maybe_same


@numba.njit(cache=True, nogil=True)
def _option_counts(data: np.ndarray, flat_offsets: np.ndarray, offsets: np.ndarray, kind: np.ndarray,
                   start: np.ndarray, length: np.ndarray, pool: np.ndarray, empty: np.ndarray,
                   maybe_same: np.ndarray) -> None:  # fmt: skip
    mix = np.uint64(0x9E3779B97F4A7C15)
    keys = np.empty(max(1, offsets[-1] - offsets[0] if len(offsets) else 1), np.uint64)
    for row in range(len(offsets) - 1):
        count = offsets[row + 1] - offsets[row]
        for o in range(count):
            k, end = flat_offsets[offsets[row] + o], flat_offsets[offsets[row] + o + 1]
            h, chars = np.uint64(0x2545F4914F6CDD1D), 0
            while k < end:
                cp, k = decode(data, k)
                if cp < len(kind) and kind[cp] == SPACE:  # regex \s
                    continue
                chars += 1
                if cp < len(length) and length[cp] > 0:  # one character may lower to several
                    for m in range(start[cp], start[cp] + length[cp]):
                        h = (h ^ np.uint64(pool[m])) * mix
                        h ^= h >> np.uint64(29)
                else:
                    h = (h ^ np.uint64(cp)) * mix
                    h ^= h >> np.uint64(29)
            keys[o] = h
            empty[row] += chars == 0
        for a in range(count):  # lists are short: compare each pair
            for b in range(a + 1, count):
                if keys[a] == keys[b]:
                    maybe_same[row] = True


def word_counts(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per text: its words and distinct words, split on single spaces as str.split(" ") does
    (runs of spaces give empty words); words compare by a 64-bit hash of their bytes."""
    data, offsets = utf8_buffers(texts)
    n = len(offsets) - 1
    words, distinct = np.zeros(n, np.int64), np.zeros(n, np.int64)
    _word_counts(data, offsets, words, distinct)
    return words, distinct


@numba.njit(cache=True, nogil=True)
def _word_counts(data: np.ndarray, offsets: np.ndarray, words: np.ndarray, distinct: np.ndarray) -> None:
    hashes = np.empty(len(data) + 1, np.uint64)
    for row in range(len(offsets) - 1):
        count = 0
        h = np.uint64(0xCBF29CE484222325)
        for k in range(offsets[row], offsets[row + 1] + 1):
            if k == offsets[row + 1] or data[k] == 0x20:
                hashes[count] = h
                count += 1
                h = np.uint64(0xCBF29CE484222325)
            else:
                h = (h ^ np.uint64(data[k])) * np.uint64(0x100000001B3)
        sorted_hashes = np.sort(hashes[:count])
        unique = 1
        for q in range(1, count):
            unique += sorted_hashes[q] != sorted_hashes[q - 1]
        words[row], distinct[row] = count, unique
