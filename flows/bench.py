"""The benchmark flow (GlobMed-Bench): a dataset version, one task run per model (so models can
fan out to GPU workers later), then the leaderboard and the per-language chart as artifacts.

Triggered by `globmed bench run`, or by a deployment on `globmed.dataset.published`.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.naming import artifact_key, dataset_run_name
from globmed_data.bench.run import BenchPlan, bench_model, plan_bench, summarise
from globmed_data.bench.specs import ModelSpec


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
def model_task(plan: BenchPlan, spec: ModelSpec) -> dict[str, Any]:
    """One model on the version; a failed model fails its task run (the others go on)."""
    logger = get_run_logger()
    record = bench_model(plan, spec, log=logger.info)
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
    runs: list[dict[str, Any]] = []
    for spec in plan.specs:
        state = model_task.with_options(tags=[f"model:{spec.engine}"])(plan, spec, return_state=True)
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
