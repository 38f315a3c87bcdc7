"""The CLI's Prefect start: the ephemeral server launched early on a port held from the start, a
configured API preferred, a failed start retried, and a start that survives CPUs saturated by
other work (`make demo` on a fresh clone once failed there)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import DEMO_CONFIG

EARLY = """
import socket, sys
from globmed_data.clitools import prefect_environment, start_flow
from globmed_data.ops import prefect_start
prefect_environment()  # launches the server before Prefect is imported
port = prefect_start._early.port
try:  # the port is held from the start: nothing else can bind it
    socket.socket().bind(("127.0.0.1", port))
    print("bound")
except OSError:
    print("held")
from prefect import flow
from prefect.client.orchestration import get_client

@flow
def tiny():
    return 7

state = start_flow(tiny)
with get_client(sync_client=True) as client:
    runs = client.read_flow_runs()
print(state.result(), prefect_start._early.api_url, len(runs))
print("ephemeral module imported:", "prefect.server.api.server" in sys.modules)
"""

CONFIGURED = """
from globmed_data.ops import prefect_start
prefect_start.launch_api()
early = prefect_start._early
print(prefect_start.ensure_api(), early.process.poll() is not None, early.socket.fileno())
"""

EXITS_FIRST = """
import sys
from globmed_data.ops import prefect_start
real = prefect_start.EphemeralServer._start
calls = []
def flaky(self):
    calls.append(1)
    if len(calls) == 1:  # the first start dies at once (a port clash, a locked database...)
        import subprocess
        return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    return real(self)
prefect_start.EphemeralServer._start = flaky
api = prefect_start.ensure_api()
import httpx
print(api, httpx.get(api + "/health").status_code, len(calls))
"""

RECORDED = """
import sqlite3, sys
from globmed_data.clitools import prefect_environment, start_flow
from globmed_data.ops import prefect_start
prefect_environment()
from prefect import flow, task
from prefect.task_runners import ThreadPoolTaskRunner

@task(task_run_name="square {i}")
def square(i):
    return i * i

@flow
def squares():
    with ThreadPoolTaskRunner(max_workers=3) as runner:
        return sum(f.result() for f in [runner.submit(square, {"i": i}) for i in range(12)])

state = start_flow(squares)
env = prefect_start._early.env
prefect_start._early.stop()  # what the CLI's exit does
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT state_type, count(*) FROM task_run GROUP BY 1").fetchall()
print(state.result(), env["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"],
      env["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL"], rows)
"""

HOLDS = """
import time
from globmed_data.clitools import prefect_environment
from globmed_data.ops import prefect_start
prefect_environment()
print(prefect_start._early.process.pid, flush=True)
time.sleep(600)
"""

NEVER_STARTS = """
import subprocess, sys
from globmed_data.ops import prefect_start
calls = []
def dies(self):
    calls.append(1)
    return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
prefect_start.EphemeralServer._start = dies
try:
    prefect_start.ensure_api()
except RuntimeError as exc:
    early = prefect_start._early
    print(len(calls), prefect_start.ATTEMPTS, early.process.poll(), early.socket.fileno())
    print(exc)
