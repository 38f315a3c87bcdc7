"""The CLI's no-change check: is there anything for `globmed run` to do?

A re-run over unchanged data used to cost half a first run (Prefect's start, tasks, artifacts)
to learn that nothing changed. Before starting Prefect, `globmed run` asks the warehouse
whether the last run succeeded under the same config, every source's files are those it
collected (the same checksums the collect stage compares), no stage has pending work, and the
newest version's files are still there. Only then is the run skipped; anything else (a Hub
source, translation, whose backends may have errors to retry, a failed or killed last run, a
lock held by another run) goes through the flow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from globmed_data.config import LoadedConfig
from globmed_data.warehouse import Warehouse


def unchanged_since_last_run(loaded: LoadedConfig, wh_path: Path) -> dict[str, Any] | None:
    """The last run's record (with the dataset's newest version) when nothing changed, else None."""
    from globmed_data.pipeline.curation import pending_work
    from globmed_data.sources.collect import files_unchanged

    if not wh_path.exists() or loaded.config.translate.enabled:
        return None
    try:
        wh = Warehouse(wh_path, read_only=True)
    except Exception:  # busy, or another schema: the flow decides
        return None
    with wh:
        last = wh.query_dicts(
            "SELECT run_id, status, config_hash, finished_at FROM runs ORDER BY started_at DESC LIMIT 1"
        )
        if (
            not last
            or last[0]["status"] != "succeeded"
            or last[0]["config_hash"] != loaded.config.config_hash()
        ):
            return None
        sources = [s for s in loaded.config.sources if s.enabled]
        if not all(files_unchanged(wh, loaded, s) for s in sources):
            return None
        if pending_work(wh, loaded):
            return None
        repo = loaded.config.export.repo_id
        version = None
        if loaded.config.export.enabled:
            newest = wh.query(
                "SELECT version, folder FROM dataset_versions WHERE repo_id = ? "
                "ORDER BY created_at DESC LIMIT 1",
                [repo],
            )
            if not newest or not Path(newest[0][1]).is_dir():
                return None
            version = newest[0][0]
        return {**last[0], "repo_id": repo, "version": version}
