"""Integers beyond 64 bits (a 20-digit id, say) are valid JSON: a record that holds one is read,
keyed and mapped like any other, in every format and wherever it stands (key, metadata, payload).
orjson, which sizes and hashes records, stops at 64 bits."""

from __future__ import annotations

import json
from pathlib import Path

from globmed_data.config import load_config
from globmed_data.ids import canonical_json
from tests.helpers import collect_all, write_config

BIG = 123456789012345678901234567890
SPEC = {"language": "en", "split": "train"}


def _item(n: int) -> dict:
    return {"problem_id": f"q{n}", "problem_text": f"Which nerve supplies muscle number {n}?",
            "choices": ["Radial", "Ulnar"], "answer": "A", "points": BIG + n}  # fmt: skip


def test_canonical_json_of_a_big_integer_keeps_every_digit() -> None:
    assert canonical_json({"b": BIG, "a": [1, "é"]}) == '{"a":[1,"é"],"b":' + str(BIG) + "}"
    assert json.loads(canonical_json({"n": -BIG})) == {"n": -BIG}


def test_records_with_big_integers_become_entries_in_every_format(tmp_path: Path, warehouse) -> None:
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(_item(n)) + "\n" for n in (1, 2)))
    (tmp_path / "doc.json").write_text(json.dumps([_item(3), _item(4)]))
    keyless = {"preset": "problem_choices", "mapping": {"key": []}, **SPEC}
    loaded = load_config(write_config(tmp_path, [
        {"name": "lines", "paths": ["a.jsonl"], "preset": "problem_choices", **SPEC},
        {"name": "doc", "paths": ["doc.json"], "preset": "problem_choices", **SPEC},
        {"name": "doc_keyless", "paths": ["doc.json"], **keyless},
        {"name": "big_key", "paths": ["doc.json"], "preset": "problem_choices",
         "mapping": {"key": ["points"]}, **SPEC},
    ]))  # fmt: skip
    reports = collect_all(warehouse, loaded)
    assert {name: (r.added, r.quarantined) for name, r in reports.items()} == {
        "lines": (2, 0), "doc": (2, 0), "doc_keyless": (2, 0), "big_key": (2, 0),
    }  # fmt: skip
    rows = warehouse.query("SELECT source, record_key, metadata FROM entries ORDER BY source, record_key")
    assert [k for s, k, _ in rows if s == "big_key"] == [str(BIG + 3), str(BIG + 4)]
    assert {json.loads(m)["points"] for _, _, m in rows} == {BIG + n for n in (1, 2, 3, 4)}
    payloads = warehouse.query("SELECT payload FROM raw_records WHERE source = 'doc'")
    assert sorted(json.loads(p)["points"] for (p,) in payloads) == [BIG + 3, BIG + 4]
