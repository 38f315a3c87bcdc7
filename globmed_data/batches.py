"""Work in fixed-size batches: slices of a list, and entries read from the warehouse by id."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import polars as pl

from globmed_data.warehouse import Warehouse

T = TypeVar("T")


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def entry_frames(
    wh: Warehouse, ids: Sequence[str], sql: str, size: int
) -> Iterator[tuple[int, pl.DataFrame]]:
    """(entries done so far, frame) per batch of ids; `sql` reads the ids from `b_ids`."""
    done = 0
    for chunk in batched(ids, size):
        frame: Any = pl.from_arrow(wh.arrow_for_ids(chunk, sql))
        done += len(chunk)
        yield done, frame
