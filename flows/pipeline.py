"""The pipeline flow: the registry's stages in order (globmed_data/pipeline/registry.py), one
named task per stage, and one per source for collect (a map, run concurrently).

Collect, then language ID and quality over every entry whose content or settings changed, then
translation (when configured: new entries, which then get language ID and quality too), then
dedup and decontamination, then the export of a new dataset version when the curated view
changed (published to the configured targets, with a `globmed.dataset.published` event).

What the UI shows is what happened: each task waits for the step before it (so the run graph is
the pipeline's order), a failed source or stage fails its task and the flow run with a message
naming it, while what succeeded stays in the warehouse. One run writes a warehouse at a time
(flows/locking.py).
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import allow_failure, quote

from flows.locking import warehouse_slot
from flows.naming import unique_run_name
from flows.progress import MapProgress, StageProgress
from flows.reports import publish_artifacts
from globmed_data.config import LoadedConfig, load_config
from globmed_data.pipeline import registry
from globmed_data.pipeline.curation import record_stage_settings
from globmed_data.pipeline.executor import Executor, executor_for
from globmed_data.pipeline.runner import give_back_memory, run_step
from globmed_data.pipeline.stage import Context, MapStage
from globmed_data.warehouse import Warehouse, resolve_warehouse_path


class StepFailed(RuntimeError):
    """A source or a stage failed: fails its task run, and carries its counts to the flow."""

    def __init__(self, message: str, counts: dict[str, Any]) -> None:
        super().__init__(message)
        self.counts = counts


class RunFailed(RuntimeError):
    """Some sources or stages failed: the flow run is Failed with this message; the summary (what
    succeeded is in the warehouse) goes with it for the CLI."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


# No timeout: Prefect cannot interrupt a worker thread anyway; a failing read ends by itself.
@task(name="collect-source", task_run_name="collect {unit}", cache_policy=NO_CACHE)
def unit_task(
    wh: Warehouse,
    loaded: LoadedConfig,
    stage: MapStage,
    unit: str,
    run_id: str,
    executor: Executor,
    progress: MapProgress,
) -> dict[str, Any]:
    """One item of a map stage (collect: one source); the stage records it in run_stages."""
    logger = get_run_logger()
    try:
        report = stage.run_unit(Context(wh, loaded, run_id, logger.info, progress.of(unit), executor), unit)
    finally:
        progress.finish(unit)
    if report.status == "failed":
        error = str(report.counts.get("error") or "").removeprefix(f"source '{unit}': ")
        raise StepFailed(f"source {unit} failed: {error}", report.counts)
    logger.info(report.summary)
    return report.counts


@task(name="stage", cache_policy=NO_CACHE)
def stage_task(
    wh: Warehouse, loaded: LoadedConfig, step: registry.Step, run_id: str, executor: Executor
) -> dict[str, Any]:
    """One whole-warehouse pass of a stage, recorded in run_stages (source '*')."""
    progress = StageProgress(loaded.config.export.repo_id, step.name)
    report = run_step(step, Context(wh, loaded, run_id, get_run_logger().info, progress, executor))
    counts = {**report.counts, "summary": report.summary}
    if report.status == "failed":  # the export's publication: the version exists, a target refused it
        raise StepFailed(f"{step.name} failed: {report.summary}", counts)
    return counts


def _outcome(future: PrefectFuture[Any]) -> tuple[dict[str, Any] | None, BaseException | None]:
    """A finished task's counts, or its error (a StepFailed still carries its counts)."""
    future.wait()
    result = future.state.result(raise_on_failure=False)
    if isinstance(result, StepFailed):
        return result.counts, result
    if isinstance(result, BaseException):
        return None, result
    return result, None


def _run_name() -> str:
    """'shared-real 2026-11-25 02:00:03 0f3a9c' in the UI instead of a random name."""
    return unique_run_name(Path(str(flow_run.parameters.get("config_path", "pipeline"))).stem)


