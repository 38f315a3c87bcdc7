"""Reading and writing batches: one streamed query, upserts in a background thread, bulk loads,
the memory cap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from globmed_data.warehouse import Warehouse, WarehouseError
from tests.helpers import collect_all

ROOT = Path(__file__).resolve().parents[2]


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


def test_background_writes_with_a_stored_mask_replace_those_rows_and_insert_the_others(warehouse) -> None:
    warehouse.con.execute("CREATE TABLE kv (key VARCHAR PRIMARY KEY, value INTEGER)")
    warehouse.con.execute("INSERT INTO kv VALUES ('a', 1), ('b', 2)")
    with warehouse.background_upserts() as write:
        write("kv", pa.table({"key": ["a", "c"], "value": [10, 30]}), stored=pa.array([True, False]))
        write("kv", pa.table({"key": ["d"], "value": [40]}), stored=pa.array([False]))
        write("kv", pa.table({"key": ["b"], "value": [20]}), stored=pa.array([True]))
    rows = warehouse.query("SELECT key, value FROM kv ORDER BY key")
    assert rows == [("a", 10), ("b", 20), ("c", 30), ("d", 40)]
    # A row said to be new is a plain insert: its key already there fails the block.
    with pytest.raises(Exception, match=r"(?i)constraint"), warehouse.background_upserts() as write:
        write("kv", pa.table({"key": ["a", "e"], "value": [11, 50]}), stored=pa.array([False, False]))
    assert warehouse.query("SELECT value FROM kv WHERE key = 'a'") == [(10,)]


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


def test_bulk_load_checkpoints_once_at_its_end(tmp_path) -> None:
    wal = tmp_path / "wh.duckdb.wal"
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        wh.con.execute("CREATE TABLE kv (key VARCHAR PRIMARY KEY, value VARCHAR)")
        wh.query("CHECKPOINT")
        wh.query("SET threads = 3")  # whatever it was, it is again after the block
        with wh.bulk_load():
            assert wh.query("SELECT current_setting('checkpoint_threshold')") == [("953.6 MiB",)]
            assert wh.query("SELECT current_setting('threads')") == [(1,)]  # the map has the cores
            for k in range(3):
                rows = pa.table({"key": [f"{k}-{i}" for i in range(1000)], "value": ["x" * 100] * 1000})
                wh.insert("kv", rows)
            assert wal.exists() and wal.stat().st_size > 300_000  # committed, in the log, not merged
        assert wh.query("SELECT current_setting('checkpoint_threshold')") == [("244.1 MiB",)]
        assert wh.query("SELECT current_setting('threads')") == [(3,)]
        assert not wal.exists() or wal.stat().st_size == 0  # merged into the file at the block's end
        assert wh.query("SELECT count(*) FROM kv") == [(3000,)]


def test_an_error_inside_bulk_load_is_the_one_raised(tmp_path) -> None:
    """No checkpoint after a failed block: on a full disk it would fail too, and DuckDB's fatal
    error would hide the block's own."""
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        wh.con.execute("CREATE TABLE kv (key VARCHAR PRIMARY KEY, value INTEGER)")
        wh.query("CHECKPOINT")
        threads = wh.query("SELECT current_setting('threads')")
        with pytest.raises(ValueError, match="the source's own error"), wh.bulk_load():
            wh.insert("kv", pa.table({"key": ["a"], "value": [1]}))
            raise ValueError("the source's own error")
        assert wh.query("SELECT current_setting('checkpoint_threshold')") == [("244.1 MiB",)]
        assert wh.query("SELECT current_setting('threads')") == threads
        assert (tmp_path / "wh.duckdb.wal").stat().st_size > 0  # committed, left in the log
        assert wh.query("SELECT value FROM kv") == [(1,)]


def test_a_kill_inside_bulk_load_keeps_every_committed_batch(tmp_path) -> None:
    """Killed before the block's checkpoint: the next open replays DuckDB's log."""
    script = f"""
import os, pyarrow as pa
from globmed_data.warehouse import Warehouse
wh = Warehouse({str(tmp_path / "wh.duckdb")!r})
wh.con.execute("CREATE TABLE kv (key VARCHAR PRIMARY KEY, value INTEGER)")
with wh.bulk_load():
    for k in range(3):
        wh.insert("kv", pa.table({{"key": [f"{{k}}-{{i}}" for i in range(1000)], "value": [k] * 1000}}))
    os._exit(9)  # no checkpoint, no close
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        assert wh.query("SELECT value, count(*) FROM kv GROUP BY 1 ORDER BY 1") == [
            (0, 1000),
            (1, 1000),
            (2, 1000),
        ]
