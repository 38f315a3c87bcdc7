"""What must never be trained on: every entry of the version's validation and test splits, and
every entry linked to one, checked by entry id.

Linked means: the parent of a held-out translation, a translation of a held-out entry, and (when
the warehouse that built the version is at hand) every member of a dedup cluster that holds a
held-out entry. The dedup stage already drops train entries that duplicate a test item
(`contaminated`); this check does not rely on it, and it covers the validation split too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from globmed_data.bench.dataset import DatasetVersion

HELD_OUT_SPLITS = ("validation", "test")


class LeakError(RuntimeError):
    """A held-out (or linked) entry reached the training set."""


@dataclass(frozen=True)
class HeldOut:
    held: frozenset[str]  # entry ids of the validation and test splits
    linked: frozenset[str]  # entry ids linked to a held-out entry (not held out themselves)

    def reason(self, entry_id: str) -> str | None:
        if entry_id in self.held:
            return "held_out"
        if entry_id in self.linked:
            return "linked_to_held_out"
        return None


def held_out_ids(version: DatasetVersion, warehouse: Path | None = None) -> HeldOut:
    held: set[str] = set()
    parent_of: dict[str, str] = {}
    for shard in version.shards():
        table = pq.read_table(shard.path, columns=["entry_id", "parent_entry_id"])
        ids, parents = table["entry_id"].to_pylist(), table["parent_entry_id"].to_pylist()
        parent_of.update((i, p) for i, p in zip(ids, parents, strict=True) if p)
        if shard.split in HELD_OUT_SPLITS:
            held.update(ids)
    linked = {parent_of[i] for i in held if i in parent_of}
    linked |= {child for child, parent in parent_of.items() if parent in held}
    if warehouse is not None and warehouse.is_file():
        linked |= _dedup_linked(warehouse, held)
    return HeldOut(frozenset(held), frozenset(linked - held))


def _dedup_linked(warehouse: Path, held: set[str]) -> set[str]:
    """Members of every dedup cluster that holds a held-out entry, from the warehouse."""
    from globmed_data.warehouse import Warehouse

    if not held:
        return set()
    with Warehouse(warehouse, read_only=True) as wh:
        rows = wh.query(
            "SELECT DISTINCT m.entry_id FROM dedup_members m JOIN dedup_members h USING (cluster_id) "
            "JOIN (SELECT unnest(?::VARCHAR[]) AS entry_id) held ON held.entry_id = h.entry_id",
            [sorted(held)],
        )
    return {r[0] for r in rows}


def assert_no_leak(train_ids: Iterable[str], held_out: HeldOut) -> None:
    leaked = sorted({i for i in train_ids if held_out.reason(i)})
    if leaked:
        raise LeakError(
            f"{len(leaked)} held-out or linked entr{'y' if len(leaked) == 1 else 'ies'} in the training "
            f"set (first: {', '.join(leaked[:3])})"
        )