@flow(name="globmed-pipeline", flow_run_name=_run_name, log_prints=True)
def pipeline_flow(
    config_path: str, warehouse: str | None = None, lock_wait_seconds: float | None = None
) -> dict[str, Any]:
    """Run the pipeline for one config; returns the run summary (also stored in the warehouse).

    Args:
        config_path: the pipeline config (YAML), relative to the working directory.
        warehouse: the DuckDB file (default: $GLOBMED_WAREHOUSE, then the config's, then
            .globmed/warehouse.duckdb).
        lock_wait_seconds: seconds to wait while another run writes the warehouse (default:
            $GLOBMED_LOCK_WAIT, else fail at once naming that run).
    """
    loaded = load_config(config_path)
    configured = loaded.resolve(loaded.config.warehouse) if loaded.config.warehouse else None
    wh_path = resolve_warehouse_path(warehouse, configured)
    holder = f"run {flow_run.get_name() or loaded.config.name}"
    with (
        _collector_looks_at_the_run_only(),
        warehouse_slot(wh_path, what=holder, wait=lock_wait_seconds),
        Warehouse(wh_path, what=holder) as wh,
        closing(executor_for(loaded.config.executor)) as executor,
    ):
        summary = _run(wh, loaded, wh_path, executor)
    problem = _problem(summary)
    if problem:
        raise RunFailed(problem, summary)
    return summary


