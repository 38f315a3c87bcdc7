"""Score one model on a dataset version through lm-evaluation-harness: write the tasks, run
`simple_evaluate` with a TaskManager over them, and turn the harness's per-sample logs into one
row per item (what bench_items stores)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from globmed_data.bench.dataset import DatasetVersion
from globmed_data.bench.engines import EngineError, build_lm
from globmed_data.bench.harness import run_harness
from globmed_data.bench.prompts import LETTERS, TEMPLATES, parse_letters
from globmed_data.bench.settings import BenchSettings
from globmed_data.bench.specs import ModelSpec
from globmed_data.bench.tasks import HarnessTask, Selection, write_tasks


@dataclass(frozen=True)
class ItemRow:
    entry_id: str
    config: str
    task: str
    language: str
    split: str
    resource: str
    prompt_language: str
    prediction: str | None
    reply: str | None
    gold: str
    n_options: int | None
    correct: bool | None
    score: float
    invalid: bool
    option_logliks: list[float] | None
    judge_correct: bool | None = None  # open QA with bench.judge: the judge's verdict


@dataclass
class ModelRun:
    spec: ModelSpec
    mode: str
    tasks: list[HarnessTask]
    rows: list[ItemRow]
    harness_seconds: float
    seconds: float
    skipped: list[str] = field(default_factory=list)
    harness_scores: dict[str, float] = field(default_factory=dict)  # task name -> the harness's acc


def resolve_mode(spec: ModelSpec, settings: BenchSettings) -> str:
    if settings.mode == "auto":
        return "loglik" if spec.local_scores else "generate"
    if settings.mode == "loglik" and not spec.local_scores:
        raise EngineError(
            f"{spec.spec}: an OpenAI-compatible endpoint gives no log-likelihoods; use --mode generate"
        )
    return settings.mode


def evaluate_model(
    spec: ModelSpec,
    version: DatasetVersion,
    selection: Selection,
    settings: BenchSettings,
    folder: Path,
    *,
    low_resource: set[str],
    log: Callable[[str], None] = print,
    lm: Any = None,
    judge_lm: Any = None,
) -> ModelRun:
    """`lm` and `judge_lm` replace the specs' engines (tests: an oracle, a test-double judge)."""
    started = time.perf_counter()
    mode = resolve_mode(spec, settings)
    tasks, skipped = write_tasks(version, selection, mode, settings, folder / "tasks")
    for line in skipped:
        log(f"{spec.spec}: skipped {line}")
    untemplated = sorted({t.language for t in tasks} - set(TEMPLATES))
    if settings.instruction == "item" and untemplated:
        log(f"{spec.spec}: no prompt template in {', '.join(untemplated)}: those items are asked in English")
    if not tasks:
        raise EngineError("nothing to score: no shard of the version matches the tasks, languages and splits")
    lm = lm if lm is not None else build_lm(spec, settings)
    log(f"{spec.spec}: {len(tasks)} harness task(s), {sum(t.rows for t in tasks)} item(s), mode {mode}")
    results, harness_seconds = run_harness(lm, tasks, folder / "tasks", settings, chat=_chat(spec, mode))
    by_name = {t.name: t for t in tasks}
    rows: list[ItemRow] = []
    for name, samples in results["samples"].items():
        rows += [item_row(by_name[name], s, mode, low_resource) for s in samples]
    _write_samples(folder / "samples", results["samples"])
    if settings.judge and any(r.task == "open_qa" for r in rows):
        rows = _judged(rows, results["samples"], settings, folder / "judge", judge_lm, log)
    harness_scores = {name: float(r["acc,none"]) for name, r in results["results"].items() if "acc,none" in r}
    return ModelRun(
        spec, mode, tasks, rows, harness_seconds, time.perf_counter() - started, skipped, harness_scores
    )


def _judged(
    rows: list[ItemRow],
    samples: dict[str, list[dict[str, Any]]],
    settings: BenchSettings,
    folder: Path,
    judge_lm: Any,
    log: Callable[[str], None],
) -> list[ItemRow]:
    from globmed_data.bench.judge import judge_open_qa
    from globmed_data.bench.specs import parse_spec

    questions = {s["doc"]["entry_id"]: s["doc"]["question"] for group in samples.values() for s in group}
    items = [
        {
            "entry_id": r.entry_id,
            "question": questions[r.entry_id],
            "reference": r.gold,
            "reply": r.reply or "",
        }
        for r in rows
        if r.task == "open_qa"
    ]
    judge = parse_spec(str(settings.judge))
    log(f"judging {len(items)} open-QA replies with {judge.spec}")
    lm = judge_lm if judge_lm is not None else build_lm(judge, settings)
    verdicts = judge_open_qa(items, lm, settings, folder)
    return [replace(r, judge_correct=verdicts.get(r.entry_id)) if r.task == "open_qa" else r for r in rows]


def _chat(spec: ModelSpec, mode: str) -> bool:
    """Generated answers come from chat models through their chat template; log-likelihoods and
    the baselines read the plain prompt."""
    return mode == "generate" and spec.engine in ("hf", "openai")


def item_row(task: HarnessTask, sample: dict[str, Any], mode: str, low_resource: set[str]) -> ItemRow:
    doc = sample["doc"]
    gold_set = list(doc["gold_set"])
    open_qa = task.task == "open_qa"
    logliks: list[float] | None = None
    reply: str | None = None
    if mode == "loglik":
        logliks = [float(r[0]) for r in sample["filtered_resps"]]
        best = max(range(len(logliks)), key=lambda i: logliks[i])
        prediction: str | None = LETTERS[best]
    else:
        reply = str(sample["filtered_resps"][0])
        if open_qa:
            prediction = reply
        else:
            picked = parse_letters(reply, list(doc["shown_options"]))
            prediction = ",".join(LETTERS[i] for i in picked) if picked is not None else None
    score = float(sample["acc"])
    return ItemRow(
        entry_id=str(doc["entry_id"]),
        config=task.config,
        task=task.task,
        language=task.language,
        split=task.split,
        resource="low" if task.language in low_resource else "high",
        prompt_language=str(doc["prompt_language"]),
        prediction=prediction,
        reply=reply,
        gold=str(doc["reference"]) if open_qa else ",".join(LETTERS[i] for i in gold_set),
        n_options=None if open_qa else len(doc["shown_options"]),
        correct=None if open_qa else score == 1.0,
        score=score,
        invalid=bool(sample["invalid"]),
        option_logliks=logliks,
    )


def _write_samples(folder: Path, samples: dict[str, list[dict[str, Any]]]) -> None:
    """The harness's per-sample logs, one JSONL per task, as it gave them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in samples.items():
        with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def rows_as_dicts(rows: list[ItemRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
