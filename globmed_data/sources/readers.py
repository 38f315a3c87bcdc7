"""Streaming readers: one file in, raw records (or per-record read errors) out.

JSONL, CSV/TSV and Parquet stream, so a multi-GB file never has to fit in memory.
A JSON document (array or nested object) is parsed whole: keep very large data in JSONL
or Parquet. A record that cannot be read yields a RawItem with an error instead of a
record, so the caller can quarantine it and go on.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

BOM = b"\xef\xbb\xbf"
FORMATS = ("json", "jsonl", "csv", "tsv", "parquet")
_SUFFIXES = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}
csv.field_size_limit(sys.maxsize)


@dataclass(slots=True)
class RawItem:
    """One record as read: `record` is set, or `reason`/`detail` say why it could not be read."""

    locator: str  # "L12" (line), "#3" (array index), "exams/X/data#3", "R40" (row)
    record: dict[str, Any] | None = None
    raw_text: str | None = None  # the record's original text, when the format has one
    size: int = 0
    reason: str | None = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # synthetic fields: _path
    json_text: str | None = None  # a record without text of its own, as compact JSON, when made

    def text(self) -> str:
        """The record's text as the warehouse keeps it (its payload): its own text, else its JSON
        (compact, keys in the record's order)."""
        if self.raw_text is not None:
            return self.raw_text
        if self.json_text is not None:
            return self.json_text
        return compact_json(self.record)


_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":"))


def compact_json(value: Any) -> str:
    """`value` as JSON text, keys in their order, no spaces: what orjson writes, but with NaN and
    infinities kept (orjson writes null) and integers past 64 bits allowed."""
    return _COMPACT_JSON.encode(value)


class FileReadError(Exception):
    """The whole file could not be read (missing, not valid JSON, wrong format...)."""