"""

# Spins until the test process is gone (even if it is killed before it can stop them).
BURN = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    sum(range(100_000))\n"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    return {**env, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def _python(script: str, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()


def test_the_early_server_holds_its_port_and_serves_the_flow(tmp_path: Path) -> None:
    held, last, imported = _python(EARLY, _env(tmp_path))[-3:]
    assert held == "held"
    result, api, runs = last.split()
    assert result == "7" and api.startswith("http://127.0.0.1:") and int(runs) == 1
    # Prefect's own ephemeral start imports its server app here; the flow never fell back to it
    assert imported == "ephemeral module imported: False"


def test_a_configured_api_wins_and_the_early_server_is_stopped(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text('active = "remote"\n[profiles.remote]\nPREFECT_API_URL = "http://127.0.0.1:9/api"\n')
    env = {**_env(tmp_path), "PREFECT_PROFILES_PATH": str(profiles)}
    api, stopped, fd = _python(CONFIGURED, env)[-1].split()
    assert api == "http://127.0.0.1:9/api"  # what the profile names, not the early server
    assert stopped == "True" and fd == "-1"  # its process ended, its socket closed


def test_a_server_that_exits_early_is_started_again(tmp_path: Path) -> None:
    started = time.monotonic()
    api, status, starts = _python(EXITS_FIRST, _env(tmp_path))[-1].split()
    assert api.startswith("http://127.0.0.1:") and status == "200" and starts == "2"
    assert time.monotonic() - started < 90  # a retry, not a timeout waited out


def test_batched_task_run_states_are_all_written_by_the_time_the_server_stops(tmp_path: Path) -> None:
    """The ephemeral server writes task-run states in batches (_SERVER_TUNING); the last batch must
    be written when it stops. The periodic flush is set beyond the test's length so that only the
    stop can write it, and a value set in the environment wins over ours."""
    env = {**_env(tmp_path), "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "600"}
    done = subprocess.run(
        [sys.executable, "-c", RECORDED, str(tmp_path / "prefect" / "prefect.db")],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "506 100 600 [('COMPLETED', 12)]"


def test_a_killed_cli_takes_its_server_with_it(tmp_path: Path) -> None:
    """SIGKILL (or the OOM killer) runs no atexit handler: the server must not outlive the CLI
    (before, it ran on as an orphan)."""
    import psutil

    cli = subprocess.Popen(
        [sys.executable, "-c", HOLDS], env=_env(tmp_path), stdout=subprocess.PIPE, text=True
    )
    assert cli.stdout is not None
    server = psutil.Process(int(cli.stdout.readline()))
    cli.kill()
    cli.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if server.status() == psutil.STATUS_ZOMBIE:
                break  # ended; reaping it is its new parent's business
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("the server outlived the CLI that started it")


def test_a_server_that_never_starts_is_tried_attempts_times_then_named(tmp_path: Path) -> None:
    counts, message = _python(NEVER_STARTS, _env(tmp_path))[-2:]
    starts, attempts, code, fd = counts.split()
    assert starts == attempts == "3"  # no process left starting after the last attempt
    assert code == "3" and fd == "-1"  # the last one ended, the socket closed
    assert message.count("exited with code 3") == 3 and "prefect server start" in message


def test_the_server_is_launched_as_prefect_launches_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """prefect_start copies how Prefect starts its ephemeral server (the app, the environment):
    a Prefect upgrade that changes either fails here, not in a run."""
    from prefect.server.api import server as prefect_server
    from prefect.settings import get_current_settings

    from globmed_data.ops import prefect_start

    launched: list[tuple[list[str], dict[str, str]]] = []

    class Launched:
        returncode = 0

        def __init__(self, args: list[str], env: dict[str, str], **_: object) -> None:
            launched.append((list(args), dict(env)))

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(subprocess, "Popen", Launched)
    theirs = prefect_server.SubprocessASGIServer(port=1)
    try:
        theirs._run_uvicorn_command()
    finally:
        prefect_server.SubprocessASGIServer._instances.pop(1, None)
    ours = prefect_start.EphemeralServer()
    ours.stop()
    (their_args, their_env), (our_args, our_env) = launched

    def without(args: list[str], *options: str) -> list[str]:
        kept = list(args)
        for option in options:
            at = kept.index(option)
            del kept[at : at + 2]
        return kept

    assert without(our_args, "--fd") == without(their_args, "--host", "--port")
    # Prefect also hands its current settings down as variables; launched before Prefect is
    # imported, ours has none set at run time, and the server reads the same environment,
    # profile and prefect.toml itself.
    settings = get_current_settings().to_environment_variables(exclude_unset=True)
    added = {k: v for k, v in their_env.items() if os.environ.get(k) != v and k not in settings}
    ours_added = {k: v for k, v in our_env.items() if os.environ.get(k) != v}
    tuned = {k: ours_added.pop(k) for k in prefect_start._SERVER_TUNING if k in ours_added}
    assert added == ours_added
    assert added  # what makes it Prefect's ephemeral server (no UI, ephemeral mode)
    assert tuned == prefect_start._SERVER_TUNING  # and ours batches the task runs' states


def test_the_demo_runs_while_other_work_saturates_the_cpus(tmp_path: Path) -> None:
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(os.cpu_count() or 2)]
    try:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "globmed"), "run", "-c", str(DEMO_CONFIG),
             "-w", str(tmp_path / "busy.duckdb")],
            env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    finally:
        for b in burners:
            b.kill()
            b.wait()
    assert done.returncode == 0, done.stderr[-3000:]
    assert "export: v1.0.0 (new version)" in done.stdout