@contextmanager
def _collector_looks_at_the_run_only() -> Iterator[None]:
    """What Prefect, pydantic and the rest made before the run outlives it: frozen out of the
    garbage collector's sight for the run, each full collection looks at far fewer objects (over
    the 8x run: 0.58 s of them, not 1.10 s). Thawed after it, so that a process serving many
    runs (a deployment's) still collects what an earlier run left in cycles."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _run(wh: Warehouse, loaded: LoadedConfig, wh_path: Path, executor: Executor) -> dict[str, Any]:
    run_id = uuid.uuid4().hex
    flow_run_id = flow_run.get_id()
    crashed = wh.start_run(
        run_id,
        config_hash=loaded.config.config_hash(),
        config_path=str(loaded.path),
        flow_run_id=str(flow_run_id) if flow_run_id else None,
    )
    _mark_crashed(crashed)
    record_stage_settings(wh, loaded)
    reports: list[dict[str, Any]] = []
    stages: dict[str, Any] = {}
    failed_stage: tuple[str, BaseException] | None = None
    previous: list[PrefectFuture[Any]] = []
    # quote(): Prefect must not look inside the warehouse and config for other tasks' results
    # (it found source names there and drew an edge from every task to every later one); the
    # edges come from wait_for, so the graph is the pipeline's order.
    args = {"wh": quote(wh), "loaded": quote(loaded), "run_id": run_id, "executor": quote(executor)}
    try:
        for step in registry.plan(loaded.config):
            after = [allow_failure(f) for f in previous]  # a failed source must not stop the rest
            if isinstance(step.stage, MapStage):
                # At most `concurrency` units at a time (collect.concurrency): each holds its
                # mapped files in memory until it writes them, and they share one writer.
                # No tags on these tasks (nor on the stage tasks below): Prefect asks the server
                # for a tag's concurrency slots on every task run whose tag set it has not seen
                # (0.5-0.9 s each on two cores; 89 s summed over 104 sources); the task names
                # carry the stage and the source.
                width = getattr(step.stage.settings(loaded.config), "concurrency", None)
                units = step.stage.units(loaded)
                progress = MapProgress(loaded.config.export.repo_id, step.name, units)
                with wh.bulk_load(), ThreadPoolTaskRunner(max_workers=width) as runner:
                    previous = [
                        runner.submit(
                            unit_task,
                            {**args, "stage": quote(step.stage), "unit": unit, "progress": quote(progress)},
                            wait_for=after,
                        )
                        for unit in units
                    ]
                    outcomes = [_outcome(f) for f in previous]
                executor.release()  # the workers' memory is not the next stage's
                give_back_memory()
                for _, error in outcomes:
                    if error is not None and not isinstance(error, StepFailed):
                        raise error  # not the source's own failure (the warehouse, say): the run fails
                reports = [counts for counts, _ in outcomes if counts is not None]
                continue
            if step.name == "export" and _collect_status(reports) == "failed":
                continue  # every source failed: nothing new to publish
            future = stage_task.with_options(task_run_name=step.name).submit(
                **args, step=quote(step), wait_for=after
            )
            previous = [future]
            counts, error = _outcome(future)
            if counts is not None:
                stages[step.name] = counts
            if error is not None and not (isinstance(error, StepFailed) and step.name == "export"):
                failed_stage = (step.name, error)
                break  # later stages would decide on an incomplete warehouse
    except BaseException as exc:
        # A warehouse that can no longer write (DuckDB gives up on a full disk) cannot record the
        # failure either: the next run marks this one crashed. The cause is what is raised.
        with suppress(duckdb.Error):
            wh.finish_run(run_id, "failed", {}, error=f"{type(exc).__name__}: {exc}")
        raise
    status = _collect_status(reports)
    if failed_stage or (status == "succeeded" and stages.get("export", {}).get("status") == "failed"):
        status = "failed" if failed_stage else "partial"  # the data is in; the version is not published
    counts = {
        "collect": {
            r["source"]: {
                k: r[k]
                for k in ("status", "records", "added", "updated", "unchanged", "quarantined", "vanished")
            }
            for r in reports
        },
        **stages,
    }
    error = (
        f"{failed_stage[0]}: {type(failed_stage[1]).__name__}: {failed_stage[1]}" if failed_stage else None
    )
    wh.finish_run(run_id, status, counts, error=error)
    publish_artifacts(wh, loaded, run_id, status, reports, stages)
    return {
        "run_id": run_id,
        "flow_run_id": str(flow_run_id) if flow_run_id else None,
        "status": status,
        "warehouse": str(Path(wh_path).resolve()),
        "sources": reports,
        "stages": stages,
        "error": error,
    }


def _collect_status(reports: list[dict[str, Any]]) -> str:
    failed = sum(r.get("status") == "failed" for r in reports)
    if failed == 0:
        return "succeeded"
    return "failed" if failed == len(reports) else "partial"


def _problem(summary: dict[str, Any]) -> str | None:
    """The flow run's failure message: which sources or stage failed, and why; None when none."""
    parts = [
        f"source {r['source']}: " + str(r["error"]).removeprefix(f"source '{r['source']}': ")
        for r in summary["sources"]
        if r.get("status") == "failed"
    ]
    if summary["error"]:
        parts.append(f"stage {summary['error']}")
    export = summary["stages"].get("export", {})
    if export.get("status") == "failed":
        parts.append(f"export: {export.get('summary')}")
    if not parts:
        return None
    ok = sum(r.get("status") != "failed" for r in summary["sources"])
    kept = f"; {ok} of {len(summary['sources'])} sources collected, kept in the warehouse"
    return f"{summary['status']}: " + "; ".join(parts) + kept


def _mark_crashed(flow_run_ids: list[str]) -> None:
    """A killed run's flow run stays Running in Prefect (nothing was left to report its end):
    the next run on the warehouse, which found it killed, sets it Crashed."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    logger = get_run_logger()
    with get_client(sync_client=True) as client:
        for flow_run_id in flow_run_ids:
            try:
                state = client.read_flow_run(flow_run_id).state
                if state is not None and not state.is_final():
                    message = "killed: found still running by the next run on this warehouse"
                    client.set_flow_run_state(flow_run_id, Crashed(message=message), force=True)
                    logger.warning(f"flow run {flow_run_id} was killed; marked Crashed")
            except Exception as exc:  # another Prefect server, or the run was deleted
                logger.warning(f"cannot mark flow run {flow_run_id} Crashed: {type(exc).__name__}: {exc}")
