"""Columns as numba kernels see them: a string column's UTF-8 bytes and offsets (one code point
read or written at a time), and a list column's offsets and values. Shared by the compiled
passes of dedup, language ID and quality."""

from __future__ import annotations

import numba
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc


def utf8_buffers(series: pl.Series | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, offsets) of a string Series or Arrow array; nulls read as empty strings."""
    if isinstance(series, pl.Series):
        arr = series.fill_null("").to_arrow(compat_level=pl.CompatLevel.oldest())
    else:
        arr = pc.fill_null(series, "")
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.large_string())
    arr = arr.cast(pa.large_string())
    if len(arr) == 0:
        return np.zeros(0, np.uint8), np.zeros(1, np.int64)
    _, offsets, data = arr.buffers()
    off = np.frombuffer(offsets, np.int64)[arr.offset : arr.offset + len(arr) + 1]
    raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    return raw, off


def from_utf8_buffers(name: str, data: np.ndarray, offsets: np.ndarray) -> pl.Series:
    arr = pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))
    return pl.Series(name, arr, dtype=pl.String)


@numba.njit(cache=True, nogil=True, inline="always")
def decode(data: np.ndarray, k: int) -> tuple[int, int]:
    """The code point at byte k and the byte after it (invalid bytes read as U+FFFD)."""
    c = np.int64(data[k])
    if c < 0x80:
        return c, k + 1
    if c >= 0xF0 and k + 3 < len(data):
        cp = ((c & 0x07) << 18) | ((np.int64(data[k + 1]) & 0x3F) << 12)
        return cp | ((np.int64(data[k + 2]) & 0x3F) << 6) | (np.int64(data[k + 3]) & 0x3F), k + 4
    if c >= 0xE0 and k + 2 < len(data):
        cp = ((c & 0x0F) << 12) | ((np.int64(data[k + 1]) & 0x3F) << 6)
        return cp | (np.int64(data[k + 2]) & 0x3F), k + 3
    if c >= 0xC0 and k + 1 < len(data):
        return ((c & 0x1F) << 6) | (np.int64(data[k + 1]) & 0x3F), k + 2
    return 0xFFFD, k + 1


@numba.njit(cache=True, nogil=True, inline="always")
def space_before(out: np.ndarray, w: int, pending: bool) -> int:
    """Where separators were skipped before the next character (`pending`), one space goes at
    out[w]; returns the next position. Writers collapse separator runs this way."""
    if pending:
        out[w] = 0x20
        return w + 1
    return w


@numba.njit(cache=True, nogil=True, inline="always")
def encode(out: np.ndarray, w: int, cp: int) -> int:
    if cp < 0x80:
        out[w] = cp
        return w + 1
    if cp < 0x800:
        out[w] = 0xC0 | (cp >> 6)
        out[w + 1] = 0x80 | (cp & 0x3F)
        return w + 2
    if cp < 0x10000:
        out[w] = 0xE0 | (cp >> 12)
        out[w + 1] = 0x80 | ((cp >> 6) & 0x3F)
        out[w + 2] = 0x80 | (cp & 0x3F)
        return w + 3
    out[w] = 0xF0 | (cp >> 18)
    out[w + 1] = 0x80 | ((cp >> 12) & 0x3F)
    out[w + 2] = 0x80 | ((cp >> 6) & 0x3F)
    out[w + 3] = 0x80 | (cp & 0x3F)
    return w + 4


def list_parts(series: pl.Series) -> tuple[np.ndarray, pa.Array]:
    """(offsets, flat values) of a list Series; a null list reads as empty."""
    arr = series.to_arrow(compat_level=pl.CompatLevel.oldest())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type)
    counts = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
    return np.r_[0, np.cumsum(counts)].astype(np.int64), arr.flatten()
