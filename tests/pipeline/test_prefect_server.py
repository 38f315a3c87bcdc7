"""The pipeline against a real `prefect server start` (SQLite). Slow: run with `make test-slow`."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import DEMO_CONFIG, DEMO_SOURCES, ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str) -> list[dict]:
    req = urllib.request.Request(url, data=b"{}", headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


def test_run_against_a_real_server(tmp_path: Path) -> None:
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    bin_dir = Path(sys.executable).parent
    server = subprocess.Popen(
        [str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{api}/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("prefect server did not start within 90 s")
        run = subprocess.run(
            [
                str(bin_dir / "globmed"),
                "run",
                "--config",
                str(DEMO_CONFIG),
                "--warehouse",
                str(tmp_path / "wh.duckdb"),
            ],
            env={**env, "PREFECT_API_URL": api},
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=180,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        flow_runs = _post(f"{api}/flow_runs/filter")
        assert [r["state_type"] for r in flow_runs] == ["COMPLETED"]
        tasks = sorted(r["name"] for r in _post(f"{api}/task_runs/filter"))
        stages = ["langid", "quality", "dedup", "export"]  # one task per pass of the registry
        assert tasks == sorted([*(f"collect {s}" for s in DEMO_SOURCES), *stages])
        keys = {a["key"] for a in _post(f"{api}/artifacts/filter")}
        assert {"globmed-collect", "globmed-entry-counts"} <= keys
    finally:
        server.terminate()
        server.wait(timeout=30)
