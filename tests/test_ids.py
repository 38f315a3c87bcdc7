"""Identifiers never change: an entry's id, content hash and raw hash are stored in every
warehouse and published dataset, so a faster way of computing them must give the same values."""

from __future__ import annotations

import hashlib

from globmed_data.ids import (
    CONTENT_FIELDS,
    canonical_json,
    content_hash,
    content_hashes,
    entry_id,
    entry_ids,
    raw_hashes,
    stable_hash,
)

ENTRY = {
    "task": "mcqa", "language": "vi", "split": "train", "question": "Bệnh nhân 病 \u00e9?",
    "options": ["x", "ý"], "answer_indices": [1], "label": None, "rationale": None,
    "metadata": "not content",
}  # fmt: skip


def _part_by_part(*parts: str) -> str:
    """How stable_hash was first written: one update per part and separator."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()


def test_identifiers_keep_their_values() -> None:
    assert stable_hash("raw", '{"q": "病"}') == "6c0d8e5d7ea91818ae046b3f8ed677ca"
    assert entry_id("src", "k:1") == "235cfe7c6daf56a471e917a9e40ad76f"
    assert content_hash(ENTRY) == "86e06bc0c5f99782e45c7deb378f05d2"


def test_one_call_hashing_equals_hashing_part_by_part() -> None:
    for parts in [(), ("",), ("a", ""), ("ab", "c"), ("a", "bc"), ("病", "\x1f", "é")]:
        assert stable_hash(*parts) == _part_by_part(*parts), parts
    content = {f: ENTRY.get(f) for f in CONTENT_FIELDS}
    assert content_hash(ENTRY) == _part_by_part("content", canonical_json(content))


def test_a_batch_of_identifiers_equals_one_at_a_time() -> None:
    """The collect's map makes them a column at a time (sources/columns.py)."""
    other = {**ENTRY, "question": "other", "options": None, "answer_indices": None}
    columns = {f: [ENTRY.get(f), other.get(f)] for f in CONTENT_FIELDS}
    assert content_hashes(columns) == [content_hash(ENTRY), content_hash(other)]
    odd = [  # every field absent; text of other scripts, escapes, empty lists; past 64 bits
        dict.fromkeys(CONTENT_FIELDS),
        {**ENTRY, "question": '病 "q"\n\u2028', "options": [], "answer_indices": [], "label": ""},
        {**ENTRY, "answer_indices": [2**70]},
    ]
    for rows in (odd[:2], odd):  # the last sends its batch down canonical_json's fallback
        columns = {f: [row.get(f) for row in rows] for f in CONTENT_FIELDS}
        assert content_hashes(columns) == [content_hash(row) for row in rows]
    assert entry_ids("src", ["k:1", "病"]) == [entry_id("src", "k:1"), entry_id("src", "病")]
    assert raw_hashes(['{"q": "病"}', ""]) == [stable_hash("raw", '{"q": "病"}'), stable_hash("raw", "")]
