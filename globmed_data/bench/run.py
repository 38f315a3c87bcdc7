"""A benchmark from request to report, in three steps the flow (flows/bench.py) runs as tasks:

1. `plan_bench`: the config's `bench:` settings with the request's overrides, the model specs
   and the dataset version, all checked before any model loads (a bad request costs nothing);
2. `bench_model`, once per model: the harness run (`score_model`, where the executor places
   models: on Ray a task with the model's GPUs, else here), its items stored with the run in one
   transaction by this process (a failed model is recorded failed with its error; the others go on);
3. `summarise`: scores and gaps from the warehouse views, the leaderboard and the chart.

The warehouse is opened only to write a run's start and its results, never while a model is
scored, so a long benchmark does not hold the file.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from globmed_data.bench import store
from globmed_data.bench.dataset import DatasetVersion, open_version, places_for
from globmed_data.bench.engines import model_gpus
from globmed_data.bench.evaluate import ModelRun, evaluate_model, resolve_mode
from globmed_data.bench.report import accuracy_chart, leaderboard_markdown
from globmed_data.bench.settings import BenchSettings
from globmed_data.bench.specs import ModelSpec, parse_spec
from globmed_data.bench.tasks import Selection, select
from globmed_data.pipeline.executor import Executor, InlineExecutor
from globmed_data.pipeline.settings import ExecutorSettings
from globmed_data.settings import ConfigError
from globmed_data.warehouse import Warehouse

DEFAULT_LOW_RESOURCE = ("sw", "yo", "zu")
# Models scored side by side (on Ray) write their runs one at a time.
_WRITES = threading.Lock()


@dataclass(frozen=True)
class BenchPlan:
    bench_id: str
    version: DatasetVersion
    specs: list[ModelSpec]
    settings: BenchSettings
    selection: Selection
    warehouse: Path
    low_resource: frozenset[str]
    out: Path  # this benchmark's folder
    # The config's executor: on Ray, the models run as Ray tasks.
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)


def plan_bench(
    dataset: str,
    models: list[str] | None = None,
    *,
    config_path: str | None = None,
    warehouse: str | None = None,
    overrides: dict[str, Any] | None = None,
    endpoint: str | None = None,
) -> BenchPlan:
    """Everything a benchmark needs, validated; raises ConfigError with what to fix."""
    base: dict[str, Any] = {}
    low_resource: tuple[str, ...] = DEFAULT_LOW_RESOURCE
    loaded = None
    executor = ExecutorSettings()
    if config_path:
        from globmed_data.config import load_config

        loaded = load_config(config_path)
        base = loaded.config.bench.model_dump(exclude_unset=True)
        if base.get("out"):  # a path in a config is relative to the config's folder
            base["out"] = str(loaded.resolve(base["out"]))
        low_resource = tuple(loaded.config.languages.low_resource)
        executor = loaded.config.executor
    merged = {**base, **{k: v for k, v in (overrides or {}).items() if v not in (None, [], ())}}
    if models:
        merged["models"] = models
    try:
        settings = BenchSettings(**merged)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid benchmark settings: {problems}") from None
    if not settings.models:
        raise ConfigError("no model to benchmark: give --model (or bench.models in the config)")
    specs = [parse_spec(m) for m in settings.models]
    for spec in specs:
        try:
            resolve_mode(spec, settings)
        except RuntimeError as exc:
            raise ConfigError(str(exc)) from None
    places = places_for(loaded, warehouse)
    wh_path = places.warehouse
    root = (Path(settings.out) if settings.out else wh_path.parent / "bench").resolve()
    version = open_version(dataset, cache=root, places=places, endpoint=endpoint)
    selection = Selection(list(settings.tasks), list(settings.languages), list(settings.splits))
    if not select(version, selection):
        raise ConfigError(
            f"{version.repo_id} v{version.version} has no shard for tasks {selection.tasks or 'all'}, "
            f"languages {selection.languages or 'all'}, splits {selection.splits}"
        )
    bench_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    return BenchPlan(
        bench_id, version, specs, settings, selection, wh_path, frozenset(low_resource), root / bench_id,
        executor,
    )  # fmt: skip


def check_gpus(plan: BenchPlan, executor: Executor) -> None:
    """Refuse, before any model runs, one that needs more GPUs than the executor gives."""
    for spec in plan.specs:
        gpus = model_gpus(spec, plan.settings)
        if gpus:
            try:
                device = plan.settings.device if spec.engine == "hf" else None
                executor.check_gpus(gpus, f"model {spec.spec}", device)
            except RuntimeError as exc:
                raise ConfigError(str(exc)) from None


def model_folder(plan: BenchPlan, spec: ModelSpec) -> Path:
    return plan.out / re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.spec).strip("_")[:80]


def score_model(
    plan: BenchPlan, spec: ModelSpec, log: Callable[[str], None] = print, lm: Any = None, judge_lm: Any = None
) -> ModelRun:
    """The harness run of one model: no warehouse, so it runs wherever the executor places it."""
    return evaluate_model(
        spec,
        plan.version,
        plan.selection,
        plan.settings,
        model_folder(plan, spec),
        low_resource=set(plan.low_resource),
        log=log,
        lm=lm,
        judge_lm=judge_lm,
    )


def bench_model(
    plan: BenchPlan,
    spec: ModelSpec,
    *,
    log: Callable[[str], None] = print,
    lm: Any = None,
    judge_lm: Any = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Score one model and store it; returns its run record (status failed with the error, never raises
    for a model's own failure)."""
    executor = executor or InlineExecutor()
    run_id = uuid.uuid4().hex
    mode = resolve_mode(spec, plan.settings)
    with _WRITES, Warehouse(plan.warehouse) as wh:
        store.start_run(wh, run_id, spec, plan.version, mode, plan.settings)
    record: dict[str, Any] = {"bench_run_id": run_id, "model": spec.spec, "mode": mode}
    # Sent away, the model's log lines go to its worker's output: a run's logger stays here.
    there = log if executor.models_here else print
    try:
        gpus = model_gpus(spec, plan.settings)
        # A baseline or an endpoint's client computes nothing itself: one CPU, not a node's.
        cpus = None if spec.engine in ("hf", "vllm") else 1
        run = executor.submit_model(score_model, gpus, plan, spec, there, lm, judge_lm, cpus=cpus).result()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        with _WRITES, Warehouse(plan.warehouse) as wh:
            store.fail_run(wh, run_id, error)
        log(f"{spec.spec}: failed: {error}")
        return {**record, "status": "failed", "error": error, "items": 0, "seconds": 0.0}
    with _WRITES, Warehouse(plan.warehouse) as wh:
        store.finish_run(wh, run_id, run.rows, run.seconds, run.harness_seconds)
    rate = len(run.rows) / run.seconds if run.seconds else 0.0
    log(f"{spec.spec}: {len(run.rows)} items in {run.seconds:.1f} s ({rate:.1f} items/s)")
    return {
        **record,
        "status": "succeeded",
        "error": None,
        "items": len(run.rows),
        "seconds": run.seconds,
        "harness_seconds": run.harness_seconds,
        "items_per_second": rate,
    }


