"""The collect's new rows, written in transactions of whole DuckDB row groups.

DuckDB writes a committed row twice when the transaction is small: into its log at the commit,
then compressed into the file at the checkpoint. A transaction that appends whole row groups
(122,880 rows) is compressed into the file as it is inserted, and its log keeps pointers only:
on the 8x shared data, 6.4 CPU-s against 8.2 for 5,000-row transactions. A remainder breaks
that: a short row group between full ones is rewritten at the checkpoint (docs/scaling.md, "The
single writer's floor").

So the rows of sources with nothing stored yet (which are inserted, never upserted) wait here,
across sources, until a table has a whole row group or more; then its whole row groups are
written, with every quarantine row waiting and the files whose rows are all written by then. A
source's completion (its state, its stage record) is a callback run after the transaction that
holds its last rows, so a kill never leaves a source complete with rows missing; it costs at most
the rows waiting here, which the next run reads again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from globmed_data import faults

ROW_GROUP_ROWS = 122_880  # DuckDB's row group

# write(run_id, raws, entries, quarantine, files): one transaction; files as (source, FileDone)
Write = Callable[[str, pa.Table, pa.Table, pa.Table, Sequence[tuple[str, Any]]], None]


class _Table:
    """The waiting rows of one table, and how many rows of it were ever added and written."""

    def __init__(self) -> None:
        self.parts: list[pa.Table] = []
        self.waiting = self.added = self.written = 0

    def add(self, rows: pa.Table) -> None:
        if rows.num_rows:
            self.parts.append(rows)
            self.waiting += rows.num_rows
            self.added += rows.num_rows

    def take(self, rows: int, schema: pa.Schema) -> pa.Table:
        """The first `rows` waiting rows, out of the queue."""
        waiting = pa.concat_tables(self.parts) if self.parts else schema.empty_table()
        taken, rest = waiting.slice(0, rows), waiting.slice(rows)
        self.parts = [rest] if rest.num_rows else []
        self.waiting -= rows
        self.written += rows
        return taken


class RowGroupAppends:
    """Rows to insert, gathered across the collect's sources (one per Warehouse.bulk_load())."""

    def __init__(
        self, write: Write, schemas: tuple[pa.Schema, pa.Schema, pa.Schema], unit: int | None = None
    ) -> None:
        self._write, self._schemas = write, schemas
        self.unit = unit or ROW_GROUP_ROWS  # read at each start, so a test can make it small
        self._lock = threading.Lock()  # the sources' threads add side by side
        self._raws, self._entries, self._quarantine = _Table(), _Table(), _Table()
        self._files: list[tuple[int, int, str, Any]] = []  # (raws end, entries end, source, FileDone)
        self._files_added = self._files_written = 0
        self._after: list[tuple[tuple[int, int, int, int], Callable[[], None]]] = []
        self.run_id: str | None = None

    def add(
        self,
        run_id: str,
        raws: pa.Table,
        entries: pa.Table,
        quarantine: pa.Table,
        done: Sequence[tuple[str, Any]],
    ) -> None:
        """Queue a batch's rows, and the files they complete; write once a row group is waiting."""
        with self._lock:
            if self.run_id not in (None, run_id):
                raise ValueError(f"rows of run {run_id} added to the appends of run {self.run_id}")
            self.run_id = run_id
            self._raws.add(raws)
            self._entries.add(entries)
            self._quarantine.add(quarantine)
            self._files += [(self._raws.added, self._entries.added, source, f) for source, f in done]
            self._files_added += len(done)
            if self._raws.waiting >= self.unit or self._entries.waiting >= self.unit:
                self._flush(whole_groups=True)

    def after(self, callback: Callable[[], None]) -> None:
        """Run `callback` once every row added so far is written (now, if it is)."""
        with self._lock:
            self._after.append((self._ends(), callback))
            self._run_callbacks()

    def write_all(self) -> None:
        """Write every waiting row, whole row groups or not (at the collect's end, or for a
        source that must read its own rows back now)."""
        with self._lock:
            if self._raws.waiting or self._entries.waiting or self._quarantine.waiting or self._files:
                self._flush(whole_groups=False)
            self._run_callbacks()

    def _flush(self, whole_groups: bool) -> None:
        raws_n, entries_n = self._raws.waiting, self._entries.waiting
        if whole_groups:
            raws_n, entries_n = raws_n - raws_n % self.unit, entries_n - entries_n % self.unit
        raws_schema, entries_schema, quarantine_schema = self._schemas
        raws = self._raws.take(raws_n, raws_schema)
        entries = self._entries.take(entries_n, entries_schema)
        quarantine = self._quarantine.take(self._quarantine.waiting, quarantine_schema)
        # A file is done once its rows are all written; files end in the order they were added.
        ready = 0
        while ready < len(self._files) and self._rows_written(*self._files[ready][:2]):
            ready += 1
        done, self._files = self._files[:ready], self._files[ready:]
        assert self.run_id is not None
        self._write(self.run_id, raws, entries, quarantine, [(source, f) for _, _, source, f in done])
        self._files_written += ready
        faults.point("collect.appended")
        self._run_callbacks()

    def _ends(self) -> tuple[int, int, int, int]:
        return self._raws.added, self._entries.added, self._quarantine.added, self._files_added

    def _rows_written(self, raws_end: int, entries_end: int) -> bool:
        return self._raws.written >= raws_end and self._entries.written >= entries_end

    def _run_callbacks(self) -> None:
        """The callbacks whose rows, quarantine rows and files are all written, in order."""
        while self._after:
            (raws_end, entries_end, quarantine_end, files_end), callback = self._after[0]
            if not (
                self._rows_written(raws_end, entries_end)
                and self._quarantine.written >= quarantine_end
                and self._files_written >= files_end
            ):
                return
            self._after.pop(0)
            callback()
