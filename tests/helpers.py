"""Shared test helpers: paths, the shared-data marker, config writing, collecting, ports."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from globmed_data.config import LoadedConfig
from globmed_data.pipeline.executor import Executor
from globmed_data.sources.collect import SourceReport, collect_source
from globmed_data.warehouse import Warehouse

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GLOBMED_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"
DEMO_SOURCES = (
    "demo_bmi",
    "demo_dosing",
    "demo_dosing_mirror",
    "demo_facts",
    "demo_fever",
    "demo_heart_rate",
)

needs_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"shared datasets not found at {SHARED_DATA} (set GLOBMED_SHARED_DATA)"
)

# The slow tests that run on a local Ray cluster.
needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="Ray is not installed (extra `dist`)"
)


def write_config(folder: Path, sources: list[dict[str, Any]], **top: Any) -> Path:
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "sources": sources, **top}, allow_unicode=True))
    return path


def collect_all(
    wh: Warehouse, loaded: LoadedConfig, run_id: str | None = None, executor: Executor | None = None
) -> dict[str, SourceReport]:
    run_id = run_id or uuid.uuid4().hex
    wh.start_run(run_id, config_hash=loaded.config.config_hash(), config_path=str(loaded.path))
    return {
        s.name: collect_source(wh, loaded, s, run_id, executor=executor)
        for s in loaded.config.sources
        if s.enabled
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    """Poll `url` until the server answers (any HTTP status); fail the test if it dies or hangs."""
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"{what} did not start")
            time.sleep(0.3)
