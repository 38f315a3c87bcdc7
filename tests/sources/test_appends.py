"""The collect's new rows gathered across sources and written in whole row groups (appends.py):
every row written once and in order, a file marked done only with all its rows, a source complete
only after its rows are in, and the warehouse the same as when each batch is its own transaction,
after a kill too."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pyarrow as pa
import pytest

from globmed_data import appends as appends_module
from globmed_data import faults
from globmed_data.appends import RowGroupAppends
from globmed_data.pipeline.stage import Context
from globmed_data.sources.stage import CollectStage
from globmed_data.warehouse import Warehouse
from tests.helpers import collect_all

SCHEMA = pa.schema([("source", pa.string()), ("n", pa.int64())])
SCHEMAS = (SCHEMA, SCHEMA, SCHEMA)


def _rows(source: str, first: int, count: int) -> pa.Table:
    return pa.table({"source": [source] * count, "n": list(range(first, first + count))}, schema=SCHEMA)


def test_rows_are_written_in_whole_groups_and_files_and_completions_follow_their_rows() -> None:
    writes: list[dict[str, Any]] = []
    events: list[str] = []

    def write(run_id: str, raws: pa.Table, entries: pa.Table, quarantine: pa.Table, done) -> None:
        writes.append({"raws": raws["n"].to_pylist(), "entries": entries["n"].to_pylist(),
                       "quarantine": quarantine.num_rows, "files": [f for _, f in done]})  # fmt: skip
        events.append(f"write {len(writes)}")

    appends = RowGroupAppends(write, SCHEMAS, unit=4)
    # Source a: 3 raws, 2 entries (one record quarantined with its key), file a1 done.
    appends.add("run", _rows("a", 0, 3), _rows("a", 0, 2), _rows("a", 0, 1), [("a", "a1")])
    appends.after(lambda: events.append("a complete"))
    assert writes == [] and events == []  # less than a row group waits
    # Source b: 3 raws and entries: 6 raws, 5 entries wait; one group of each is written.
    appends.add("run", _rows("b", 3, 3), _rows("b", 2, 3), _rows("b", 0, 0), [("b", "b1")])
    appends.wait()  # the writer thread's transaction
    assert writes == [{"raws": [0, 1, 2, 3], "entries": [0, 1, 2, 3], "quarantine": 1, "files": ["a1"]}]
    assert events == ["write 1", "a complete"]  # a's rows, quarantine row and file are in
    appends.after(lambda: events.append("b complete"))
    assert events[-1] == "a complete"  # b's last rows still wait
    appends.write_all()
    assert writes[1] == {"raws": [4, 5], "entries": [4], "quarantine": 0, "files": ["b1"]}
    assert events[-2:] == ["write 2", "b complete"]
    every_raw = [n for w in writes for n in w["raws"]]
    assert every_raw == list(range(6))  # each row once, in order
    appends.write_all()
    assert len(writes) == 2  # nothing waits: no empty transaction


def test_a_completion_waits_for_its_quarantine_rows_and_files_even_when_its_rows_are_in() -> None:
    writes: list[int] = []
    appends = RowGroupAppends(lambda *args: writes.append(args[3].num_rows), SCHEMAS, unit=2)
    appends.add("run", _rows("a", 0, 2), _rows("a", 0, 2), _rows("a", 0, 0), [])
    appends.wait()
    assert writes == [0]
    appends.add("run", _rows("a", 0, 0), _rows("a", 0, 0), _rows("a", 0, 3), [("a", "a1")])
    done: list[str] = []
    appends.after(lambda: done.append("a"))
    assert done == []  # its rows are in, its quarantine rows and file are not
    appends.write_all()
    assert writes == [0, 3] and done == ["a"]


def test_sources_go_on_adding_while_a_group_is_written_and_a_failed_write_stops_them_all() -> None:
    release, started = threading.Event(), threading.Event()
    writes: list[list[int]] = []

    def write(run_id: str, raws: pa.Table, *rest: Any) -> None:
        started.set()
        assert release.wait(10)
        if raws.num_rows and raws["n"][0].as_py() == 4:
            raise OSError("disk full")
        writes.append(raws["n"].to_pylist())

    appends = RowGroupAppends(write, SCHEMAS, unit=2)
    done: list[str] = []
    appends.add("run", _rows("a", 0, 2), _rows("a", 0, 0), _rows("a", 0, 0), [("a", "a1")])
    appends.after(lambda: done.append("a"))
    assert started.wait(10)
    appends.add("run", _rows("b", 2, 1), _rows("b", 0, 0), _rows("b", 0, 0), [])  # not blocked
    assert writes == [] and done == []  # a's group is still being written
    release.set()
    appends.add("run", _rows("b", 3, 1), _rows("b", 0, 0), _rows("b", 0, 0), [])  # waits for a's write
    assert writes == [[0, 1]] and done == ["a"]
    appends.after(lambda: done.append("b"))  # b's group [2, 3] is being written
    appends.add("run", _rows("c", 4, 2), _rows("c", 0, 0), _rows("c", 0, 0), [])  # then c's fails
    appends.after(lambda: done.append("c"))
    with pytest.raises(OSError, match="disk full"):
        appends.wait()
    with pytest.raises(OSError, match="disk full"):  # every later call: nothing is written past it
        appends.add("run", _rows("d", 6, 2), _rows("d", 0, 0), _rows("d", 0, 0), [])
    with pytest.raises(OSError, match="disk full"):
        appends.write_all()
    appends.close()
    assert writes == [[0, 1], [2, 3]] and done == ["a", "b"]  # c's completion never ran


def test_rows_of_two_runs_are_refused() -> None:
    appends = RowGroupAppends(lambda *args: None, SCHEMAS, unit=100)
    appends.add("run 1", _rows("a", 0, 1), _rows("a", 0, 1), _rows("a", 0, 0), [])
    with pytest.raises(ValueError, match="run 2"):
        appends.add("run 2", _rows("a", 0, 1), _rows("a", 0, 1), _rows("a", 0, 0), [])


TABLES = {
    "entries": "SELECT * EXCLUDE (created_run_id, updated_run_id) FROM entries",
    "raw_records": "SELECT * EXCLUDE (first_run_id, updated_run_id, last_seen_run_id) FROM raw_records",
    "quarantine": "SELECT * EXCLUDE (run_id, created_at) FROM quarantine",
    "source_files": "SELECT * EXCLUDE (run_id) FROM source_files",
    "source_state": "SELECT source, kind, spec_hash, fingerprint, status FROM source_state",
    "run_stages": "SELECT stage, source, status FROM run_stages",
}


def _tables(wh: Warehouse) -> dict[str, list[tuple]]:
    return {name: sorted(wh.query(sql), key=repr) for name, sql in TABLES.items()}


def _collect_stage(wh: Warehouse, loaded, run_id: str | None = None) -> None:
    run_id = run_id or uuid.uuid4().hex
    wh.start_run(run_id, config_hash=loaded.config.config_hash(), config_path=str(loaded.path))
    CollectStage().run(Context(wh, loaded, run_id))


def test_the_collect_through_appends_stores_what_batch_transactions_store(
    tmp_path, demo, monkeypatch
) -> None:
    with Warehouse(tmp_path / "batches.duckdb") as wh:
        collect_all(wh, demo)  # no bulk load: each batch is its own transaction
        expected = _tables(wh)
    monkeypatch.setattr(appends_module, "ROW_GROUP_ROWS", 50)  # the demo's 288 entries: several groups
    with Warehouse(tmp_path / "appends.duckdb") as wh:
        _collect_stage(wh, demo)
        assert _tables(wh) == expected
        assert len(expected["entries"]) > 100


@pytest.mark.parametrize("write", [1, 2, 3])
def test_a_kill_between_appends_leaves_no_source_complete_without_its_rows(
    tmp_path, demo, monkeypatch, write
) -> None:
    with Warehouse(tmp_path / "whole.duckdb") as wh:
        _collect_stage(wh, demo)
        expected = _tables(wh)
        entries_of = dict(wh.query("SELECT source, count(*) FROM entries GROUP BY 1"))
    monkeypatch.setattr(appends_module, "ROW_GROUP_ROWS", 50)
    monkeypatch.setenv(faults.ENV, f"collect.appended:{write}:raise")
    faults.reset()
    with Warehouse(tmp_path / "killed.duckdb") as wh:
        with pytest.raises(faults.InjectedFault):
            _collect_stage(wh, demo)
        stored = dict(wh.query("SELECT source, count(*) FROM entries GROUP BY 1"))
        complete = [s for (s,) in wh.query("SELECT source FROM source_state WHERE status = 'complete'")]
        assert 0 < sum(stored.values()) < sum(entries_of.values())  # one group in, the rest dropped
        assert all(stored.get(s) == entries_of[s] for s in complete)
        monkeypatch.delenv(faults.ENV)
        faults.reset()
        _collect_stage(wh, demo)  # the next run finishes the job
        assert _tables(wh) == {**expected, "run_stages": _tables(wh)["run_stages"]}