def detect_format(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise FileReadError(
            f"{path}: cannot tell the format from the suffix '{path.suffix}'; set `format` "
            f"to one of {', '.join(FORMATS)}"
        )
    return fmt


def read_file(
    path: Path, fmt: str, *, encoding: str, record_path: str | None, max_record_bytes: int
) -> Iterator[RawItem]:
    if fmt == "jsonl":
        yield from _read_jsonl(path, encoding, max_record_bytes)
    elif fmt in ("csv", "tsv"):
        yield from _read_csv(path, encoding, "\t" if fmt == "tsv" else ",", max_record_bytes)
    elif fmt == "parquet":
        yield from _read_parquet(path, max_record_bytes)
    elif fmt == "json":
        yield from _read_json(path, encoding, record_path, max_record_bytes)
    else:  # pragma: no cover - config validation forbids it
        raise FileReadError(f"unsupported format {fmt}")


def _decode(data: bytes, encoding: str) -> str:
    if encoding.replace("_", "-").lower() in ("utf-8", "utf8"):
        encoding = "utf-8-sig" if data.startswith(BOM) else "utf-8"
    return data.decode(encoding)


def _excerpt(data: bytes, limit: int = 65536) -> str:
    return data[:limit].decode("utf-8", errors="replace")


def _read_jsonl(path: Path, encoding: str, max_bytes: int) -> Iterator[RawItem]:
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if lineno == 1 and line.startswith(BOM):
                line = line[len(BOM) :]
            if not line.strip():
                continue
            loc = f"L{lineno}"
            size = len(line)
            if size > max_bytes:
                yield _too_large(loc, _excerpt(line), size, max_bytes)
                continue
            try:
                text = _decode(line, encoding)
            except UnicodeDecodeError as exc:
                yield RawItem(
                    loc,
                    raw_text=_excerpt(line),
                    size=size,
                    reason="bad_encoding",
                    detail=f"not valid {encoding} at byte {exc.start}: {exc.reason}",
                )
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                yield RawItem(
                    loc,
                    raw_text=text[:65536],
                    size=size,
                    reason="malformed_json",
                    detail=f"{exc.msg} at column {exc.colno}",
                )
                continue
            except RecursionError:
                yield RawItem(loc, raw_text=text[:65536], size=size, reason="too_deep", detail=_TOO_DEEP)
                continue
            if ("\\ud" in text or "\\uD" in text) and _has_lone_surrogate(obj):
                yield RawItem(loc, raw_text=text[:65536], size=size, reason="bad_encoding", detail=_SURROGATE)
                continue
            yield _object_item(loc, obj, text, size)


_TOO_DEEP = "nested too deeply to read (Python's recursion limit)"
# JSON may escape half of a UTF-16 pair alone ("\ud800"): json reads it, but no text can hold it.
_SURROGATE = "a string holds a lone surrogate escape (\\ud800-\\udfff), which is not a character"


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _sized_item(loc: str, obj: Any, max_bytes: int, **extra: Any) -> RawItem:
    """A record of a format with no text per record (JSON documents, Parquet rows): its size is
    that of its JSON text, so `max_record_bytes` holds in every format. The text made for the size
    is kept as the record's payload, unless it has a null: orjson writes NaN as null, so that
    record's payload is made again by json (few records have one)."""
    try:
        data = orjson.dumps(obj, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME)
        text = None if b"null" in data else data.decode("utf-8")
    except (orjson.JSONEncodeError, RecursionError):  # past 64-bit integers or 255 levels, or
        try:  # a lone surrogate: json has none of those limits, and says which it was
            text = compact_json(obj)
            data = text.encode("utf-8")
        except RecursionError:
            return RawItem(loc, raw_text=repr(type(obj)), reason="too_deep", detail=_TOO_DEEP)
        except UnicodeEncodeError:
            return RawItem(loc, raw_text=json.dumps(obj, default=str)[:65536], reason="bad_encoding",
                           detail=_SURROGATE)  # fmt: skip
    if len(data) > max_bytes:
        return _too_large(loc, _excerpt(data), len(data), max_bytes)
    item = _object_item(loc, obj, None, len(data), **extra)
    item.json_text = text
    return item


def _too_large(loc: str, excerpt: str, size: int, max_bytes: int) -> RawItem:
    return RawItem(loc, raw_text=excerpt, size=size, reason="record_too_large",
                   detail=f"{size} bytes > max_record_bytes {max_bytes}")  # fmt: skip


def _object_item(loc: str, obj: Any, text: str | None, size: int, **extra: Any) -> RawItem:
    if not isinstance(obj, dict):
        return RawItem(
            loc,
            raw_text=(text or json.dumps(obj, ensure_ascii=False))[:65536],
            size=size,
            reason="not_an_object",
            detail=f"expected a JSON object, got {type(obj).__name__}",
        )
    return RawItem(loc, record=obj, raw_text=text, size=size, extra=extra)


def _read_csv(path: Path, encoding: str, delimiter: str, max_bytes: int) -> Iterator[RawItem]:
    # surrogateescape keeps undecodable bytes visible per row instead of failing the file.
    enc = "utf-8-sig" if encoding.replace("_", "-").lower() in ("utf-8", "utf8") else encoding
    with path.open("r", encoding=enc, errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        for row in reader:
            loc = f"L{reader.line_num}"
            if not any(cell.strip() for cell in row):
                continue
            text = delimiter.join(row)
            size = len(text.encode("utf-8", errors="surrogateescape"))
            if size > max_bytes:
                yield _too_large(loc, _safe(text[:65536]), size, max_bytes)
                continue
            if _has_surrogates(text):
                yield RawItem(
                    loc,
                    raw_text=_safe(text),
                    size=size,
                    reason="bad_encoding",
                    detail=f"row is not valid {encoding}",
                )
                continue
            if len(row) != len(header):
                yield RawItem(
                    loc,
                    raw_text=text,
                    size=size,
                    reason="malformed_row",
                    detail=f"{len(row)} cells, header has {len(header)}",
                )
                continue
            yield RawItem(loc, record=dict(zip(header, row, strict=True)), raw_text=text, size=size)


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _safe(text: str) -> str:
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _read_parquet(path: Path, max_bytes: int) -> Iterator[RawItem]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise FileReadError(f"{path}: not a readable Parquet file: {exc}") from None
    row = 0
    for batch in pf.iter_batches(batch_size=4096):
        for obj in batch.to_pylist():
            yield _sized_item(f"R{row}", obj, max_bytes)
            row += 1


def _read_json(path: Path, encoding: str, record_path: str | None, max_bytes: int) -> Iterator[RawItem]:
    data = path.read_bytes()
    try:
        doc = json.loads(_decode(data, encoding))
    except UnicodeDecodeError as exc:
        raise FileReadError(f"{path}: not valid {encoding} at byte {exc.start}: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise FileReadError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise FileReadError(f"{path}: {_TOO_DEEP}") from None
    steps = record_path.split(".") if record_path else []
    yield from _walk(doc, steps, [], [], path, max_bytes)


def _walk(
    node: Any, steps: list[str], trail: list[str], wild: list[str], path: Path, max_bytes: int
) -> Iterator[RawItem]:
    if not steps:
        prefix = "/".join(trail)
        extra = {"_path": "/".join(wild)} if wild else {}
        if isinstance(node, list):
            for i, obj in enumerate(node):
                yield _sized_item(f"{prefix}#{i}", obj, max_bytes, **extra)
        else:
            yield _sized_item(f"{prefix}#0", node, max_bytes, **extra)
        return
    step, rest = steps[0], steps[1:]
    if not isinstance(node, dict):
        raise FileReadError(f"{path}: record_path step '{step}' at '{'/'.join(trail)}' needs an object")
    if step == "*":
        for key, child in node.items():
            yield from _walk(child, rest, [*trail, key], [*wild, key], path, max_bytes)
    elif step in node:
        yield from _walk(node[step], rest, [*trail, step], wild, path, max_bytes)
    else:
        raise FileReadError(f"{path}: record_path step '{step}' not found at '{'/'.join(trail) or '(root)'}'")
