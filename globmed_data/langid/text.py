"""The text language ID reads, prepared in one compiled pass per text (numba).

What it does (the definition, as regex steps; tests check the compiled pass against them on
awkward strings and on every real entry text of ../shared/data):
1. the first max_chars + max_chars/4 + 20 characters; URLs and e-mail addresses become a space
   (a regex, run only on the texts that hold "http", "www." or "@");
2. every run of punctuation, symbols, digits, `_` and white space becomes one space (not `\\W`:
   that would also cut combining vowel signs out of Devanagari or Thai words); no space at the
   ends;
3. a text with characters beyond Latin gets its dominant script from its first 120 characters
   (Kanji with 5% or more Kana are Japanese, so Kana then take the Han count; a CJK character
   weighs 3 letters); in a text mainly in a non-Latin script, Latin words are drug names and
   abbreviations, so they become spaces; a text in Latin only is Latin (or has no script, if
   empty);
4. the first max_chars characters, no space at the ends; letters are its non-space characters.
"""

from __future__ import annotations

from functools import cache

import numba
import numpy as np
import polars as pl

from globmed_data.kernels.text_metrics import SCRIPTS, TABLE_LIMIT, char_tables, code_points
from globmed_data.kernels.utf8 import decode, encode, from_utf8_buffers, space_before, utf8_buffers

URL_EMAIL = r"https?://\S+|www\.\S+|\S+@\S+\.\w+"
SEPARATORS = r"[\p{P}\p{S}\p{N}_\s]"
# Scripts counted to find a text's dominant one (others leave the choice to the detectors).
SCRIPT_NAMES = [
    "Latin",
    "Han",
    "Kana",
    "Hangul",
    "Cyrillic",
    "Arabic",
    "Devanagari",
    "Thai",
    "Greek",
    "Hebrew",
]
SCRIPT_SAMPLE = 120  # the dominant script is judged on the first characters


@cache
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """(separator flag per code point, column in SCRIPT_NAMES per script id of text_metrics).
    No separator lies past TABLE_LIMIT: planes 4-13 are empty, then come tags and private use."""
    points, chars = code_points()
    separator = np.zeros(TABLE_LIMIT, np.bool_)
    separator[points[chars.str.contains(f"^{SEPARATORS}$").to_numpy()]] = True
    column = np.full(len(SCRIPTS) + 1, -1, np.int64)
    for k, name in enumerate(SCRIPTS):
        if name in SCRIPT_NAMES:
            column[k + 1] = SCRIPT_NAMES.index(name)
    return separator, column


def prepare_texts(texts: pl.Series, max_chars: int) -> pl.DataFrame:
    """clean, script (a name of SCRIPT_NAMES, or null) and letters, per text."""
    sliced = texts.fill_null("").str.slice(0, max_chars + max_chars // 4 + 20)
    links = sliced.str.contains(r"http|www\.|@")
    if links.any():
        rows = links.arg_true()
        sliced = sliced.scatter(rows, sliced.gather(rows).str.replace_all(URL_EMAIL, " "))
    data, offsets = utf8_buffers(sliced)
    separator, column = _tables()
    _, script_of = char_tables()
    out, out_offsets, script, letters = _prepare(data, offsets, separator, script_of, column, max_chars)
    names = pl.Series([None, *SCRIPT_NAMES], dtype=pl.String)
    return pl.DataFrame(
        {
            "clean": from_utf8_buffers("clean", out, out_offsets),
            "script": names.gather(script + 1),
            "letters": pl.Series(letters, dtype=pl.Int64),
        }
    )


@numba.njit(cache=True, nogil=True)
def _prepare(data: np.ndarray, offsets: np.ndarray, separator: np.ndarray, script_of: np.ndarray,
             column: np.ndarray, max_chars: int) -> tuple[np.ndarray, ...]:  # fmt: skip
    n = len(offsets) - 1
    out = np.empty(len(data) + 8, np.uint8)  # output never outgrows its input
    out_offsets = np.zeros(n + 1, np.int64)
    script = np.full(n, -1, np.int64)
    letters = np.zeros(n, np.int64)
    cps = np.empty(len(data) + 1, np.int64)  # a row's code points, reused
    w = 0
    for row in range(n):
        # Step 2: separator runs as one space, none at the ends.
        m = 0
        pending = False
        beyond_latin = False
        k = offsets[row]
        while k < offsets[row + 1]:
            cp, k = decode(data, k)
            if cp < len(separator) and separator[cp]:
                pending = m > 0
                continue
            m = space_before(cps, m, pending)
            pending = False
            cps[m] = cp
            m += 1
            beyond_latin |= cp > 0x24F and not (0x1E00 <= cp <= 0x1EFF)
        # Step 3: the dominant script; Latin words out of a text mainly in another script.
        if not beyond_latin:
            script[row] = 0 if m > 0 else -1
        else:
            counts = np.zeros(len(column) - 1, np.int64)
            for q in range(min(m, 120)):
                sid = script_of[cps[q]] if cps[q] < len(script_of) else 0
                if sid > 0 and column[sid] >= 0:
                    counts[column[sid]] += 1
            han, kana = counts[1], counts[2]
            if kana > 0 and kana * 20 >= kana + han:
                counts[2], counts[1] = kana + han, 0
            best, best_weight, total = -1, -1, 0
            for c in range(len(counts)):
                weight = counts[c] * (3 if 1 <= c <= 3 else 1)  # Han, Kana, Hangul
                total += weight
                if weight > best_weight:
                    best, best_weight = c, weight
            script[row] = best if total > 0 else -1
            if script[row] > 0 and counts[0] > 0:
                m = _drop_latin_words(cps, m)
        # Step 4: the first max_chars characters, no space at the ends.
        start, end = 0, min(m, max_chars)
        while start < end and cps[start] == 0x20:
            start += 1
        while end > start and cps[end - 1] == 0x20:
            end -= 1
        for q in range(start, end):
            w = encode(out, w, cps[q])
            letters[row] += cps[q] != 0x20
        out_offsets[row + 1] = w
    return out[:w].copy(), out_offsets, script, letters


@numba.njit(cache=True, nogil=True)
def _drop_latin_words(cps: np.ndarray, m: int) -> int:
    """Runs of [A-Za-z\u00c0-\u024f] as a space, then runs of spaces as one; the new length."""
    w = 0
    for q in range(m):
        cp = cps[q]
        if (0x41 <= cp <= 0x5A) or (0x61 <= cp <= 0x7A) or (0xC0 <= cp <= 0x24F):
            cp = 0x20
        if cp == 0x20 and w > 0 and cps[w - 1] == 0x20:
            continue
        cps[w] = cp
        w += 1
    return w
