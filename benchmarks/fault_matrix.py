"""Fault-injection matrix: kill a real `globmed run` (SIGKILL of its process group) at named
points inside every stage, re-run it, and compare with a run that was never interrupted.

For each point (globmed_data/faults.py):
1. `globmed run` with GLOBMED_FAULT=<point>: the process group is killed there;
2. `globmed export` alone, as an operator retrying a push would: it must refuse (exit 2) while a
   stage has pending work, and publish nothing undecided;
3. a plain `globmed run`: it must finish the job;
then entries, distinct ids, quarantine rows, decisions per stage, duplicates, contamination,
curated count, the versions with their fingerprints and the git tags must equal the reference
run's, and the killed run must be `crashed` in the warehouse and Crashed in Prefect.

Runs share one `prefect server start` (SQLite, loopback) so the Prefect states can be read.
With --translate, a translation job is added whose backend is a test double of an
OpenAI-compatible server (no model can run here): it answers every segment with its input
reversed word by word, deterministically.

    python benchmarks/fault_matrix.py --config configs/demo.yaml [--translate] [--points a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from globmed_data.config import load_config  # noqa: E402
from globmed_data.warehouse import Warehouse  # noqa: E402

POINTS = [
    "collect.batch:1",
    "collect.batch:3",
    "collect.appended:1",
    "langid.dropped",
    "langid.batch",
    "quality.batch",
    "translate.planned",
    "translate.chunk",
    "dedup.signed:1",
    "dedup.signed:2",
    "dedup.decided",
    "export.snapshot",
    "export.written",
    "export.recorded",
    "export.git_added",
    "export.git_committed",
    "export.tagged",
    "export.published",
]


class _EchoTranslator(BaseHTTPRequestHandler):
    """Test double of an OpenAI-compatible chat endpoint: the user text, words reversed."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][-1]["content"]
        reply = {"choices": [{"message": {"content": " ".join(reversed(text.split()))}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def private_config(config: Path, folder: Path, translate_url: str | None) -> Path:
    """The config with absolute source paths, and exports and repositories under `folder`."""
    loaded = load_config(config)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    for spec in data["sources"] + data.get("dedup", {}).get("benchmarks", []):
        if "paths" in spec:
            spec["paths"] = [str(loaded.resolve(p)) for p in spec["paths"]]
        if spec.get("local_path"):
            spec["local_path"] = str(loaded.resolve(spec["local_path"]))
    if data.get("langid", {}).get("model"):
        data["langid"]["model"] = str(loaded.resolve(data["langid"]["model"]))
    data.pop("warehouse", None)
    export = data.setdefault("export", {})
    export["dir"] = str(folder / "exports")
    export["local"] = {**export.get("local", {}), "root": str(folder / "repos")}
    if translate_url:
        data["translate"] = {
            "enabled": True,
            "backends": {"echo": {"kind": "openai", "base_url": translate_url, "model": "echo-double"}},
            "jobs": [{"name": "low-resource", "targets": ["sw"], "from_languages": ["en"], "backend": "echo",
                      "max_per_target": 600}],
        }  # fmt: skip
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def globmed(args: list[str], env: dict[str, str], timeout: float = 1800) -> tuple[int, str]:
    """Run the CLI in a process group of its own (a fault kills the group, not us)."""
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("globmed")), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
    return proc.returncode, output


def summary(wh_path: Path, repos: Path) -> dict[str, Any]:
    """What a run decided and published, to compare runs by."""
    with Warehouse(wh_path, read_only=True) as wh:

        def one(sql: str) -> Any:
            return wh.query(sql)[0][0]

        def grouped(sql: str) -> dict[str, int]:
            return {str(k): int(v) for k, v in wh.query(sql)}

        result = {
            "entries": one("SELECT count(*) FROM entries WHERE status = 'active'"),
            "distinct_ids": one("SELECT count(DISTINCT entry_id) FROM entries"),
            "quarantine": one("SELECT count(*) FROM quarantine"),
            "langid": grouped("SELECT decision, count(*) FROM v_langid GROUP BY 1 ORDER BY 1"),
            "quality": grouped("SELECT passed, count(*) FROM v_quality GROUP BY 1 ORDER BY 1"),
            "translations": grouped("SELECT status, count(*) FROM translations GROUP BY 1 ORDER BY 1"),
            "dedup": grouped("SELECT decision, count(*) FROM dedup_members GROUP BY 1 ORDER BY 1"),
            "contamination": one("SELECT count(*) FROM contamination"),
            "curated": one("SELECT count(*) FROM v_curated_entries"),
            "versions": [
                list(r)
                for r in wh.query(
                    "SELECT version, status, fingerprint FROM dataset_versions ORDER BY created_at"
                )
            ],
        }
    tags: list[str] = []
    for repo in repos.glob("datasets/*/*"):
        done = subprocess.run(["git", "tag"], cwd=repo, capture_output=True, text=True)
        tags += done.stdout.split()
    result["tags"] = sorted(tags)
    return result


def flow_run_states(api_url: str, flow_run_ids: list[str]) -> dict[str, str]:
    request = urllib.request.Request(
        f"{api_url}/flow_runs/filter",
        data=json.dumps({"flow_runs": {"id": {"any_": flow_run_ids}}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return {r["id"]: r["state_type"] for r in json.load(response)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "demo.yaml")
    parser.add_argument("--points", default=",".join(POINTS), help="comma-separated fault points")
    parser.add_argument(
        "--translate", action="store_true", help="add a translation job (test-double backend)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rows = run_matrix(args.config, args.points.split(","), args.translate)
    print(f"\n{'point':<24} {'killed':>6} {'export alone':>12} {'re-run':>6} {'crashed':>8}  equal")
    for r in rows:
        print(
            f"{r['point']:<24} {'yes' if r['killed'] else 'no':>6} {r['export_exit']:>12} "
            f"{r['rerun_exit']:>6} {r['prefect_state'] or '-':>8}  "
            + ("EQUAL" if r["equal"] else f"DIFFERENT: {r['diff']}")
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print(
        f"\n{sum(r['equal'] for r in rows)} of {len(rows)} kill points: re-run equal to the uninterrupted run"
    )


def run_matrix(config: Path, points: list[str], translate: bool) -> list[dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="globmed-faults-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "GLOBMED_FAULT"}
    env |= {
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    echo = ThreadingHTTPServer(("127.0.0.1", 0), _EchoTranslator) if translate else None
    if echo is not None:
        threading.Thread(target=echo.serve_forever, daemon=True).start()
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/health")
        url = f"http://127.0.0.1:{echo.server_address[1]}/v1" if echo else None
        reference_dir = work / "reference"
        reference_dir.mkdir()
        cfg = private_config(config, reference_dir, url)
        t0 = time.perf_counter()
        code, out = globmed(["run", "-c", str(cfg), "--warehouse", str(reference_dir / "wh.duckdb")], env)
        print(f"reference run: exit {code} in {time.perf_counter() - t0:.1f}s", flush=True)
        if code not in (0, 3):
            raise SystemExit(f"the reference run failed:\n{out}")
        reference = summary(reference_dir / "wh.duckdb", reference_dir / "repos")
        print(f"reference: {json.dumps(reference)[:600]}", flush=True)
        return [_one_point(point, config, url, work, env, reference) for point in points]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        if echo is not None:
            echo.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def _one_point(
    point: str, config: Path, url: str | None, work: Path, env: dict[str, str], reference: dict[str, Any]
) -> dict[str, Any]:
    folder = work / point.replace(":", "_")
    folder.mkdir()
    cfg = private_config(config, folder, url)
    wh = folder / "wh.duckdb"
    t0 = time.perf_counter()
    code, _ = globmed(["run", "-c", str(cfg), "--warehouse", str(wh)], env | {"GLOBMED_FAULT": point})
    killed = code == -signal.SIGKILL
    with Warehouse(wh, read_only=True) as w:
        killed_runs = [r[0] for r in w.query("SELECT flow_run_id FROM runs WHERE status = 'running'")]
    export_exit, export_out = globmed(["export", "-c", str(cfg), "--warehouse", str(wh)], env)
    rerun_exit, rerun_out = globmed(["run", "-c", str(cfg), "--warehouse", str(wh)], env)
    got = summary(wh, folder / "repos")
    diff = {k: (got[k], reference[k]) for k in reference if got[k] != reference[k]}
    with Warehouse(wh, read_only=True) as w:
        statuses = [r[0] for r in w.query("SELECT status FROM runs ORDER BY started_at")]
    states = flow_run_states(env["PREFECT_API_URL"], [r for r in killed_runs if r]) if killed_runs else {}
    row = {
        "point": point,
        "killed": killed,
        "export_exit": export_exit,
        "rerun_exit": rerun_exit,
        "run_statuses": statuses,
        "prefect_state": ",".join(states.values()) or None,
        "equal": not diff and killed and rerun_exit in (0, 3),
        "diff": json.dumps(diff)[:400] if diff else ("" if killed else "the fault point was not reached"),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if rerun_exit not in (0, 3):
        row["diff"] += f" re-run output: {rerun_out[-400:]}"
    if export_exit not in (0, 2, 3):
        row["diff"] += f" export output: {export_out[-400:]}"
    print(f"{point}: {'EQUAL' if row['equal'] else 'DIFFERENT'} ({row['seconds']}s)", flush=True)
    return row


def _wait_for(url: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.time() > deadline:
                raise SystemExit(f"the Prefect server did not answer at {url}") from None
            time.sleep(0.5)


if __name__ == "__main__":
    main()
