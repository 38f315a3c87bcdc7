"""The collect's new rows, written in transactions of whole DuckDB row groups, in the background.

DuckDB writes a committed row twice when the transaction is small: into its log at the commit,
then compressed into the file at the checkpoint. A transaction that appends whole row groups
(122,880 rows) is compressed into the file as it is inserted, and its log keeps pointers only:
on the 8x shared data, 6.4 CPU-s against 8.2 for 5,000-row transactions. A remainder breaks
that: a short row group between full ones is rewritten at the checkpoint (docs/scaling-history.md, "The
single writer's floor").

So the rows of sources with nothing stored yet (which are inserted, never upserted) wait here,
across sources, until a table has a whole row group or more; then its whole row groups are
written, with every quarantine row waiting and the files whose rows are all in them. A source's
completion (its state, its stage record) is a callback run after the transaction that holds its
last rows, so a kill never leaves a source complete with rows missing; it costs at most the rows
waiting here, which the next run reads again.

A row group's transaction takes 1.5 s or more on one thread: written in the adding source's own
thread, it held every source back and left the map's workers idle for as long (their mapped
files waited to be added). So one writer thread writes it while the sources go on adding; a
source that fills the next group while one is still being written waits for it (at most one
write in flight, and the rows of one group waiting beside it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

import pyarrow as pa

from globmed_data import faults

ROW_GROUP_ROWS = 122_880  # DuckDB's row group

# write(run_id, raws, entries, quarantine, files): one transaction; files as (source, FileDone)
Write = Callable[[str, pa.Table, pa.Table, pa.Table, Sequence[tuple[str, Any]]], None]


class _Ends(NamedTuple):
    """How many rows of each table, and files, were added (or written) up to some moment."""

    raws: int = 0
    entries: int = 0
    quarantine: int = 0
    files: int = 0

    def reached(self, ends: _Ends) -> bool:
        return all(mine >= theirs for mine, theirs in zip(self, ends, strict=True))


class _Table:
    """The waiting rows of one table, and how many rows of it were ever added and taken."""

    def __init__(self) -> None:
        self.parts: list[pa.Table] = []
        self.waiting = self.added = self.taken = 0

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
        self.taken += rows
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
        self._files_added = self._files_taken = 0
        self._written = _Ends()  # what is committed
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="globmed-appends")
        self._in_flight: tuple[Future[None], _Ends] | None = None
        self._error: BaseException | None = None  # a failed write: every later call raises it
        self._after: list[tuple[_Ends, Callable[[], None]]] = []
        self.run_id: str | None = None

    def add(
        self,
        run_id: str,
        raws: pa.Table,
        entries: pa.Table,
        quarantine: pa.Table,
        done: Sequence[tuple[str, Any]],
    ) -> None:
        """Queue a batch's rows, and the files they complete; once a row group waits, hand its
        whole groups to the writer (after the write before it, if that is still going)."""
        with self._lock:
            self._settle(wait=False)
            if self.run_id not in (None, run_id):
                raise ValueError(f"rows of run {run_id} added to the appends of run {self.run_id}")
            self.run_id = run_id
            self._raws.add(raws)
            self._entries.add(entries)
            self._quarantine.add(quarantine)
            self._files += [(self._raws.added, self._entries.added, source, f) for source, f in done]
            self._files_added += len(done)
            if self._raws.waiting >= self.unit or self._entries.waiting >= self.unit:
                self._settle(wait=True)
                self._start_write(whole_groups=True)

    def after(self, callback: Callable[[], None]) -> None:
        """Run `callback` once every row added so far is written (now, if it is; else in the
        thread that next finds that write done)."""
        with self._lock:
            self._after.append((self._added(), callback))
            self._settle(wait=False)

    def wait(self) -> None:
        """Wait for the write in flight (not for the rows still waiting), then run the callbacks
        it allows."""
        with self._lock:
            self._settle(wait=True)

    def write_all(self) -> None:
        """Write every waiting row, whole row groups or not, and wait until it is in (at the
        collect's end, or for a source that must read its own rows back now)."""
        with self._lock:
            self._settle(wait=True)
            if self._raws.waiting or self._entries.waiting or self._quarantine.waiting or self._files:
                self._start_write(whole_groups=False)
                self._settle(wait=True)

    def close(self) -> None:
        """Wait for the write in flight, if any (its error, if any, is left to whoever raised
        first), and stop the writer thread: the rows still waiting are dropped."""
        self._writer.shutdown(wait=True)

    def _added(self) -> _Ends:
        return _Ends(self._raws.added, self._entries.added, self._quarantine.added, self._files_added)

    def _start_write(self, whole_groups: bool) -> None:
        raws_n, entries_n = self._raws.waiting, self._entries.waiting
        if whole_groups:
            raws_n, entries_n = raws_n - raws_n % self.unit, entries_n - entries_n % self.unit
        raws_schema, entries_schema, quarantine_schema = self._schemas
        raws = self._raws.take(raws_n, raws_schema)
        entries = self._entries.take(entries_n, entries_schema)
        quarantine = self._quarantine.take(self._quarantine.waiting, quarantine_schema)
        # A file is done once its rows are all in; files end in the order they were added.
        ready = 0
        while ready < len(self._files) and self._rows_taken(*self._files[ready][:2]):
            ready += 1
        done, self._files = self._files[:ready], self._files[ready:]
        self._files_taken += ready
        ends = _Ends(self._raws.taken, self._entries.taken, self._quarantine.taken, self._files_taken)
        assert self.run_id is not None
        files = [(source, f) for _, _, source, f in done]
        future = self._writer.submit(self._write_one, self.run_id, raws, entries, quarantine, files)
        self._in_flight = (future, ends)

    def _rows_taken(self, raws_end: int, entries_end: int) -> bool:
        return self._raws.taken >= raws_end and self._entries.taken >= entries_end

    def _write_one(self, run_id: str, *rows: Any) -> None:
        self._write(run_id, *rows)
        faults.point("collect.appended")

    def _settle(self, wait: bool) -> None:
        """Take in the write in flight once it is done (waiting for it if `wait`), then run the
        callbacks whose rows, quarantine rows and files are all written, in order."""
        if self._error is not None:
            raise self._error
        if self._in_flight is not None and (wait or self._in_flight[0].done()):
            future, ends = self._in_flight
            self._in_flight = None
            error = future.exception()
            if error is not None:
                self._error = error
                raise error
            self._written = ends
        while self._after and self._written.reached(self._after[0][0]):
            _, callback = self._after.pop(0)
            callback()
