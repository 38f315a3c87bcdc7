"""The collect stage for one source: read, map, normalise and write entries batch by batch.

Incremental: a source whose spec and file checksums (or Hub revision) are unchanged since its
last complete collect is skipped; within a changed source, files already collected with the
same checksum and spec are not read again. Idempotent: records are upserted by
(source, record_key), so a re-run after a crash adds no duplicates, and a second run over
the same data adds nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from globmed_data import faults
from globmed_data.config import LoadedConfig
from globmed_data.ids import canonical_json, stable_hash
from globmed_data.pipeline.executor import Executor, InlineExecutor, in_flight, ordered_map
from globmed_data.pipeline.stage import Progress
from globmed_data.schema import RAW_SCHEMA
from globmed_data.sources.locate import (
    Located,
    SourceError,
    SourceFile,
    hub_revision,
    locate_files,
    locate_hub,
)
from globmed_data.sources.mapped import (
    MAPPED_ENTRY_SCHEMA,
    MAPPED_QUARANTINE_SCHEMA,
    PAYLOAD_LIMIT,
    ROW,
    MappedBatch,
    map_file,
    map_file_whole,
    quarantine_rows,
    without_row,
)
from globmed_data.sources.normalize import NORMALIZER_VERSION
from globmed_data.sources.settings import FileSource, HubSource
from globmed_data.warehouse import FileDone, Warehouse, now

Log = Callable[[str], None]
# A file larger than this is streamed in the run's process, a batch at a time, whatever the
# executor: a worker returns a whole file's rows at once.
STREAM_OVER_BYTES = 256 << 20


@dataclass
class SourceReport:
    source: str
    kind: str
    status: str = "collected"  # collected | skipped | failed
    revision: str | None = None
    files: int = 0
    files_unchanged: int = 0
    records: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    vanished: int = 0
    seconds: float = 0.0
    error: str | None = None
    by_language: dict[str, int] = field(default_factory=dict)
    by_reason: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _checksums(located: Located) -> list[tuple[str, str]]:
    """(name, sha256) per file; a file that cannot be opened counts too, so mending it is a change."""
    return [(f.rel, f.sha256()) for f in located.files] + [
        (rel, f"unreadable: {why}") for rel, why in located.unreadable
    ]


def _fingerprint(spec_hash: str, revision: str | None, files: list[tuple[str, str]]) -> str:
    return stable_hash(
        "fingerprint", spec_hash, NORMALIZER_VERSION, revision or "", canonical_json(sorted(files))
    )


class SourceCollector:
    def __init__(
        self,
        wh: Warehouse,
        loaded: LoadedConfig,
        source: FileSource | HubSource,
        run_id: str,
        log: Log | None = None,
        progress: Progress | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.wh = wh
        self.executor = executor or InlineExecutor()
        self.progress = progress or (lambda done, total: None)
        self.bytes_total = self.bytes_done = 0
        self.loaded = loaded
        self.source = source
        self.run_id = run_id
        self.log = log or (lambda _msg: None)
        self.settings = loaded.config.collect
        self.spec_hash = source.spec_hash()
        self.fresh = False  # no row of this source is stored: rows are appended, not upserted
        # Rows waiting for the next transaction: small files share one (a commit costs ~30 ms).
        self.pending: list[tuple[pa.Table, pa.Table, pa.Table]] = []
        self.pending_done: list[FileDone] = []
        self.pending_rows = 0
        self.report = SourceReport(source.name, source.kind)
        self.languages: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.seen: dict[str, tuple[str, str]] = {}  # record_key -> (file, locator) of its first occurrence
        self.finish_later: Callable[[], None] | None = None  # the source's completion, once its rows are in

    def run(self) -> SourceReport:
        started, t0 = now(), time.perf_counter()
        try:
            self._collect()
        except (SourceError, OSError) as exc:
            self._fail(str(exc))
        except Exception as exc:  # no input may stop the run: the source fails, with the cause
            self._fail(f"{type(exc).__name__}: {exc}")
        self.report.seconds = round(time.perf_counter() - t0, 3)
        self.report.by_language = dict(sorted(self.languages.items()))
        self.report.by_reason = dict(sorted(self.reasons.items()))
        status = {"collected": "succeeded", "skipped": "skipped", "failed": "failed"}[self.report.status]
        counts = self.report.as_dict()

        def record() -> None:
            self.wh.record_stage(
                self.run_id, "collect", self.source.name, status, started, counts, self.report.error
            )

        finish = self.finish_later
        if finish is not None and self.wh.appends is not None:
            self.wh.appends.after(lambda: (finish(), record()))
        else:
            record()
        return self.report

    def _fail(self, error: str) -> None:
        self.report.status, self.report.error = "failed", error
        self.wh.fail_source(
            source=self.source.name, kind=self.source.kind, run_id=self.run_id, spec_hash=self.spec_hash,
            error=error,
        )  # fmt: skip

    def _collect(self) -> None:
        state = self.wh.source_state(self.source.name)
        revision = None
        if isinstance(self.source, HubSource) and not self.source.local_path:
            revision = hub_revision(self.source)
            self.report.revision = revision
            fingerprint = _fingerprint(self.spec_hash, revision, [])
            if state and state["status"] == "complete" and state["fingerprint"] == fingerprint:
                self._skip(f"revision {revision[:12]} unchanged")
                return
        located = self._locate(revision)
        self.report.files = len(located.files)
        checksums = _checksums(located)
        if revision is None:
            fingerprint = _fingerprint(self.spec_hash, None, checksums)
            if state and state["status"] == "complete" and state["fingerprint"] == fingerprint:
                self._skip("files unchanged")
                return
        self._collect_files(located, dict(checksums))
        if located.unreadable:
            self._add(quarantine_rows(self.source.name, located.unreadable), None)
        self._flush()
        finish = partial(
            self.wh.finish_source,
            source=self.source.name,
            kind=self.source.kind,
            run_id=self.run_id,
            spec_hash=self.spec_hash,
            fingerprint=fingerprint,
            revision=revision,
            files=[f.rel for f in located.files] + [rel for rel, _ in located.unreadable],
            fresh=self.fresh,
        )
        appends = self.wh.appends if self.fresh else None
        if appends is not None and self.report.added:
            # Its rows may still wait in the appends: it is complete once they are in (and has an
            # active entry, so it is not all quarantined; a fresh source has nothing vanished).
            self.finish_later = finish
            return
        if appends is not None:
            appends.write_all()  # the check below reads the source's rows back
        self.report.vanished = finish()
        self._fail_if_nothing_usable()

    def _fail_if_nothing_usable(self) -> None:
        """A source whose every record is quarantined gave nothing: that is a failure to show
        (exit 3), not a success. The source stays failed, and is read again, until it yields."""
        if self.report.added or self.report.updated or self.report.unchanged:
            return  # this run left an active entry: no need to count (a scan of the source's rows)
        active, quarantined = self.wh.query(
            "SELECT (SELECT count(*) FROM entries WHERE source = $s AND status = 'active'), "
            "(SELECT count(*) FROM quarantine WHERE source = $s)",
            {"s": self.source.name},
        )[0]
        if active == 0 and quarantined > 0:
            top = self.wh.query(
                "SELECT reason, count(*) FROM quarantine WHERE source = ? "
                "GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3",
                [self.source.name],
            )
            reasons = ", ".join(f"{reason} {n:,}" for reason, n in top)
            name = self.source.name
            self._fail(f"every record was quarantined ({reasons}): see `globmed quarantine --source {name}`")

    def _locate(self, revision: str | None) -> Located:
        if isinstance(self.source, HubSource):
            return locate_hub(self.source, self.loaded, revision)
        return locate_files(self.source, self.loaded)

    def _skip(self, why: str) -> None:
        self.report.status = "skipped"
        self.log(f"{self.source.name}: skipped ({why})")

    def _collect_files(self, located: Located, checksums: dict[str, str]) -> None:
        known = self.wh.known_files(self.source.name)
        unchanged = [f.rel for f in located.files if known.get(f.rel) == (checksums[f.rel], self.spec_hash)]
        self.wh.mark_files_unchanged(self.source.name, unchanged, self.run_id)
        for key, file, locator in self.wh.keys_of_files(self.source.name, unchanged):
            self.seen[key] = (file, locator)
        self.report.files_unchanged = len(unchanged)
        self.fresh = not self.wh.has_rows(self.source.name)
        skip = set(unchanged)
        todo = [f for f in located.files if f.rel not in skip]
        # Progress in bytes of the files to read: per batch, so one big file is not 0 then 100%.
        self.bytes_total, self.bytes_done = sum(f.size for f in todo), 0
        self.progress(0, self.bytes_total)
        for i, (f, batches) in enumerate(self._mapped(todo), start=1):
            self._write_file(f, checksums[f.rel], batches)
            self.bytes_done += f.size
            self.log(
                f"{self.source.name}: file {i}/{len(todo)} {f.rel} done "
                f"({self.report.records} records so far)"
            )
            self.progress(self.bytes_done, self.bytes_total)

    def _mapped(self, todo: list[SourceFile]) -> Iterator[tuple[SourceFile, Iterator[MappedBatch]]]:
        """Each file with its mapped batches, in order. Through the executor when there is
        enough to read to be worth sending away (its workers map files side by side, while this
        thread writes); otherwise, and for a very large file, streamed here."""
        away = not self.executor.inline and self.bytes_total >= self.loaded.config.executor.min_task_bytes

        def sent(f: SourceFile) -> bool:
            return away and f.size <= STREAM_OVER_BYTES

        calls = ((self.source, f.rel, f.path, self.settings, f.size) for f in todo if sent(f))
        results = ordered_map(self.executor, map_file_whole, calls, in_flight(self.executor))
        for f in todo:
            if sent(f):
                yield f, iter(next(results))
            else:
                yield f, map_file(self.source, f.rel, f.path, self.settings, f.size)

    def _write_file(self, f: SourceFile, sha: str, batches: Iterator[MappedBatch]) -> None:
        records = read = 0
        for batch in batches:
            records += batch.records
            read += batch.bytes_read
            self._add(batch, None)
            self.progress(self.bytes_done + min(read, f.size), self.bytes_total)
        self.report.records += records
        self._add(None, FileDone(f.rel, f.size, sha, self.spec_hash, records))

    def _first_occurrences(self, batch: MappedBatch) -> tuple[pa.Table, pa.Table, pa.Table]:
        """The batch without the records whose key an earlier record of the source has: those
        become `duplicate_key` (or, keyless, `duplicate_record`) quarantine rows instead."""
        raws, entries, quarantine = batch.raws, batch.entries, batch.quarantine
        keys = raws["record_key"].to_pylist()
        places = zip(raws["file"].to_pylist(), raws["locator"].to_pylist(), strict=True)
        if len(set(keys)) == len(keys) and self.seen.keys().isdisjoint(keys):
            self.seen.update(zip(keys, places, strict=True))  # the usual batch: no key repeated
            return raws, entries, quarantine
        repeated: list[int] = []
        for row, (key, place) in enumerate(zip(keys, places, strict=True)):
            if key in self.seen:
                repeated.append(row)
            else:
                self.seen[key] = place
        rows = pa.array(repeated, pa.int32())
        keep = pc.invert(pc.is_in(pa.array(range(raws.num_rows), pa.int32()), rows))
        kept_quarantine = quarantine.filter(pc.invert(pc.is_in(quarantine[ROW], rows)))
        duplicates = self._duplicates(raws.take(rows))
        return (
            raws.filter(keep),
            entries.filter(pc.invert(pc.is_in(entries[ROW], rows))),
            pa.concat_tables([kept_quarantine, duplicates]),
        )

    def _duplicates(self, raws: pa.Table) -> pa.Table:
        rows = []
        for raw in raws.to_pylist():
            key, payload = raw["record_key"], raw["payload"]
            if key.startswith("h:"):  # keyless source: the key is the record's own hash
                reason, detail = "duplicate_record", f"identical to the record at {_place(self.seen[key])}"
            else:
                reason, detail = "duplicate_key", f"key {key!r} already at {_place(self.seen[key])}"
            rows.append(
                {"source": raw["source"], "file": raw["file"], "locator": raw["locator"], "record_key": key,
                 "reason": reason, "detail": detail, "payload": payload[:PAYLOAD_LIMIT],
                 "payload_bytes": len(payload), ROW: None}
            )  # fmt: skip
        return pa.Table.from_pylist(rows, schema=MAPPED_QUARANTINE_SCHEMA)

    def _add(self, batch: MappedBatch | None, done: FileDone | None) -> None:
        """Queue a batch's rows (first occurrences decided now, in read order) and/or a file's
        completion; write once a transaction's worth is waiting."""
        if batch is not None:
            tables = self._first_occurrences(batch)
            self.pending.append(tables)
            self.pending_rows += sum(t.num_rows for t in tables)
        if done is not None:
            self.pending_done.append(done)
        if self.pending_rows >= self.settings.batch_size:
            self._flush()

    def _flush(self) -> None:
        if not self.pending and not self.pending_done:
            return
        schemas = (RAW_SCHEMA, MAPPED_ENTRY_SCHEMA, MAPPED_QUARANTINE_SCHEMA)
        parts = zip(*self.pending, strict=True) if self.pending else ([s.empty_table()] for s in schemas)
        raws, entries, quarantine = (pa.concat_tables(p) for p in parts)
        appends = self.wh.appends if self.fresh else None
        if appends is not None:  # nothing of the source is stored: its rows are inserts, written later
            done = [(self.source.name, f) for f in self.pending_done]
            appends.add(self.run_id, raws, without_row(entries), without_row(quarantine), done)
            counts = dict.fromkeys(("updated", "unchanged"), 0)
            counts.update(added=entries.num_rows, quarantined=quarantine.num_rows)
        else:
            mapped_keys = pc.and_(pc.is_valid(quarantine[ROW]), pc.is_valid(quarantine["record_key"]))
            counts = self.wh.write_batch(
                source=self.source.name,
                run_id=self.run_id,
                raws=raws,
                entries=without_row(entries),
                quarantined=without_row(quarantine),
                quarantined_keys=quarantine["record_key"].filter(mapped_keys).to_pylist(),
                done=self.pending_done,
                fresh=self.fresh,
            )
        self.pending, self.pending_done, self.pending_rows = [], [], 0
        for k in ("added", "updated", "unchanged", "quarantined"):
            setattr(self.report, k, getattr(self.report, k) + counts[k])
        self.languages.update(_value_counts(entries["language"]))
        self.reasons.update(_value_counts(quarantine["reason"]))
        faults.point("collect.batch")


def _place(place: tuple[str, str]) -> str:
    return ":".join(place)


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    return {str(v["values"]): int(v["counts"]) for v in pc.value_counts(column).to_pylist()}


def files_unchanged(wh: Warehouse, loaded: LoadedConfig, source: FileSource | HubSource) -> bool:
    """What the collect's skip would decide, without collecting: the source's files and mapping
    are those of its last complete collect. A Hub source says False: knowing needs the network."""
    if isinstance(source, HubSource):
        return False
    state = wh.source_state(source.name)
    if not state or state["status"] != "complete":
        return False
    try:
        located = locate_files(source, loaded)
    except (SourceError, OSError):
        return False
    return bool(state["fingerprint"] == _fingerprint(source.spec_hash(), None, _checksums(located)))


def collect_source(
    wh: Warehouse,
    loaded: LoadedConfig,
    source: FileSource | HubSource,
    run_id: str,
    log: Log | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> SourceReport:
    return SourceCollector(wh, loaded, source, run_id, log, progress, executor).run()
