"""Reading and writing batches: one streamed query, and upserts in a background thread."""

from __future__ import annotations

import pyarrow as pa
import pytest

from tests.helpers import collect_all


def test_stream_arrow_reads_every_row_once_while_writing(warehouse, demo) -> None:
    collect_all(warehouse, demo)
    ids = []
    for table in warehouse.stream_arrow(
        "SELECT entry_id FROM entries WHERE status = ? ORDER BY entry_id", ["active"], batch_size=100
    ):
        assert table.num_rows <= 2048  # bounded batches (DuckDB rounds up to its vector size)
        ids += table.column("entry_id").to_pylist()
        warehouse.query("UPDATE entries SET updated_run_id = 'touched' WHERE entry_id = ?", [ids[-1]])
    assert ids == sorted(set(ids)) and len(ids) == 315


def test_background_upserts_write_in_order_and_report_a_failed_write(warehouse) -> None:
    rows = [pa.table({"key": ["a"], "value": [k]}) for k in range(5)]
    warehouse.con.execute("CREATE TABLE kv (key VARCHAR PRIMARY KEY, value INTEGER)")
    with warehouse.background_upserts(pending=2) as upsert:
        for table in rows:
            upsert("kv", table)
    assert warehouse.query("SELECT key, value FROM kv") == [("a", 4)]  # the last write wins
    with pytest.raises(Exception, match="no_such_table"), warehouse.background_upserts() as upsert:
        upsert("no_such_table", rows[0])


def test_background_inserts_of_new_rows_refuse_a_key_already_there(warehouse) -> None:
    warehouse.con.execute("CREATE TABLE kv (key VARCHAR PRIMARY KEY, value INTEGER)")
    with warehouse.background_upserts(new_rows=True) as insert:
        insert("kv", pa.table({"key": ["a", "b"], "value": [1, 2]}))
    assert warehouse.query("SELECT key, value FROM kv ORDER BY key") == [("a", 1), ("b", 2)]
    duplicate = pa.table({"key": ["b"], "value": [3]})
    with pytest.raises(Exception, match=r"(?i)constraint"), warehouse.background_upserts(new_rows=True) as w:
        w("kv", duplicate)
    assert warehouse.query("SELECT value FROM kv WHERE key = 'b'") == [(2,)]  # nothing replaced
