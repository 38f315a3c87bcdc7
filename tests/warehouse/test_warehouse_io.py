"""Reading and writing batches: one streamed query, upserts in a background thread, the memory cap."""

from __future__ import annotations

import pyarrow as pa
import pytest

from globmed_data.warehouse import Warehouse, WarehouseError
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
    # One block, both kinds of write, in order: an upsert replaces, an insert of a new key adds,
    # an insert of a key already there fails the block.
    with pytest.raises(Exception, match=r"(?i)constraint"), warehouse.background_upserts() as write:
        write("kv", pa.table({"key": ["a"], "value": [10]}))
        write("kv", pa.table({"key": ["c"], "value": [30]}), new_rows=True)
        write("kv", pa.table({"key": ["c"], "value": [31]}), new_rows=True)
    assert warehouse.query("SELECT key, value FROM kv ORDER BY key") == [("a", 10), ("b", 2), ("c", 30)]


def test_memory_cap_from_the_environment_is_applied_and_a_bad_one_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GLOBMED_WAREHOUSE_MEMORY", "1GB")
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        assert wh.query("SELECT current_setting('memory_limit')") == [("953.6 MiB",)]
    monkeypatch.setenv("GLOBMED_WAREHOUSE_MEMORY", "a lot")
    with pytest.raises(WarehouseError, match=r"GLOBMED_WAREHOUSE_MEMORY='a lot' .* such as 2GB or 40%"):
        Warehouse(tmp_path / "wh.duckdb")
    monkeypatch.delenv("GLOBMED_WAREHOUSE_MEMORY")
    with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:  # the refusal left no lock behind
        assert wh.query("SELECT count(*) FROM entries") == [(0,)]


def test_a_read_only_warehouse_answers_arrow_queries_right_after_opening(tmp_path) -> None:
    """Opening checks the schema and views; a result left half-read there made DuckDB refuse
    the first Arrow query of a read-only reader."""
    Warehouse(tmp_path / "wh.duckdb").close()
    with Warehouse(tmp_path / "wh.duckdb", read_only=True) as wh:
        assert wh.arrow("SELECT count(*) AS n FROM entries").to_pylist() == [{"n": 0}]
