"""The export flow: publish the curated view as a new dataset version when it changed (and
retry a version whose publication failed), without collecting again. Run on demand or by the
`export` deployment, for example after reviewing translations or changing export targets.

With `run_stages`, the deciding stages first do any pending work (a killed run's, or a settings
change's); without it, pending work fails the run, as the export refuses to publish a guess.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.locking import warehouse_slot
from flows.naming import unique_run_name
from flows.progress import StageProgress
from globmed_data.config import load_config
from globmed_data.export.stage import export_summary, run_export
from globmed_data.pipeline.runner import run_deciding_stages
from globmed_data.pipeline.stage import Context
from globmed_data.warehouse import Warehouse, resolve_warehouse_path


class ExportFailed(RuntimeError):
    """A target refused the version: the flow run is Failed; the version stays for a retry."""


def _run_name() -> str:
    return unique_run_name("export", Path(str(flow_run.parameters.get("config_path", "export"))).stem)


@flow(name="globmed-export", flow_run_name=_run_name, log_prints=True)
def export_flow(
    config_path: str,
    warehouse: str | None = None,
    run_stages: bool = True,
    publish: bool = True,
    lock_wait_seconds: float | None = None,
) -> dict[str, Any]:
    """Export (and publish) a new version of the config's dataset when its curated view changed.

    Args:
        config_path: the pipeline config (YAML), relative to the working directory.
        warehouse: the DuckDB file (default: $GLOBMED_WAREHOUSE, then the config's).
        run_stages: first run the deciding stages that have pending work.
        publish: push to the configured targets (else only write the version folder).
        lock_wait_seconds: seconds to wait while another run writes the warehouse (default:
            $GLOBMED_LOCK_WAIT, else fail at once naming that run).
    """
    loaded = load_config(config_path)
    configured = loaded.resolve(loaded.config.warehouse) if loaded.config.warehouse else None
    wh_path = resolve_warehouse_path(warehouse, configured)
    logger = get_run_logger()
    holder = f"export {flow_run.get_name() or loaded.config.name}"
    with warehouse_slot(wh_path, what=holder, wait=lock_wait_seconds), Warehouse(wh_path, what=holder) as wh:
        run_id = f"export-{uuid.uuid4().hex[:12]}"
        if run_stages:
            progress = StageProgress(loaded.config.export.repo_id, "export-stages")
            run_deciding_stages(Context(wh, loaded, run_id, logger.info, progress))
        result = run_export(wh, loaded, run_id, publish=publish, log=logger.info)
    logger.info(f"export: {export_summary(result)}")
    if result.get("status") == "failed":
        raise ExportFailed(f"export: {export_summary(result)}")
    return result
