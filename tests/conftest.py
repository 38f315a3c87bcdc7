"""Fixtures shared by the test packages; helpers are in tests/helpers.py."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("HF_HUB_OFFLINE", "0")
# The model cache of the tests stays in the checkout (the models tests write are many and
# small), not in the user's ~/.cache.
os.environ.setdefault("GLOBMED_CACHE_DIR", str(Path(__file__).parents[1] / ".globmed" / "model-cache"))

from globmed_data.config import LoadedConfig, load_config
from globmed_data.warehouse import Warehouse
from tests.helpers import DEMO_CONFIG, free_port, wait_until_up


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[Warehouse]:
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        yield wh


@pytest.fixture
def demo() -> LoadedConfig:
    return load_config(DEMO_CONFIG)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """One Prefect test server for the whole session (it costs ~10 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def olah(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """olah (a Hub mirror server) serving every git repo under `root/datasets/` read-only."""
    work = tmp_path_factory.mktemp("olah")
    root = work / "mirrors"
    (root / "datasets").mkdir(parents=True)
    port = free_port()
    (work / "olah.toml").write_text(
        f'[basic]\nhost = "127.0.0.1"\nport = {port}\nmirror-netloc = "127.0.0.1:{port}"\n'
        f'mirror-lfs-netloc = "127.0.0.1:{port}"\nmirrors-path = ["{root}"]\n'
        f'repos-path = "{work / "cache"}"\n'
        "metadata-cache-ttl = 0\n[accessibility]\noffline = true\n"
    )
    exe = Path(sys.executable).with_name("olah-cli")
    proc = subprocess.Popen(
        [str(exe), "-c", str(work / "olah.toml")],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url + "/api/datasets/none/none", proc, "olah", timeout=60)
    yield url, root
    proc.terminate()
    proc.wait(timeout=10)
