"""Starting Prefect's ephemeral API server so that it survives a busy machine.

Prefect starts it on first use: it picks a port, starts uvicorn, and polls /health, counting
only its own sleeps towards the timeout. On a busy two-core machine that failed two ways: the
port was taken between the check and the bind ("address already in use", after which Prefect
waits out its whole timeout), and the real wait exceeded what the timeout meant. Here the same
server object Prefect's client uses is started with a port the kernel just handed out, a wall-
clock deadline, and a fresh port on any early exit; once it runs, Prefect reuses it.
"""

from __future__ import annotations

import atexit
import socket
import time

ATTEMPTS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timeout() -> float:
    """Prefect's own setting (the CLI raises its default to 120 s: clitools.prefect_environment)."""
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    return float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())


def ensure_api() -> str | None:
    """The API URL in use: the configured server's, or a started ephemeral one's."""
    import httpx
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return PREFECT_API_URL.value()
    problems: list[str] = []
    for _ in range(ATTEMPTS):
        server = SubprocessASGIServer()  # the instance Prefect's client will use
        if server.running:
            return server.api_url
        server.port = _free_port()
        process = server._run_uvicorn_command()
        deadline = time.monotonic() + _timeout()
        while time.monotonic() < deadline:
            if process.poll() is not None:
                problems.append(f"the server on port {server.port} exited with code {process.returncode}")
                break
            try:
                if httpx.get(f"{server.api_url}/health", timeout=5).status_code == 200:
                    server.server_process, server.running = process, True
                    atexit.register(server.stop)
                    return server.api_url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            problems.append(f"no answer on port {server.port} within {_timeout():.0f}s")
            process.terminate()
            process.wait(timeout=10)
    raise RuntimeError(
        "the ephemeral Prefect API server did not start: " + "; ".join(problems) + ". Start one with "
        "`prefect server start` and set PREFECT_API_URL (docs/operations.md), or raise "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    )
