"""Stable identifiers: the same input always hashes to the same id, on every machine."""

from __future__ import annotations

import hashlib
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
    """128-bit BLAKE2b over the parts, separated so that ("ab", "c") != ("a", "bc")."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace: equal values, equal strings."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str).decode(
        "utf-8"
    )


def entry_id(source: str, record_key: str) -> str:
    """An entry's identity: where it comes from, not what it says, so edits keep the id."""
    return stable_hash("entry", source, record_key)


def content_hash(entry: dict[str, Any]) -> str:
    return stable_hash("content", canonical_json({f: entry.get(f) for f in CONTENT_FIELDS}))
