"""The ephemeral Prefect API server, started early and on a port held from the start.

Without PREFECT_API_URL, Prefect starts a server on first use: it imports its whole server app
in this process (~3 s of CPU) just to start one in another, polls /health counting only its own
sleeps towards the timeout, and picks a port that can be taken before uvicorn binds it ("address
already in use", then its whole timeout waited out). A CLI run paid ~9 s for it on two cores,
after its own imports.

Here `launch_api` starts uvicorn on Prefect's server app before Prefect is imported, on a socket
this process bound (uvicorn's `--fd`: no other process can take the port), so the server's
start-up overlaps the CLI's imports. `ensure_api` then asks Prefect's own settings whether an API
is configured (the environment, a profile, prefect.toml): if one is, the early server is stopped
unused; if not, it waits for the early server's /health against a wall-clock deadline and
relaunches it on the same socket if it exited, then points Prefect's settings at it.
"""

from __future__ import annotations

import atexit
import ctypes
import http.client
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# Prefect's own environment for its ephemeral server: no UI, ephemeral mode.
_SERVER_ENV = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
# Prefect's task-run recorder writes each state of each task run in a transaction of its own
# (batch size 1): 34-60 ms of the server's CPU a task run on two cores, 5.7-7.2 CPU-s of the 8x
# collect's ~50 (104 sources) in a slow hour. Batched, the same rows cost a half to a third
# (docs/scaling-history.md, "The Prefect server's share"). The last batch is written when the
# server stops. Only this CLI's own server, and a value set in the environment wins.
_SERVER_TUNING = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
}


class EphemeralServer:
    """uvicorn serving Prefect's API on a socket held by this process."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(128)
        self.port = int(self.socket.getsockname()[1])
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        # The environment as it is now: no PREFECT_API_URL pointing at itself.
        self.env = {**_SERVER_TUNING, **os.environ, **_SERVER_ENV}
        self.process = self._start()
        atexit.register(self.stop)

    def _start(self) -> subprocess.Popen[bytes]:
        fd = self.socket.fileno()
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(_prefect_parent()), "--factory",
             "prefect.server.api.server:create_app", "--fd", str(fd), "--log-level", "error",
             "--lifespan", "on"],
            env=self.env, pass_fds=(fd,), preexec_fn=_ends_with(os.getpid()),
        )  # fmt: skip

    def wait_until_up(self, timeout: float) -> None:
        """Until /health answers; a server that exits early is started again, ATTEMPTS times."""
        problems: list[str] = []
        for attempt in range(ATTEMPTS):
            if attempt:  # the one before exited or never answered
                self.process = self._start()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    problems.append(
                        f"the server on port {self.port} exited with code {self.process.returncode}"
                    )
                    break
                if _healthy(self.port):
                    return
                time.sleep(0.2)
            else:
                problems.append(f"no answer on port {self.port} within {timeout:.0f}s")
                self._end()
        self.stop()
        raise RuntimeError(
            "the ephemeral Prefect API server did not start: " + "; ".join(problems) + ". Start one with "
            "`prefect server start` and set PREFECT_API_URL (docs/operations.md), or raise "
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
        )

    def _end(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self) -> None:
        self._end()
        self.socket.close()


_early: EphemeralServer | None = None


def launch_api() -> None:
    """Start the ephemeral server now, so that it starts while this process imports Prefect and
    the flows. Only before Prefect is imported (its settings are asked later, in ensure_api) and
    when the environment names no API; otherwise ensure_api decides alone."""
    global _early
    if _early is None and "prefect" not in sys.modules and not os.environ.get("PREFECT_API_URL"):
        _early = EphemeralServer()


def ensure_api() -> str | None:
    """The API URL to use: the configured server's, else the ephemeral one's (started here if
    launch_api did not), once it answers. None: no API is configured and Prefect's ephemeral mode
    is off (Prefect then says what to set)."""
    global _early
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
    )

    configured = PREFECT_API_URL.value()
    if configured or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        if _early is not None and configured != _early.api_url:
            _early.stop()  # an API is configured elsewhere (a profile, prefect.toml): not needed
            _early = None
        return configured or None
    if _early is None:
        _early = EphemeralServer()
    _early.wait_until_up(float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()))
    _point_prefect_at(_early.api_url)
    return _early.api_url


def _point_prefect_at(api_url: str) -> None:
    """Prefect's settings name the ephemeral server from now on, in every thread and in processes
    started later: the environment, and Prefect's global settings read from it again (it read
    them when it was imported, before the server was known)."""
    from prefect.context import refresh_global_settings_context

    os.environ["PREFECT_API_URL"] = api_url
    refresh_global_settings_context()


def _ends_with(parent: int) -> Callable[[], None] | None:
    """What the server's process runs before uvicorn (Linux only): it is sent SIGTERM when the
    process that started it dies, however that dies (SIGKILL, the OOM killer). Without it, a CLI
    killed outright left its server running, an orphan holding ~150 MB; SIGTERM, not SIGKILL, so
    that it stops as on a normal exit and writes its last batch of task-run states. prctl is
    looked up here, in the parent: the child, forked beside other threads, only calls it. Linux
    sends the signal when the *thread* that started the server ends: the CLI's main thread."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def in_child() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took hold
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


def _healthy(port: int) -> bool:
    """Plain HTTP on loopback: an httpx client per poll built an SSL context each time (~25 ms of
    CPU, taken from the server starting beside it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/api/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _prefect_parent() -> Path:
    """The folder that holds the prefect package, found without importing it (uvicorn's app dir)."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or spec.origin is None:
        raise RuntimeError("Prefect is not installed: pip install -e .")
    return Path(spec.origin).parent.parent
