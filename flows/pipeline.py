"""The pipeline flow: every stage in order, one named task per unit of work.

Stages so far: collect (one task per source, run concurrently), then language ID and quality
over every entry whose content or settings changed, then translation (when configured: new
entries, which then get language ID and quality too), then dedup and decontamination, then the
export of a new dataset version when the curated view changed (published to the configured
targets, with a `globmed.dataset.published` event).
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
from globmed_data.dedup.stage import run_dedup
from globmed_data.export.stage import card_text, run_export
from globmed_data.export.versions import get_version
from globmed_data.langid.stage import run_langid
from globmed_data.pipeline.pending import record_stage_settings
from globmed_data.quality.report import quality_report, render_markdown
from globmed_data.quality.stage import run_quality
from globmed_data.sources.collect import collect_source
from globmed_data.summary import entry_count_table, run_table
from globmed_data.translate.stage import run_translate
from globmed_data.warehouse import Warehouse, resolve_warehouse_path


# No timeout: Prefect cannot interrupt a worker thread anyway; a failing read ends by itself.
@task(name="collect-source", task_run_name="collect {source_name}", cache_policy=NO_CACHE)
def collect_task(wh: Warehouse, loaded: LoadedConfig, source_name: str, run_id: str) -> dict[str, Any]:
    logger = get_run_logger()
    report = collect_source(wh, loaded, loaded.config.source(source_name), run_id, log=logger.info)
    line = (
        f"{source_name}: {report.status}; {report.records} records, +{report.added} new, "
        f"{report.updated} updated, {report.quarantined} quarantined, {report.vanished} vanished "
        f"in {report.seconds:.1f}s"
    )
    (logger.error if report.status == "failed" else logger.info)(
        line + (f": {report.error}" if report.error else "")
    )
    return report.as_dict()


def _stage(wh: Warehouse, run_id: str, name: str, work: Any) -> dict[str, Any]:
    """Run one whole-warehouse stage, recording it in run_stages (source '*')."""
    from globmed_data.warehouse import now

    logger = get_run_logger()
    started = now()
    try:
        counts = work(log=logger.info)
    except Exception as exc:
        wh.record_stage(run_id, name, "*", "failed", started, {}, error=f"{type(exc).__name__}: {exc}")
        raise
    wh.record_stage(run_id, name, "*", "succeeded", started, counts)
    logger.info(f"{name}: {counts}")
    return counts


@task(name="langid", task_run_name="langid", cache_policy=NO_CACHE, tags=["stage:langid"])
def langid_task(wh: Warehouse, loaded: LoadedConfig, run_id: str, stage: str = "langid") -> dict[str, Any]:
    return _stage(wh, run_id, stage, lambda log: run_langid(wh, loaded, run_id, log=log))


@task(name="quality", task_run_name="quality", cache_policy=NO_CACHE, tags=["stage:quality"])
def quality_task(wh: Warehouse, loaded: LoadedConfig, run_id: str, stage: str = "quality") -> dict[str, Any]:
    return _stage(wh, run_id, stage, lambda log: run_quality(wh, loaded, run_id, log=log))


@task(name="translate", task_run_name="translate", cache_policy=NO_CACHE, tags=["stage:translate"])
def translate_task(wh: Warehouse, loaded: LoadedConfig, run_id: str) -> dict[str, Any]:
    return _stage(wh, run_id, "translate", lambda log: run_translate(wh, loaded, run_id, log=log))


@task(name="dedup", task_run_name="dedup", cache_policy=NO_CACHE, tags=["stage:dedup"])
def dedup_task(wh: Warehouse, loaded: LoadedConfig, run_id: str) -> dict[str, Any]:
    return _stage(wh, run_id, "dedup", lambda log: run_dedup(wh, loaded, run_id, log=log))


@task(name="export", task_run_name="export", cache_policy=NO_CACHE, tags=["stage:export"])
def export_task(wh: Warehouse, loaded: LoadedConfig, run_id: str) -> dict[str, Any]:
    return _stage(wh, run_id, "export", lambda log: run_export(wh, loaded, run_id, log=log))


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
    sources = [s for s in loaded.config.sources if s.enabled]
    with Warehouse(wh_path) as wh:
        crashed = wh.start_run(
            run_id,
            config_hash=loaded.config.config_hash(),
            config_path=str(loaded.path),
            flow_run_id=str(flow_run_id) if flow_run_id else None,
        )
        _mark_crashed(crashed)
        record_stage_settings(wh, loaded)
        try:
            runner = ThreadPoolTaskRunner(max_workers=loaded.config.collect.concurrency)
            with runner:
                futures = [
                    runner.submit(
                        collect_task.with_options(tags=["stage:collect", f"source:{s.name}"]),
                        {"wh": wh, "loaded": loaded, "source_name": s.name, "run_id": run_id},
                    )
                    for s in sources
                ]
                reports = [f.result() for f in futures]
            stages: dict[str, Any] = {}
            if loaded.config.langid.enabled:
                stages["langid"] = langid_task(wh, loaded, run_id)
            if loaded.config.quality.enabled:
                stages["quality"] = quality_task(wh, loaded, run_id)
            if loaded.config.translate.enabled:
                stages["translate"] = translate_task(wh, loaded, run_id)
                # The new entries get language ID and quality rules like any other (only they are
                # new, so these passes are short); recorded as langid:translated, quality:translated.
                if loaded.config.langid.enabled:
                    stages["langid:translated"] = langid_task.with_options(
                        task_run_name="langid (translated)"
                    )(wh, loaded, run_id, stage="langid:translated")
                if loaded.config.quality.enabled:
                    stages["quality:translated"] = quality_task.with_options(
                        task_run_name="quality (translated)"
                    )(wh, loaded, run_id, stage="quality:translated")
            if loaded.config.dedup.enabled:
                stages["dedup"] = dedup_task(wh, loaded, run_id)
            if loaded.config.export.enabled and _run_status(reports) != "failed":
                stages["export"] = export_task(wh, loaded, run_id)
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
