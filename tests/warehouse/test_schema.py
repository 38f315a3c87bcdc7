import jsonschema
import pyarrow as pa

from globmed_data.schema import ENTRY_ARROW_SCHEMA, ENTRY_COLUMNS, entry_json_schema
from tests.helpers import collect_all

_JSON_TYPE = {pa.string(): "string", pa.list_(pa.string()): "array", pa.list_(pa.int32()): "array"}
_DUCKDB_TYPE = {
    pa.string(): ("VARCHAR", "JSON"),
    pa.list_(pa.string()): ("VARCHAR[]",),
    pa.list_(pa.int32()): ("INTEGER[]",),
}


def _types(prop: dict) -> set[str]:
    if "enum" in prop:
        return {"string"}
    t = prop["type"]
    return set(t) if isinstance(t, list) else {t}


def test_arrow_and_json_schema_agree() -> None:
    schema = entry_json_schema()
    assert list(schema["properties"]) == list(ENTRY_COLUMNS)
    required = set(schema["required"])
    for field in ENTRY_ARROW_SCHEMA:
        prop = schema["properties"][field.name]
        types = _types(prop)
        assert _JSON_TYPE[field.type] in types, field.name
        assert ("null" in types) == field.nullable, f"{field.name}: nullability differs"
        assert (field.name in required) == (not field.nullable), f"{field.name}: required differs"


def test_warehouse_entries_table_matches(warehouse) -> None:
    columns = dict(
        warehouse.query(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'entries'"
        )
    )
    for field in ENTRY_ARROW_SCHEMA:
        assert columns[field.name] in _DUCKDB_TYPE[field.type], field.name


def test_collected_entries_validate_against_the_json_schema(warehouse, demo) -> None:
    collect_all(warehouse, demo)
    validator = jsonschema.Draft202012Validator(entry_json_schema())
    entries = warehouse.query_dicts(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM entries")
    assert len(entries) == 315
    for entry in entries:
        errors = [e.message for e in validator.iter_errors(entry)]
        assert not errors, (entry["entry_id"], errors)


def test_json_schema_rejects_broken_entries() -> None:
    validator = jsonschema.Draft202012Validator(entry_json_schema())
    base = {c: None for c in ENTRY_COLUMNS} | {
        "entry_id": "0" * 32,
        "source": "s",
        "record_key": "k",
        "content_hash": "1" * 32,
        "task": "mcqa",
        "language": "en",
        "split": "train",
        "origin": "native",
        "question": "Q",
        "options": ["a", "b"],
        "answer_indices": [0],
    }
    assert validator.is_valid(base)
    assert not validator.is_valid(base | {"options": ["a"]})
    assert not validator.is_valid(base | {"task": "nli"})  # no premise / hypothesis / label
    assert not validator.is_valid(base | {"origin": "translated"})  # no parent
    assert not validator.is_valid(base | {"language": "English"})
