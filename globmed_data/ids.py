"""Stable identifiers: the same input always hashes to the same id, on every machine."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

# Fields whose values make up an entry's content (used for change detection and versions).
CONTENT_FIELDS = (
    "task",
    "language",
    "split",
    "question",
    "context",
    "options",
    "answer_indices",
    "label",
    "premise",
    "hypothesis",
    "answer",
    "rationale",
)


def stable_hash(*parts: str) -> str:
    """128-bit BLAKE2b over the parts, each followed by a separator so that ("ab", "c") !=
    ("a", "bc"). One call over the joined text: the same bytes as hashing part by part."""
    return _digest(("\x1f".join(parts) + "\x1f" if parts else "").encode("utf-8"))


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace: equal values, equal strings."""
    return _canonical_bytes(value).decode("utf-8")


def _canonical_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    except orjson.JSONEncodeError:
        # orjson stops at 64-bit integers (a 20-digit id is valid JSON) and at 255 levels of
        # nesting; json has neither limit. Only values orjson refuses come here, so every other
        # value keeps its hash.
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
        return text.encode("utf-8")


def entry_id(source: str, record_key: str) -> str:
    """An entry's identity: where it comes from, not what it says, so edits keep the id."""
    return stable_hash("entry", source, record_key)


def content_hash(entry: dict[str, Any]) -> str:
    """stable_hash("content", canonical_json(...)) over the JSON's bytes as they are: the same
    hash without turning them into text and back (every entry pays it)."""
    return _content_digest(_canonical_bytes({f: entry.get(f) for f in CONTENT_FIELDS}))


def _content_digest(body: bytes) -> str:
    return _digest(b"content\x1f" + body + b"\x1f")


def entry_ids(source: str, record_keys: list[str]) -> list[str]:
    """entry_id(source, key) for each key, without a call per key (stable_hash's parts joined
    here: the collect's map pays it per record; tests/test_ids.py pins the equality)."""
    prefix = f"entry\x1f{source}\x1f"
    return [_digest((prefix + key + "\x1f").encode("utf-8")) for key in record_keys]


_SORTED_CONTENT_FIELDS = tuple(sorted(CONTENT_FIELDS))


def content_hashes(columns: dict[str, list[Any]]) -> list[str]:
    """content_hash of each row of `columns` (a list per CONTENT_FIELDS name, all alike long).
    The rows are built with their keys already sorted, so orjson writes canonical_json's bytes
    without sorting each row; a value that needs canonical_json's fallbacks (orjson refuses it)
    sends the batch through content_hash's own path."""
    fields = _SORTED_CONTENT_FIELDS
    rows = list(zip(*(columns[f] for f in fields), strict=True))
    try:
        return [_content_digest(orjson.dumps(dict(zip(fields, row, strict=True)))) for row in rows]
    except orjson.JSONEncodeError:
        return [_content_digest(_canonical_bytes(dict(zip(fields, row, strict=True)))) for row in rows]


def raw_hashes(payloads: list[str]) -> list[str]:
    """stable_hash("raw", payload) for each payload, without a call per payload (as entry_ids)."""
    return [_digest(b"raw\x1f" + payload.encode("utf-8") + b"\x1f") for payload in payloads]
