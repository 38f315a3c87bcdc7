"""Operations against a real `prefect server start` (SQLite), as an operator runs them: the
deployments of infra/prefect.yaml deployed with `prefect deploy` and run by a process worker,
the event chain from a published version to training and benchmarking (tiny models), honest
run states, and one writer per warehouse. One server for the module (it starts in ~15 s)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import DEMO_CONFIG, DEMO_SOURCES, ROOT, free_port, wait_until_up

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("prefect")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api"
    wait_until_up(f"{api}/health", proc, "prefect server", timeout=120)
    try:
        yield {**env, "PREFECT_API_URL": api}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _post(env: dict[str, str], path: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        env["PREFECT_API_URL"] + path,
        data=json.dumps(body or {}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def _flow_runs(env: dict[str, str]) -> list[dict[str, Any]]:
    runs = _post(env, "/flow_runs/filter", {"limit": 200})
    flows = {f["id"]: f["name"] for f in _post(env, "/flows/filter", {"limit": 200})}
    return [{**r, "flow": flows.get(r["flow_id"])} for r in runs]


def _failures(env: dict[str, str], runs: list[dict[str, Any]]) -> str:
    """The error logs of every flow run that did not complete: what a failed chain shows."""
    lines = []
    for run in runs:
        if run["state_type"] == "COMPLETED":
            continue
        logs = _post(env, "/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}, "limit": 200})
        errors = [log["message"] for log in logs if log["level"] >= 40] or ["(no error logged)"]
        lines.append(f"{run['flow']} {run['state_type']}: " + "\n".join(errors)[-3000:])
    return "\n".join(lines)


def _demo_project(root: Path, name: str = "demo", repo: str = "globmed/demo") -> Path:
    """The demo config and data in a private folder (its warehouse and repositories there too)."""
    if not (root / "data" / "demo").exists():
        shutil.copytree(ROOT / "data" / "demo", root / "data" / "demo")
    (root / "configs").mkdir(exist_ok=True)
    spec = yaml.safe_load(DEMO_CONFIG.read_text())
    spec["name"], spec["export"]["repo_id"] = name, repo
    spec["bench"] = {"models": ["constant:A"], "limit": 5}
    config = root / "configs" / f"{name}.yaml"
    config.write_text(yaml.safe_dump(spec, sort_keys=False))
    return config


def _cli(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "globmed"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _deployments_for_test(project: Path, config: Path, tiny: Path) -> Path:
    """infra/prefect.yaml with the demo config and a tiny model in place of the shared data and
    SmolLM2: the same deployments, triggers and steps, minus the GPU one."""
    spec = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text())
    recipe = project / "tiny-recipe.yaml"
    recipe.write_text("epochs: 1\nbatch_size: 4\nlearning_rate: 0.005\ntasks: [mcqa]\nmax_examples: 16\n")
    keep = {"demo", "bench-on-published", "train-on-published", "bench-on-trained"}
    spec["deployments"] = [d for d in spec["deployments"] if d["name"] in keep]
    for d in spec["deployments"]:
        d["parameters"]["config_path"] = str(config)
        for trigger in d.get("triggers", []):
            match = trigger["match"]
            if match["prefect.resource.id"].startswith("globmed.dataset."):
                match["prefect.resource.id"] = "globmed.dataset.globmed/demo"
            else:
                match["globmed.dataset"] = "globmed/demo"
        if d["name"] == "train-on-published":
            d["parameters"].update(base=f"hf:{tiny}", recipe_path=str(recipe))
        if d["name"] == "bench-on-trained":
            d["parameters"]["bench_limit"] = 5
    spec["build"][0]["globmed_data.ops.deploy_check.check"]["prefect_file"] = str(project / "prefect.yaml")
    out = project / "prefect.yaml"
    out.write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


def _wait_for(env: dict[str, str], done, timeout: float, what: str) -> list[dict[str, Any]]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = _flow_runs(env)
        if done(runs):
            return runs
        time.sleep(2)
    states = [(r["flow"], r["name"], r["state_type"], r.get("state_name")) for r in _flow_runs(env)]
    pytest.fail(f"{what} within {timeout:.0f}s; flow runs: {states}")


def test_deploy_refuses_what_would_fail_then_the_chain_runs(server, tmp_path: Path) -> None:
    """`prefect deploy` without GLOBMED_HOME is refused with what to fix; deployed, a published
    demo version starts the benchmark and the training with its version, and the trained model's
    event starts its gain benchmark, all run by a process worker."""
    from tests.tiny_models import build_tiny_models

    project = tmp_path / "project"
    project.mkdir()
    config = _demo_project(project)
    tiny = (
        build_tiny_models(tmp_path / "tiny", ["What is the dose? A. 5 mg B. 10 mg C. 20 mg"] * 20) / "causal"
    )
    prefect_file = _deployments_for_test(project, config, tiny)
    env = {**server, "GLOBMED_LOCK_WAIT": "600"}
    subprocess.run([str(BIN / "prefect"), "work-pool", "create", "cpu-pool", "--type", "process"],
                   env=env, check=True, capture_output=True)  # fmt: skip
    deploy = [str(BIN / "prefect"), "--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file)]
    refused = subprocess.run(deploy, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "GLOBMED_HOME is not set" in refused.stdout + refused.stderr
    assert _post(env, "/deployments/filter") == []
    env["GLOBMED_HOME"] = str(ROOT)
    deployed = subprocess.run(deploy, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    names = sorted(d["name"] for d in _post(env, "/deployments/filter"))
    assert names == ["bench-on-published", "bench-on-trained", "demo", "train-on-published"]

    worker = subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", "cpu-pool", "--limit", "3"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        started = subprocess.run(
            [str(BIN / "prefect"), "deployment", "run", "globmed-pipeline/demo"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr

        def chain_done(runs: list[dict[str, Any]]) -> bool:
            by_flow = {r["flow"]: r for r in runs}
            return by_flow.get("globmed-model-gain", {}).get("state_type") in (
                "COMPLETED",
                "FAILED",
                "CRASHED",
            )

        runs = _wait_for(env, chain_done, 420, "the chain did not finish")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    top = {r["flow"]: r for r in runs if r.get("parent_task_run_id") is None}
    assert {f: r["state_type"] for f, r in top.items()} == {
        "globmed-pipeline": "COMPLETED",
        "globmed-bench": "COMPLETED",
        "globmed-train": "COMPLETED",
        "globmed-model-gain": "COMPLETED",
    }, _failures(env, list(top.values()))
    assert top["globmed-bench"]["parameters"]["dataset"] == "globmed/demo@v1.0.0"
    assert top["globmed-train"]["parameters"]["dataset"] == "globmed/demo@v1.0.0"
    assert top["globmed-train"]["parameters"]["bench"] is False
    assert top["globmed-model-gain"]["parameters"]["model_id"].startswith("causal-demo-v1.0.0-")
    keys = {a["key"] for a in _post(env, "/artifacts/filter", {"limit": 200})}
    assert {"globmed-demo-collect", "globmed-demo-funnel", "globmed-demo-card", "globmed-demo-bench"} <= keys
    # How long an event takes to start its runs (reported, not asserted: docs/operations.md).
    published = _post(env, "/events/filter", {"filter": {"event": {"name": ["globmed.dataset.published"]}}})
    occurred = datetime.fromisoformat(published["events"][0]["occurred"])
    for flow in ("globmed-bench", "globmed-train"):
        start = datetime.fromisoformat(top[flow]["start_time"])
        created = datetime.fromisoformat(top[flow]["created"])
        print(f"{flow}: run created {(created - occurred).total_seconds():.1f}s and started "
              f"{(start - occurred).total_seconds():.1f}s after the published event")  # fmt: skip


def test_a_failed_source_fails_the_run_on_the_server(server, tmp_path: Path) -> None:
    config = _demo_project(tmp_path)
    (tmp_path / "data" / "demo" / "fever_nli.parquet").unlink()
    result = _cli(server, "run", "-c", str(config), "-w", str(tmp_path / "w.duckdb"), cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    mine = [
        r for r in _flow_runs(server) if r["flow"] == "globmed-pipeline" and r["name"].startswith("demo ")
    ]
    failed = [r for r in mine if r["state_type"] == "FAILED"]
    assert failed and "source demo_fever: file not found" in failed[-1]["state"]["message"]
    tasks = _post(server, "/task_runs/filter", {"flow_runs": {"id": {"any_": [failed[-1]["id"]]}}})
    states = {t["name"]: t["state_type"] for t in tasks}
    assert states["collect demo_fever"] == "FAILED"
    assert all(states[f"collect {s}"] == "COMPLETED" for s in DEMO_SOURCES if s != "demo_fever")


def test_two_runs_on_one_warehouse_never_overlap(server, tmp_path: Path) -> None:
    """Two datasets share a warehouse: started together, one waits for the other (the server's
    concurrency limit, then the file lock), and both finish."""
    from flows.locking import limit_name

    wh = tmp_path / "shared.duckdb"
    a = _demo_project(tmp_path, "demo-a", "globmed/demo-a")
    b = _demo_project(tmp_path, "demo-b", "globmed/demo-b")
    runs = [
        subprocess.Popen(
            [str(BIN / "globmed"), "run", "-c", str(c), "-w", str(wh), "--wait", "300"],
            env=server,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for c in (a, b)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outputs
    from globmed_data.warehouse import Warehouse

    with Warehouse(wh, read_only=True) as w:
        spans = w.query("SELECT started_at, finished_at FROM runs ORDER BY started_at")
    assert len(spans) == 2 and spans[0][1] <= spans[1][0]  # the second started after the first ended
    limits = _post(server, "/v2/concurrency_limits/filter")
    assert limit_name(wh) in {limit["name"] for limit in limits}


HOLD_SLOT = """
import sys, time
from flows.locking import warehouse_slot
with warehouse_slot(sys.argv[1], what="doomed run", wait=0):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_killed_runs_slot_is_taken_over_at_once(server, tmp_path: Path) -> None:
    """SIGKILL leaves the run's Prefect lease for minutes; the next run on the warehouse releases
    it (its id is in the note the killed run left on the lock) instead of failing."""
    wh = tmp_path / "w.duckdb"
    doomed = subprocess.Popen([sys.executable, "-c", HOLD_SLOT, str(wh)], env=server, cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert doomed.stdout is not None and doomed.stdout.readline().strip() == "held"
    doomed.kill()
    doomed.wait()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", HOLD_SLOT.replace("time.sleep(120)", "pass"), str(wh)],
        env=server, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert time.monotonic() - started < 30  # the lease alone would have held it for 300 s
