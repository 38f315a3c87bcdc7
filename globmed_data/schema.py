"""The canonical entry on the Python/Arrow side; schemas/entry.schema.json is its JSON twin.

tests/test_schema.py checks that the two (and the warehouse `entries` table) agree.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pyarrow as pa

from globmed_data.resources import resource_dir

ENTRY_ARROW_SCHEMA = pa.schema(
    [
        pa.field("entry_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("record_key", pa.string(), nullable=False),
        pa.field("content_hash", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("language", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("question", pa.string()),
        pa.field("context", pa.string()),
        pa.field("options", pa.list_(pa.string())),
        pa.field("answer_indices", pa.list_(pa.int32())),
        pa.field("label", pa.string()),
        pa.field("premise", pa.string()),
        pa.field("hypothesis", pa.string()),
        pa.field("answer", pa.string()),
        pa.field("rationale", pa.string()),
        pa.field("origin", pa.string(), nullable=False),
        pa.field("parent_entry_id", pa.string()),
        pa.field("license", pa.string()),
        pa.field("metadata", pa.string()),
    ]
)
ENTRY_COLUMNS = tuple(ENTRY_ARROW_SCHEMA.names)
# The collect's other two tables: a record as read, and a record set aside with its reason.
RAW_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("record_key", pa.string()),
        ("file", pa.string()),
        ("locator", pa.string()),
        ("raw_hash", pa.string()),
        ("payload", pa.string()),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("file", pa.string()),
        ("locator", pa.string()),
        ("record_key", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("payload", pa.string()),
        ("payload_bytes", pa.int64()),
    ]
)


@cache
def entry_json_schema() -> dict[str, Any]:
    return json.loads((resource_dir("schemas") / "entry.schema.json").read_text(encoding="utf-8"))


def entries_table(entries: list[dict[str, Any]], schema: pa.Schema = ENTRY_ARROW_SCHEMA) -> pa.Table:
    """Entries (dicts from the mapper) as an Arrow table with the canonical schema (or one that
    extends it: the collect's map adds each entry's raw row)."""
    return pa.table({c: [e.get(c) for e in entries] for c in schema.names}, schema=schema)
