"""The collect stage for one source: read, map, normalise and write entries batch by batch.

Incremental: a source whose spec and file checksums (or Hub revision) are unchanged since its
last complete collect is skipped; within a changed source, files already collected with the
same checksum and spec are not read again. Idempotent: records are upserted by
(source, record_key), so a re-run after a crash adds no duplicates, and a second run over
the same data adds nothing.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from globmed_data import faults
from globmed_data.config import LoadedConfig
from globmed_data.ids import canonical_json, stable_hash
from globmed_data.pipeline.stage import Progress
from globmed_data.sources.locate import (
    Located,
    SourceError,
    SourceFile,
    hub_revision,
    locate_files,
    locate_hub,
)
from globmed_data.sources.mapping import MappingError, RecordMapper
from globmed_data.sources.normalize import NORMALIZER_VERSION
from globmed_data.sources.readers import FileReadError, RawItem, detect_format, read_file
from globmed_data.sources.settings import FileSource, HubSource
from globmed_data.warehouse import FileDone, Warehouse, now

PAYLOAD_LIMIT = 65536
Log = Callable[[str], None]


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


class _Batch:
    """Rows gathered for one transaction."""

    def __init__(self) -> None:
        self.raws: list[dict[str, Any]] = []
        self.entries: list[dict[str, Any]] = []
        self.quarantined: list[dict[str, Any]] = []
        self.quarantined_keys: list[str] = []

    def __len__(self) -> int:
        return len(self.raws) + len(self.quarantined)


class SourceCollector:
    def __init__(
        self,
        wh: Warehouse,
        loaded: LoadedConfig,
        source: FileSource | HubSource,
        run_id: str,
        log: Log | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.wh = wh
        self.progress = progress or (lambda done, total: None)
        self.bytes_total = self.bytes_done = 0
        self.loaded = loaded
        self.source = source
        self.run_id = run_id
        self.log = log or (lambda _msg: None)
        self.settings = loaded.config.collect
        self.spec_hash = source.spec_hash()
        self.mapper = RecordMapper(source)
        self.report = SourceReport(source.name, source.kind)
        self.languages: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.seen: dict[str, str] = {}  # record_key -> "file:locator" of its first occurrence

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
        self.wh.record_stage(
            self.run_id,
            "collect",
            self.source.name,
            status,
            started,
            self.report.as_dict(),
            self.report.error,
        )
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
            batch = _Batch()
            for rel, why in located.unreadable:
                self._quarantine(batch, rel, "file", None, "file_unreadable", why, None, 0)
            self._flush(batch, None)
        self.report.vanished = self.wh.finish_source(
            source=self.source.name,
            kind=self.source.kind,
            run_id=self.run_id,
            spec_hash=self.spec_hash,
            fingerprint=fingerprint,
            revision=revision,
            files=[f.rel for f in located.files] + [rel for rel, _ in located.unreadable],
        )
        self._fail_if_nothing_usable()

    def _fail_if_nothing_usable(self) -> None:
        """A source whose every record is quarantined gave nothing: that is a failure to show
        (exit 3), not a success. The source stays failed, and is read again, until it yields."""
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
            self.seen[key] = f"{file}:{locator}"
        self.report.files_unchanged = len(unchanged)
        skip = set(unchanged)
        todo = [f for f in located.files if f.rel not in skip]
        # Progress in bytes of the files to read: per batch, so one big file is not 0 then 100%.
        self.bytes_total, self.bytes_done = sum(f.size for f in todo), 0
        self.progress(0, self.bytes_total)
        for i, f in enumerate(todo, start=1):
            self._collect_file(f, checksums[f.rel])
            self.bytes_done += f.size
            self.log(
                f"{self.source.name}: file {i}/{len(todo)} {f.rel} done "
                f"({self.report.records} records so far)"
            )
            self.progress(self.bytes_done, self.bytes_total)

    def _collect_file(self, f: SourceFile, sha: str) -> None:
        batch = _Batch()
        records = read = 0
        ctx = self.mapper.file_context(f.rel)
        try:
            fmt = detect_format(f.path, self.source.format)
            items = read_file(
                f.path,
                fmt,
                encoding=self.source.encoding,
                record_path=self.source.resolved_record_path(),
                max_record_bytes=self.settings.max_record_bytes,
            )
            for item in items:
                records += 1
                read += item.size
                try:
                    self._add(batch, f, ctx, item)
                except Exception as exc:  # one odd record never stops the file: it is quarantined
                    reason = "too_deep" if isinstance(exc, RecursionError) else "record_error"
                    self._quarantine(batch, f.rel, item.locator, None, reason, f"{type(exc).__name__}: {exc}",
                                     item.raw_text, item.size)  # fmt: skip
                if len(batch) >= self.settings.batch_size:
                    self._flush(batch, None)
                    batch = _Batch()
                    self.progress(self.bytes_done + min(read, f.size), self.bytes_total)
        except FileReadError as exc:
            self._quarantine(batch, f.rel, "file", None, "file_unreadable", str(exc), None, f.size)
        self.report.records += records
        self._flush(batch, FileDone(f.rel, f.size, sha, self.spec_hash, records))

    def _add(self, batch: _Batch, f: SourceFile, ctx: Any, item: RawItem) -> None:
        if item.record is None:
            self._quarantine(
                batch,
                f.rel,
                item.locator,
                None,
                item.reason or "unreadable",
                item.detail,
                item.raw_text,
                item.size,
            )
            return
        payload = (
            item.raw_text
            if item.raw_text is not None
            else json.dumps(item.record, ensure_ascii=False, default=str)
        )
        extra = {"_file": f.rel, "_locator": item.locator, **item.extra}
        try:
            key = self.mapper.record_key(item.record, extra, item.raw_text)
        except MappingError as exc:
            self._quarantine(batch, f.rel, item.locator, None, exc.reason, exc.detail, payload, len(payload))
            return
        where = f"{f.rel}:{item.locator}"
        if key in self.seen:
            if key.startswith("h:"):  # keyless source: the key is the record's own hash
                reason, detail = "duplicate_record", f"identical to the record at {self.seen[key]}"
            else:
                reason, detail = "duplicate_key", f"key {key!r} already at {self.seen[key]}"
            self._quarantine(batch, f.rel, item.locator, key, reason, detail, payload, len(payload))
            return
        self.seen[key] = where
        batch.raws.append(
            {
                "source": self.source.name,
                "record_key": key,
                "file": f.rel,
                "locator": item.locator,
                "raw_hash": stable_hash("raw", payload),
                "payload": payload,
            }
        )
        try:
            entry = self.mapper.map(item.record, extra, ctx, key)
        except MappingError as exc:
            self._quarantine(batch, f.rel, item.locator, key, exc.reason, exc.detail, payload, len(payload))
            batch.quarantined_keys.append(key)
            return
        batch.entries.append(entry)
        self.languages[entry["language"]] += 1

    def _quarantine(
        self,
        batch: _Batch,
        file: str,
        locator: str,
        key: str | None,
        reason: str,
        detail: str,
        payload: str | None,
        size: int,
    ) -> None:
        self.reasons[reason] += 1
        batch.quarantined.append(
            {
                "source": self.source.name,
                "file": file,
                "locator": locator,
                "record_key": key,
                "reason": reason,
                "detail": detail,
                "payload": payload[:PAYLOAD_LIMIT] if payload is not None else None,
                "payload_bytes": size,
            }
        )

    def _flush(self, batch: _Batch, done: FileDone | None) -> None:
        counts = self.wh.write_batch(
            source=self.source.name,
            run_id=self.run_id,
            raws=batch.raws,
            entries=batch.entries,
            quarantined=batch.quarantined,
            quarantined_keys=batch.quarantined_keys,
            done=done,
        )
        for k in ("added", "updated", "unchanged", "quarantined"):
            setattr(self.report, k, getattr(self.report, k) + counts[k])
        faults.point("collect.batch")


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
) -> SourceReport:
    return SourceCollector(wh, loaded, source, run_id, log, progress).run()
