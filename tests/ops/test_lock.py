"""One writer per warehouse: a second process waits (bounded) or fails at once naming the first;
readers wait the same bound, then say why they cannot read meanwhile; the lock dies with its holder."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from globmed_data.cli import app
from globmed_data.ops.lock import WarehouseBusy, holder_of, writer_lock
from globmed_data.warehouse import Warehouse, WarehouseError
from tests.helpers import DEMO_CONFIG

HOLD = """
import sys, time
from globmed_data.warehouse import Warehouse
with Warehouse(sys.argv[1], what="run nightly 02:00") as wh:
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    proc = _holder(wh, 30)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseBusy) as busy:
            Warehouse(wh)
        assert time.monotonic() - started < 2
        text = str(busy.value)
        assert f"being written by run nightly 02:00 (pid {proc.pid} on " in text and "--wait" in text
        assert holder_of(wh)["pid"] == proc.pid
        with pytest.raises(WarehouseError, match="being written by run nightly 02:00"):
            Warehouse(wh, read_only=True)  # DuckDB would say "could not set lock"
    finally:
        proc.kill()
        proc.wait()
    assert holder_of(wh) is None  # killed: the kernel let go, nothing is stale
    with Warehouse(wh) as w:
        assert w.schema_version() > 0


def test_a_reader_waits_the_same_bound_for_the_writer_to_let_go(tmp_path: Path, monkeypatch) -> None:
    """Two flows started by one event: the train run reads while the bench run writes. With a
    bound (the deployments set GLOBMED_LOCK_WAIT) the reader waits instead of failing."""
    wh = tmp_path / "w.duckdb"
    Warehouse(wh).close()
    proc = _holder(wh, 1.5)
    started = time.monotonic()
    monkeypatch.setenv("GLOBMED_LOCK_WAIT", "30")
    with Warehouse(wh, read_only=True) as w:  # the holder lets go after 1.5 s
        waited = time.monotonic() - started
        assert w.schema_version() > 0
    proc.wait()
    assert 0.5 < waited < 20
    monkeypatch.delenv("GLOBMED_LOCK_WAIT")
    proc = _holder(wh, 30)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseError, match="being written by run nightly 02:00"):
            Warehouse(wh, read_only=True)  # no bound: at once, as before
        assert time.monotonic() - started < 2
        with pytest.raises(WarehouseError, match="being written by run nightly 02:00"):
            Warehouse(wh, read_only=True, lock_wait=1.2)
        assert 1.1 < time.monotonic() - started < 6
    finally:
        proc.kill()
        proc.wait()


def test_second_writer_waits_up_to_its_bound(tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    proc = _holder(wh, 1.5)
    started = time.monotonic()
    with Warehouse(wh, lock_wait=30) as w:  # the holder lets go after 1.5 s
        waited = time.monotonic() - started
        assert w.schema_version() > 0
    proc.wait()
    assert 0.5 < waited < 20
    proc = _holder(wh, 30)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseBusy, match="after waiting 1s"):
            Warehouse(wh, lock_wait=1.2)
        assert 1.1 < time.monotonic() - started < 5
    finally:
        proc.kill()
        proc.wait()


def test_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    with writer_lock(wh, what="flow"), Warehouse(wh) as a:
        with Warehouse(wh) as b:  # a stage's own open inside the flow's hold
            assert b.schema_version() == a.schema_version()
        assert holder_of(wh) is None  # this process holds it: not "busy" to itself
    assert not (tmp_path / "w.duckdb.lock").read_text()  # the holder's note is cleared on release


def test_cli_says_who_holds_the_warehouse(tmp_path: Path) -> None:
    wh = tmp_path / "w.duckdb"
    Warehouse(wh).close()
    proc = _holder(wh, 30)
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["run", "-c", str(DEMO_CONFIG), "-w", str(wh)])
        assert result.exit_code == 2
        said = " ".join(result.output.split())
        assert said.startswith("error: the warehouse") and "run nightly 02:00" in said
        assert "Traceback" not in result.output and said.count("error:") == 1  # one message
        status = runner.invoke(app, ["status", "-w", str(wh)])
        assert status.exit_code == 2 and "being written by run nightly 02:00" in " ".join(
            status.output.split()
        )
    finally:
        proc.kill()
        proc.wait()
