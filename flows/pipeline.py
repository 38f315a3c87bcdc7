"""The pipeline flow: the registry's stages in order (globmed_data/pipeline/registry.py), one
named task per stage, and one per source for collect (a map, run concurrently).

Collect, then language ID and quality over every entry whose content or settings changed, then
translation (when configured: new entries, which then get language ID and quality too), then
dedup and decontamination, then the export of a new dataset version when the curated view
changed (published to the configured targets, with a `globmed.dataset.published` event).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from globmed_data.config import LoadedConfig, load_config
from globmed_data.export.stage import card_text
from globmed_data.export.versions import get_version
from globmed_data.pipeline import registry
from globmed_data.pipeline.curation import record_stage_settings
from globmed_data.pipeline.runner import run_step
from globmed_data.pipeline.stage import Context, MapStage
from globmed_data.quality.report import quality_report, render_markdown
from globmed_data.summary import entry_count_table, run_table
from globmed_data.warehouse import Warehouse, resolve_warehouse_path


# No timeout: Prefect cannot interrupt a worker thread anyway; a failing read ends by itself.
@task(name="collect-source", task_run_name="collect {unit}", cache_policy=NO_CACHE)
def unit_task(wh: Warehouse, loaded: LoadedConfig, stage: MapStage, unit: str, run_id: str) -> dict[str, Any]:
    """One item of a map stage (collect: one source); the stage records it in run_stages."""
    logger = get_run_logger()
    report = stage.run_unit(Context(wh, loaded, run_id, logger.info), unit)
    (logger.error if report.status == "failed" else logger.info)(report.summary)
    return report.counts


@task(name="stage", cache_policy=NO_CACHE)
def stage_task(wh: Warehouse, loaded: LoadedConfig, step: registry.Step, run_id: str) -> dict[str, Any]:
    """One whole-warehouse pass of a stage, recorded in run_stages (source '*')."""
    report = run_step(step, Context(wh, loaded, run_id, get_run_logger().info))
    return {**report.counts, "summary": report.summary}


def _run_map(wh: Warehouse, loaded: LoadedConfig, stage: MapStage, run_id: str) -> list[dict[str, Any]]:
    """A map stage's units as concurrent tasks."""
    runner = ThreadPoolTaskRunner(max_workers=loaded.config.collect.concurrency)
    with runner:
        futures = [
            runner.submit(
                unit_task.with_options(tags=[f"stage:{stage.name}", f"source:{unit}"]),
                {"wh": wh, "loaded": loaded, "stage": stage, "unit": unit, "run_id": run_id},
            )
            for unit in stage.units(loaded)
        ]
        return [f.result() for f in futures]


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


def _run_status(reports: list[dict[str, Any]]) -> str:
    failed = sum(r["status"] == "failed" for r in reports)
    if failed == 0:
        return "succeeded"
    return "failed" if failed == len(reports) else "partial"


def _run_name() -> str:
    """'shared-real 2026-11-25 02:00' in the UI instead of a random name."""
    from datetime import UTC, datetime

    stem = Path(str(flow_run.parameters.get("config_path", "pipeline"))).stem
    return f"{stem} {datetime.now(UTC):%Y-%m-%d %H:%M}"


@flow(name="globmed-pipeline", flow_run_name=_run_name, log_prints=True)
def pipeline_flow(config_path: str, warehouse: str | None = None) -> dict[str, Any]:
    """Run the pipeline for one config; returns the run summary (also stored in the warehouse)."""
    loaded = load_config(config_path)
    configured = loaded.resolve(loaded.config.warehouse) if loaded.config.warehouse else None
    wh_path = resolve_warehouse_path(warehouse, configured)
    run_id = uuid.uuid4().hex
    flow_run_id = flow_run.get_id()
    with Warehouse(wh_path) as wh:
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
        try:
            for step in registry.plan(loaded.config):
                if isinstance(step.stage, MapStage):
                    reports = _run_map(wh, loaded, step.stage, run_id)
                elif step.name == "export" and _run_status(reports) == "failed":
                    continue  # every source failed: nothing new to publish
                else:
                    stages[step.name] = stage_task.with_options(
                        task_run_name=step.name, tags=[f"stage:{step.name}"]
                    )(wh, loaded, step, run_id)
        except BaseException as exc:
            wh.finish_run(run_id, "failed", {}, error=f"{type(exc).__name__}: {exc}")
            raise
        status = _run_status(reports)
        if status == "succeeded" and stages.get("export", {}).get("status") == "failed":
            status = "partial"  # the data is in the warehouse, but a version could not be published
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
        wh.finish_run(run_id, status, counts)
        entry_rows = entry_count_table(wh)
        report = quality_report(wh) if loaded.config.quality.enabled else None
        exported = stages.get("export", {})
        card = (
            card_text(get_version(wh, loaded.config.export.repo_id, exported["version"]))
            if exported.get("version")
            else None
        )
        duplicate_rows = wh.query_dicts(
            "SELECT source, kept_source, language, method, duplicates FROM v_duplicate_pairs ORDER BY ALL"
        )
    table = run_table(reports)
    create_table_artifact(
        key="globmed-collect", table=table, description=f"Collect stage per source, run {run_id} ({status})"
    )
    if entry_rows:
        create_table_artifact(
            key="globmed-entry-counts",
            table=entry_rows,
            description="Active entries per source, language, task and stage",
        )
    if report is not None:
        create_markdown_artifact(
            key="globmed-quality",
            markdown=render_markdown(report),
            description="Quality pass rates per source, language, task and rule",
        )
    if duplicate_rows:
        create_table_artifact(
            key="globmed-duplicates",
            table=[{**r, "duplicates": int(r["duplicates"])} for r in duplicate_rows],
            description="Duplicates excluded, per (source, source of the kept entry, language, method)",
        )
    if card is not None:
        create_markdown_artifact(
            key="globmed-dataset-card",
            markdown=card,
            description=f"Dataset card of {loaded.config.export.repo_id} v{exported['version']}",
        )
    return {
        "run_id": run_id,
        "flow_run_id": str(flow_run_id) if flow_run_id else None,
        "status": status,
        "warehouse": str(Path(wh_path).resolve()),
        "sources": reports,
        "stages": stages,
    }
