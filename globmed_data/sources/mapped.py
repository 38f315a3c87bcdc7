"""The collect's map: one file's records read, keyed, mapped and normalised into Arrow tables.

No warehouse here, so it runs in any process: the run's own, a local process pool, a Ray task
(globmed_data/pipeline/executor.py); the collector (collect.py) writes what it returns.

Every record ends in one of three places: a raw row and an entry; a raw row and a quarantine row
(it has a key, its mapping failed); or a quarantine row alone (it could not be read or keyed).
Entry and quarantine rows name their raw row (column `_row`), so that the collector, which alone
knows the source's earlier files, can turn a repeated key into a `duplicate_key` row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from globmed_data.ids import raw_hashes
from globmed_data.schema import ENTRY_ARROW_SCHEMA, ENTRY_COLUMNS, QUARANTINE_SCHEMA, RAW_SCHEMA
from globmed_data.sources.mapping import FileContext, MappingError, RecordMapper
from globmed_data.sources.readers import FileReadError, RawItem, detect_format, read_file
from globmed_data.sources.settings import CollectSettings, FileSource, HubSource

PAYLOAD_LIMIT = 65536
ROW = "_row"  # an entry's or quarantine row's raw row in its batch; null: the record has no key

MAPPED_ENTRY_SCHEMA = ENTRY_ARROW_SCHEMA.append(pa.field(ROW, pa.int32()))
MAPPED_QUARANTINE_SCHEMA = QUARANTINE_SCHEMA.append(pa.field(ROW, pa.int32()))


@dataclass
class MappedBatch:
    """Up to `collect.batch_size` records of one file, mapped: one warehouse transaction."""

    raws: pa.Table  # RAW_SCHEMA, one row per keyed record, in read order
    entries: pa.Table  # MAPPED_ENTRY_SCHEMA
    quarantine: pa.Table  # MAPPED_QUARANTINE_SCHEMA
    records: int  # records read, whatever became of them
    bytes_read: int


class _Rows:
    """The rows of one batch, gathered column by column; its keyed records wait in `pending` and
    are mapped together when the batch is complete (RecordMapper.map_batch)."""

    def __init__(self, source: str, rel: str) -> None:
        self.source, self.rel = source, rel
        self.keys: list[str] = []
        self.locators: list[str] = []
        self.payloads: list[str] = []
        # Raw row i's item (its record), synthetic fields and place in read order.
        self.pending: list[tuple[RawItem, dict[str, Any], int]] = []
        self.quarantined: list[dict[str, Any]] = []
        self.order: list[int] = []  # each quarantine row's record, in read order
        self.entries: pa.Table | None = None
        self.records = self.bytes_read = 0

    def raw(self, key: str, item: RawItem, payload: str, extra: dict[str, Any]) -> None:
        self.keys.append(key)
        self.locators.append(item.locator)
        self.payloads.append(payload)
        self.pending.append((item, extra, self.records))

    def quarantine(
        self, locator: str, key: str | None, reason: str, detail: str, payload: str | None, size: int,
        row: int | None = None, record: int | None = None,
    ) -> None:  # fmt: skip
        self.order.append(self.records if record is None else record)
        self.quarantined.append(
            {
                "source": self.source, "file": self.rel, "locator": locator, "record_key": key,
                "reason": reason, "detail": detail,
                "payload": payload[:PAYLOAD_LIMIT] if payload is not None else None,
                "payload_bytes": size, ROW: row,
            }
        )  # fmt: skip

    def batch(self) -> MappedBatch:
        n = len(self.keys)
        raws = pa.table(
            [
                [self.source] * n,
                self.keys,
                [self.rel] * n,
                self.locators,
                raw_hashes(self.payloads),
                self.payloads,
            ],
            schema=RAW_SCHEMA,
        )
        entries = self.entries if self.entries is not None else MAPPED_ENTRY_SCHEMA.empty_table()
        in_order = sorted(range(len(self.order)), key=self.order.__getitem__)  # stable: read order
        quarantined = [self.quarantined[i] for i in in_order]
        quarantine = pa.Table.from_pylist(quarantined, schema=MAPPED_QUARANTINE_SCHEMA)
        return MappedBatch(raws, entries, quarantine, self.records, self.bytes_read)


class FileMapper:
    """Maps one file's records, batch by batch."""

    def __init__(self, source: FileSource | HubSource, rel: str) -> None:
        self.mapper = RecordMapper(source)
        self.source, self.rel = source, rel
        self.ctx: FileContext = self.mapper.file_context(rel)

    def batches(self, items: Iterator[RawItem], batch_size: int, file_size: int) -> Iterator[MappedBatch]:
        """Always yields at least one batch (the last may be empty): it carries the file's end."""
        rows = _Rows(self.source.name, self.rel)
        try:
            for item in items:
                self._add(rows, item)
                if rows.records >= batch_size:
                    yield self._mapped(rows)
                    rows = _Rows(self.source.name, self.rel)
        except FileReadError as exc:
            # after every record read before it, their mapping's failures included
            rows.quarantine(
                "file", None, "file_unreadable", str(exc), None, file_size, record=rows.records + 1
            )
        yield self._mapped(rows)

    def _add(self, rows: _Rows, item: RawItem) -> None:
        """Read and key one record: a raw row waiting for its mapping, or a quarantine row."""
        rows.records += 1
        rows.bytes_read += item.size
        try:
            self._key(rows, item)
        except Exception as exc:  # one odd record never stops the file: it is quarantined
            rows.quarantine(item.locator, None, *_failure(exc), item.raw_text, item.size)

    def _key(self, rows: _Rows, item: RawItem) -> None:
        if item.record is None:
            reason = item.reason or "unreadable"
            rows.quarantine(item.locator, None, reason, item.detail, item.raw_text, item.size)
            return
        payload = item.text()
        extra = {"_file": self.rel, "_locator": item.locator, **item.extra}
        try:
            key = self.mapper.record_key(item.record, extra, item.raw_text)
        except MappingError as exc:
            rows.quarantine(item.locator, None, exc.reason, exc.detail, payload, len(payload))
            return
        rows.raw(key, item, payload, extra)

    def _mapped(self, rows: _Rows) -> MappedBatch:
        """The batch with its waiting records mapped: an entry each, or a quarantine row that
        names its raw row."""
        records = [item.record for item, _, _ in rows.pending]  # a keyed item always has its record
        extras = [extra for _, extra, _ in rows.pending]
        cols = self.mapper.map_batch(records, extras, self.ctx, rows.keys)
        for row, exc in sorted(cols.errors.items()):
            item, _, seq = rows.pending[row]
            if isinstance(exc, MappingError):
                payload = rows.payloads[row]
                rows.quarantine(item.locator, rows.keys[row], exc.reason, exc.detail, payload, len(payload),
                                row, record=seq)  # fmt: skip
            else:
                rows.quarantine(item.locator, None, *_failure(exc), item.raw_text, item.size, row, record=seq)
        columns = [cols.columns[name] for name in ENTRY_COLUMNS]
        rows.entries = pa.table([*columns, cols.index], schema=MAPPED_ENTRY_SCHEMA)
        rows.pending = []
        return rows.batch()


