"""An optional judge for open QA (`bench.judge`: a model spec): beside chrF++ against the
reference, a second model reads the question, the reference and the reply and says whether they
agree. It runs through the harness like any task (generate, greedy); its verdict is the first
word of its reply, yes or no; anything else is no verdict (stored as null)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from globmed_data.bench.harness import run_harness
from globmed_data.bench.settings import BenchSettings
from globmed_data.bench.tasks import HOOKS, Function, HarnessTask, dump_yaml

JUDGE_PROMPT = (
    "You are grading an answer to a medical question against a reference answer.\n\n"
    "Question: {question}\nReference answer: {reference}\nAnswer to grade: {reply}\n\n"
    "Does the answer to grade say the same as the reference answer? Reply with yes or no.\nVerdict:"
)
JUDGE_TASK = "globmed__judge"


def verdict(reply: str) -> bool | None:
    words = reply.strip().lower().split()
    first = words[0].strip(".,:;!") if words else ""
    return {"yes": True, "no": False}.get(first)


def judge_open_qa(
    items: list[dict[str, Any]], lm: Any, settings: BenchSettings, folder: Path
) -> dict[str, bool | None]:
    """items: {entry_id, question, reference, reply}; returns entry id -> verdict."""
    folder.mkdir(parents=True, exist_ok=True)
    prompts = [
        JUDGE_PROMPT.format(question=i["question"], reference=i["reference"], reply=i["reply"]) for i in items
    ]
    data = folder / "judge.parquet"
    pq.write_table(pa.table({"entry_id": [i["entry_id"] for i in items], "prompt": prompts}), data)
    spec = {
        "task": JUDGE_TASK,
        "dataset_path": "parquet",
        "dataset_kwargs": {"data_files": {"test": [str(data)]}, "cache_dir": str(folder / "hf-cache")},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "prompt",
        "doc_to_target": "",
        "generation_kwargs": {"until": ["\n"], "max_gen_toks": 8, "do_sample": False},
        "process_results": Function(f"{HOOKS}.results_judge"),
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "invalid", "aggregation": "mean", "higher_is_better": False},
        ],
    }
    (folder / f"{JUDGE_TASK}.yaml").write_text(dump_yaml(spec), encoding="utf-8")
    task = HarnessTask(JUDGE_TASK, "judge", "open_qa", "*", "test", len(items))
    results, _ = run_harness(lm, [task], folder, settings.model_copy(update={"limit": None}), chat=False)
    return {
        s["doc"]["entry_id"]: verdict(str(s["filtered_resps"][0])) for s in results["samples"][JUDGE_TASK]
    }
