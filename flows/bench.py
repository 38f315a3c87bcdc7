"""The benchmark flow (GlobMed-Bench): a dataset version, one task run per model, then the
leaderboard and the per-language chart as artifacts. With the config's `executor: ray` the
models are scored side by side as Ray tasks, each on a node with the GPUs it asks for; otherwise
one at a time in the flow's process.

Triggered by `globmed bench run`, or by a deployment on `globmed.dataset.published`.
"""

from __future__ import annotations

import base64
from contextlib import closing
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows.naming import artifact_key, dataset_run_name
from globmed_data.bench.run import BenchPlan, bench_model, check_gpus, plan_bench, summarise
from globmed_data.bench.specs import ModelSpec
from globmed_data.pipeline.executor import Executor, model_executor


class ModelFailed(RuntimeError):
    """A model's benchmark failed: fails its task run, and carries its run record to the flow."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__(f"{record['model']}: {record['error']}")
        self.record = record


class BenchFailed(RuntimeError):
    """Some models failed: the flow run is Failed with this message; the summary (the other models'
    scores are stored) goes with it for the CLI and the training flow."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


@task(name="bench-model", task_run_name="bench {spec.spec}", cache_policy=NO_CACHE, log_prints=False)
def model_task(plan: BenchPlan, spec: ModelSpec, executor: Executor) -> dict[str, Any]:
    """One model on the version; a failed model fails its task run (the others go on)."""
    logger = get_run_logger()
    record = bench_model(plan, spec, log=logger.info, executor=executor)
    if record["status"] == "failed":
        raise ModelFailed(record)
    return record


@flow(name="globmed-bench", flow_run_name=dataset_run_name("bench"), log_prints=True)
def bench_flow(
    dataset: str,
    models: list[str] | None = None,
    config_path: str | None = None,
    warehouse: str | None = None,
    overrides: dict[str, Any] | None = None,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """Benchmark models on a dataset version's splits, per task and language.

    Args:
        dataset: the version: a folder, PATH@vX.Y.Z of a local dataset repository, or
            OWNER/NAME@vX.Y.Z (the config's local repository, else pulled and verified).
        models: model specs (constant:A, random:0, hf:FOLDER, vllm:...); default: the config's
            bench.models.
        config_path: the pipeline config: its warehouse, dataset repositories and bench settings.
        warehouse: the DuckDB file (default: $GLOBMED_WAREHOUSE, then the config's).
        overrides: bench settings replacing the config's (mode, splits, tasks, languages, limit).
        endpoint: a Hub endpoint to pull OWNER/NAME@vX.Y.Z from.
    """
    plan = plan_bench(
        dataset, models, config_path=config_path, warehouse=warehouse, overrides=overrides, endpoint=endpoint
    )
    with closing(model_executor(plan.executor)) as executor:
        check_gpus(plan, executor)
        states = _score(plan, executor)
    runs: list[dict[str, Any]] = []
    for state in states:
        outcome = state.result(raise_on_failure=False)
        if isinstance(outcome, BaseException) and not isinstance(outcome, ModelFailed):
            raise outcome  # not the model's own failure (the warehouse, say): the flow fails
        runs.append(outcome.record if isinstance(outcome, ModelFailed) else outcome)
    summary = summarise(plan, runs)
    _artifacts(plan, summary)
    failed = [r for r in runs if r["status"] == "failed"]
    if failed:
        named = "; ".join(f"model {r['model']}: {r['error']}" for r in failed)
        raise BenchFailed(
            f"{summary['status']}: {named}; {len(runs) - len(failed)} of {len(runs)} scored", summary
        )
    return summary


def _score(plan: BenchPlan, executor: Executor) -> list[Any]:
    """Each model's task run state: one at a time here; on Ray all at once, and the cluster runs
    as many side by side as it has CPUs and GPUs for."""
    tasks = [(model_task.with_options(tags=[f"model:{spec.engine}"]), spec) for spec in plan.specs]
    if executor.models_here:
        return [task(plan, spec, quote(executor), return_state=True) for task, spec in tasks]
    futures = [task.submit(plan, spec, quote(executor)) for task, spec in tasks]
    for future in futures:
        future.wait()
    return [future.state for future in futures]


def outcome(state: Any) -> tuple[dict[str, Any], str | None]:
    """A finished bench flow run's summary, and its failure message (None when every model was
    scored); any other failure is raised."""
    result = state.result(raise_on_failure=False)
    if isinstance(result, BenchFailed):
        return result.summary, str(result)
    if isinstance(result, BaseException):
        raise result
    return result, None


def _artifacts(plan: BenchPlan, summary: dict[str, Any]) -> None:
    key = artifact_key(plan.version.repo_id, "bench")
    leaderboard = Path(summary["files"]["leaderboard"]).read_text(encoding="utf-8")
    chart = summary["files"]["chart"]
    if chart:  # the PNG inline, so the UI shows it without a file server
        data = base64.b64encode(Path(chart).read_bytes()).decode()
        leaderboard += f"\n![accuracy per language](data:image/png;base64,{data})\n"
    create_markdown_artifact(
        key=key,
        markdown=leaderboard,
        description=f"Leaderboard of {plan.version.repo_id} v{plan.version.version}",
    )
    if summary["results"]:
        create_table_artifact(
            key=key + "-scores",
            table=summary["results"],
            description="Accuracy per model, task, language and split (95% Wilson intervals)",
        )