def _failure(exc: Exception) -> tuple[str, str]:
    """The reason and detail of a record whose reading or mapping raised something unexpected."""
    reason = "too_deep" if isinstance(exc, RecursionError) else "record_error"
    return reason, f"{type(exc).__name__}: {exc}"


def map_file(
    source: FileSource | HubSource, rel: str, path: Path, settings: CollectSettings, size: int
) -> Iterator[MappedBatch]:
    """Read and map one file, streaming: a batch at a time."""
    reader: Iterator[RawItem]
    try:
        fmt = detect_format(path, source.format)
        reader = read_file(
            path,
            fmt,
            encoding=source.encoding,
            record_path=source.resolved_record_path(),
            max_record_bytes=settings.max_record_bytes,
        )
    except FileReadError as exc:
        reader = _failing(exc)
    return FileMapper(source, rel).batches(reader, settings.batch_size, size)


def map_file_whole(
    source: FileSource | HubSource, rel: str, path: Path, settings: CollectSettings, size: int
) -> list[MappedBatch]:
    """map_file as one call that returns: what a worker process or a Ray task runs."""
    return list(map_file(source, rel, path, settings, size))


def quarantine_rows(source: str, unreadable: list[tuple[str, str]]) -> MappedBatch:
    """A batch of whole files that could not be opened: (file, why) each."""
    rows = _Rows(source, "")
    for rel, why in unreadable:
        rows.rel = rel
        rows.quarantine("file", None, "file_unreadable", why, None, 0)
    return rows.batch()


def _failing(exc: FileReadError) -> Iterator[RawItem]:
    raise exc
    yield  # pragma: no cover - makes this a generator


def without_row(table: pa.Table) -> pa.Table:
    return table.drop_columns([ROW])


assert tuple(MAPPED_ENTRY_SCHEMA.names[:-1]) == ENTRY_COLUMNS
