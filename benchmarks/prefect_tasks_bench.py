"""The ephemeral Prefect server's CPU per task run: the CLI's server as it starts it, against
Prefect's defaults for the task-run recorder (one transaction per task-run state).

    .venv/bin/python benchmarks/prefect_tasks_bench.py [--tasks 104] [--repeat 3]

Each variant runs in a fresh process, as `globmed run` does: the server is launched the CLI's
way (`prefect_environment`, globmed_data/ops/prefect_start.py), a warm-up flow runs, then a flow
of N tasks (the collect's shape at 8x: 104 sources, four at a time on Prefect's thread pool,
each sleeping 50 ms) is timed, and the server process's CPU over it is read with psutil, after a
1.5 s pause for its last periodic flush. Prints each run and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ONE_RUN = """
import json, sys, time
import psutil
from globmed_data.clitools import prefect_environment, start_flow
from globmed_data.ops import prefect_start
prefect_environment()
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

TASKS = int(sys.argv[1])

@task(task_run_name="source {i}", cache_policy=NO_CACHE)
def source(i):
    time.sleep(0.05)
    return i

@flow(name="prefect-tasks-bench")
def many(n):
    with ThreadPoolTaskRunner(max_workers=4) as runner:
        return sum(f.result() for f in [runner.submit(source, {"i": i}) for i in range(n)])

start_flow(many, n=4)  # warm-up: the server's first writes, Prefect's first flow
server = psutil.Process(prefect_start._early.process.pid)
cpu = lambda p: sum(p.cpu_times()[:2])
before_s, before_c, t0 = cpu(server), cpu(psutil.Process()), time.monotonic()
start_flow(many, n=TASKS)
wall = time.monotonic() - t0
time.sleep(1.5)  # the recorder's last periodic flush
print(json.dumps({"server_cpu_s": cpu(server) - before_s, "run_cpu_s": cpu(psutil.Process()) - before_c,
                  "wall_s": wall}))
"""

DEFAULTS = {"PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "1",
            "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "5"}  # fmt: skip


def one_run(tasks: int, env: dict[str, str], home: Path) -> dict[str, float]:
    env = {**env, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", ONE_RUN, str(tasks)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode:
        sys.exit(f"the run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=104)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="prefect-tasks-bench-"))  # Prefect's database, one for all runs
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_SERVER_SERVICES_TASK_RUN")}
    variants = {"Prefect's defaults": {**clean, **DEFAULTS}, "the CLI's server": clean}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(args.repeat):  # alternated: the machine's speed drifts
        for name, env in variants.items():
            r = one_run(args.tasks, env, home)
            runs[name].append(r)
            per_task = 1000 * r["server_cpu_s"] / args.tasks
            print(
                f"{name:>20}: {args.tasks} task runs in {r['wall_s']:.1f} s; server "
                f"{r['server_cpu_s']:.2f} CPU-s ({per_task:.0f} ms a task run), the flow's process "
                f"{r['run_cpu_s']:.2f} CPU-s",
                flush=True,
            )
    shutil.rmtree(home, ignore_errors=True)
    median = {name: statistics.median(r["server_cpu_s"] for r in rs) for name, rs in runs.items()}
    base, ours = median["Prefect's defaults"], median["the CLI's server"]
    print(
        f"server CPU-s, median: Prefect's defaults {base:.2f}, the CLI's server {ours:.2f} "
        f"({base / ours:.1f}x less)"
    )


if __name__ == "__main__":
    main()