def summarise(plan: BenchPlan, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Scores and gaps of the succeeded runs (from the views), the leaderboard and the chart."""
    ids = [r["bench_run_id"] for r in runs if r["status"] == "succeeded"]
    with Warehouse(plan.warehouse) as wh:
        scores = store.scores(wh, ids)
        gaps = store.gaps(wh, ids)
    v = plan.version
    title = f"{v.repo_id} v{v.version} ({', '.join(plan.selection.splits)})"
    plan.out.mkdir(parents=True, exist_ok=True)
    leaderboard = plan.out / "leaderboard.md"
    leaderboard.write_text(leaderboard_markdown(title, scores, gaps), encoding="utf-8")
    chart = accuracy_chart(scores, plan.out / "accuracy.png", title) if scores else None
    failed = sum(r["status"] == "failed" for r in runs)
    summary = {
        "bench_id": plan.bench_id,
        "status": "succeeded" if not failed else ("failed" if failed == len(runs) else "partial"),
        "dataset": {
            "repo_id": v.repo_id,
            "version": v.version,
            "fingerprint": v.fingerprint,
            "folder": str(v.folder),
        },
        "warehouse": str(plan.warehouse.resolve()),
        "runs": runs,
        "results": [_plain(s) for s in scores],
        "gaps": [_plain(g) for g in gaps],
        "files": {
            "leaderboard": str(leaderboard),
            "chart": str(chart) if chart else None,
            "folder": str(plan.out),
        },
    }
    (plan.out / "results.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (float(v) if hasattr(v, "__float__") and not isinstance(v, int | bool) else v)
        for k, v in row.items()
    }
