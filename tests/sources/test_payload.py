"""The payload kept in raw_records for a record with no text of its own (a JSON document's item,
a Parquet row): its JSON, compact and in the record's key order, equal in value to the record as
read. The reader makes that text once (it sizes the record with it); NaN, which orjson would write
as null, and values JSON has no type for (a timestamp) come out as json.dumps(default=str) has them."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from globmed_data.config import load_config
from tests.helpers import collect_all, write_config

SPEC = {"preset": "problem_choices", "language": "en", "split": "train"}


def _item(n: int, **more: object) -> dict:
    return {"problem_id": f"q{n}", "problem_text": f"Quel nerf innerve le muscle n° {n} ?",
            "choices": ["Radial", "Ulnaire"], "answer": "A", **more}  # fmt: skip


def _payloads(warehouse, source: str) -> dict[str, str]:
    rows = warehouse.query("SELECT record_key, payload FROM raw_records WHERE source = ?", [source])
    return dict(rows)


def test_a_json_documents_payload_is_its_compact_json_in_key_order(tmp_path: Path, warehouse) -> None:
    items = [
        _item(1, zeta=1, alpha=[1.5, "é", {"b": True, "a": None}]),
        _item(2, score=float("nan"), peak=float("inf")),  # json writes NaN and Infinity; orjson null
        _item(3, note=None),
    ]
    (tmp_path / "doc.json").write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    loaded = load_config(write_config(tmp_path, [{"name": "doc", "paths": ["doc.json"], **SPEC}]))
    assert collect_all(warehouse, loaded)["doc"].added == 3

    payloads = _payloads(warehouse, "doc")
    assert payloads["q1"] == json.dumps(items[0], ensure_ascii=False, separators=(",", ":"))
    assert list(json.loads(payloads["q1"])) == list(items[0])  # the record's own key order
    nan = json.loads(payloads["q2"])
    assert math.isnan(nan["score"]) and nan["peak"] == math.inf
    assert json.loads(payloads["q3"]) == items[2]


def test_a_parquet_rows_payload_keeps_values_json_has_no_type_for(tmp_path: Path, warehouse) -> None:
    when = datetime(2024, 5, 1, 8, 30)
    rows = [_item(1, seen=when), _item(2, seen=when)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "rows.parquet")
    loaded = load_config(write_config(tmp_path, [{"name": "rows", "paths": ["rows.parquet"], **SPEC}]))
    assert collect_all(warehouse, loaded)["rows"].added == 2

    payload = json.loads(_payloads(warehouse, "rows")["q1"])
    assert payload["seen"] == str(when)  # what json.dumps(default=str) writes, not orjson's own form
    assert payload["choices"] == ["Radial", "Ulnaire"]
