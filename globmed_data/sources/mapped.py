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

from globmed_data.ids import stable_hash
from globmed_data.schema import (
    ENTRY_ARROW_SCHEMA,
    ENTRY_COLUMNS,
    QUARANTINE_SCHEMA,
    RAW_SCHEMA,
    entries_table,
)
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
    """The rows of one batch, gathered column by column."""

    def __init__(self, source: str, rel: str) -> None:
        self.source, self.rel = source, rel
        self.keys: list[str] = []
        self.locators: list[str] = []
        self.hashes: list[str] = []
        self.payloads: list[str] = []
        self.entries: list[dict[str, Any]] = []
        self.quarantined: list[dict[str, Any]] = []
        self.records = self.bytes_read = 0

    def __len__(self) -> int:
        return len(self.keys) + len(self.quarantined)

    def raw(self, key: str, locator: str, payload: str) -> int:
        self.keys.append(key)
        self.locators.append(locator)
        self.hashes.append(stable_hash("raw", payload))
        self.payloads.append(payload)
        return len(self.keys) - 1

    def quarantine(
        self, locator: str, key: str | None, reason: str, detail: str, payload: str | None, size: int,
        row: int | None = None,
    ) -> None:  # fmt: skip
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
            [[self.source] * n, self.keys, [self.rel] * n, self.locators, self.hashes, self.payloads],
            schema=RAW_SCHEMA,
        )
        entries = entries_table(self.entries, MAPPED_ENTRY_SCHEMA)
        quarantine = pa.Table.from_pylist(self.quarantined, schema=MAPPED_QUARANTINE_SCHEMA)
        return MappedBatch(raws, entries, quarantine, self.records, self.bytes_read)


class FileMapper:
    """Maps one file's records, batch by batch."""

    def __init__(self, source: FileSource | HubSource, rel: str) -> None:
        self.mapper = RecordMapper(source)
        self.source, self.rel = source, rel
        self.ctx: FileContext = self.mapper.file_context(rel)
        self._row: int | None = None  # the raw row of the record being mapped, once it has one

    def batches(self, items: Iterator[RawItem], batch_size: int, file_size: int) -> Iterator[MappedBatch]:
        """Always yields at least one batch (the last may be empty): it carries the file's end."""
        rows = _Rows(self.source.name, self.rel)
        try:
            for item in items:
                self._add(rows, item)
                if len(rows) >= batch_size:
                    yield rows.batch()
                    rows = _Rows(self.source.name, self.rel)
        except FileReadError as exc:
            rows.quarantine("file", None, "file_unreadable", str(exc), None, file_size)
        yield rows.batch()

    def _add(self, rows: _Rows, item: RawItem) -> None:
        rows.records += 1
        rows.bytes_read += item.size
        self._row = None
        try:
            self._map(rows, item)
        except Exception as exc:  # one odd record never stops the file: it is quarantined
            reason = "too_deep" if isinstance(exc, RecursionError) else "record_error"
            detail = f"{type(exc).__name__}: {exc}"
            rows.quarantine(item.locator, None, reason, detail, item.raw_text, item.size, self._row)

    def _map(self, rows: _Rows, item: RawItem) -> None:
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
        self._row = rows.raw(key, item.locator, payload)
        try:
            entry = self.mapper.map(item.record, extra, self.ctx, key)
        except MappingError as exc:
            rows.quarantine(item.locator, key, exc.reason, exc.detail, payload, len(payload), self._row)
            return
        entry[ROW] = self._row
        rows.entries.append(entry)


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
