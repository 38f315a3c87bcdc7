"""What `prefect deploy --all --prefect-file infra/prefect.yaml` checks before it stores anything
(infra/prefect.yaml calls `check` as its build step; `python -m globmed_data.ops.deploy_check`
runs it alone). Without it, a deployment made without GLOBMED_HOME was stored happily and its
first run crashed with a FileNotFoundError on the worker.

Checked: GLOBMED_HOME names the project folder; every deployment's config and recipe exist and
load; the config's warehouse folder is writable; a trigger on `globmed.dataset.published`
matches the dataset its config publishes; the work pools exist on the server.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

PUBLISHED = "globmed.dataset.published"


class DeployError(RuntimeError):
    """A deployment would fail when it runs; the message says what to fix."""


def problems(prefect_file: str | Path, home: str | None, pools: set[str] | None) -> list[str]:
    """Every problem found (empty: deployable). `pools`: the server's work pools (None: unknown)."""
    found: list[str] = []
    if not home:
        return [
            "GLOBMED_HOME is not set: export it to the project folder the workers run in (where "
            "configs/ and flows/ are), e.g. `export GLOBMED_HOME=$PWD`, then deploy again"
        ]
    root = Path(home)
    if not (root / "flows" / "pipeline.py").is_file():
        return [f"GLOBMED_HOME={home} is not the globmed-data project folder (no flows/pipeline.py there)"]
    spec = yaml.safe_load(Path(prefect_file).read_text(encoding="utf-8"))
    for deployment in spec.get("deployments", []):
        found += [f"{deployment['name']}: {p}" for p in _deployment_problems(deployment, root, pools)]
    return found


def _deployment_problems(deployment: dict[str, Any], root: Path, pools: set[str] | None) -> list[str]:
    from globmed_data.config import load_config
    from globmed_data.settings import ConfigError

    found: list[str] = []
    params = deployment.get("parameters", {})
    pool = (deployment.get("work_pool") or {}).get("name")
    if pools is not None and pool and pool not in pools:
        found.append(f"work pool '{pool}' does not exist: `prefect work-pool create {pool} --type process`")
    if params.get("recipe_path") and not (root / params["recipe_path"]).is_file():
        found.append(f"recipe {params['recipe_path']} not found under {root}")
    loaded = None
    if params.get("config_path"):
        path = root / params["config_path"]
        if not path.is_file():
            return [*found, f"config {params['config_path']} not found under {root}"]
        try:
            loaded = load_config(path)
        except ConfigError as exc:
            return [*found, f"config {params['config_path']}: {exc}"]
        if loaded.config.warehouse:
            folder = loaded.resolve(loaded.config.warehouse).parent
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK):
                found.append(f"the warehouse folder {folder} is not writable")
    for trigger in deployment.get("triggers", []):
        if PUBLISHED not in trigger.get("expect", []) or loaded is None:
            continue
        wanted = f"globmed.dataset.{loaded.config.export.repo_id}"
        matched = (trigger.get("match") or {}).get("prefect.resource.id")
        if matched != wanted:
            found.append(
                f"its trigger matches {matched!r}, but {params['config_path']} publishes {wanted!r}: "
                "it would never fire"
            )
    return found


def _server_pools() -> set[str] | None:
    try:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            return {p.name for p in client.read_work_pools()}
    except Exception:
        return None  # no server reachable: `prefect deploy` itself will say so


def check(prefect_file: str = "infra/prefect.yaml") -> dict[str, str]:
    """A Prefect deployment step: raise (so `prefect deploy` stops) when a deployment would fail."""
    found = problems(prefect_file, os.environ.get("GLOBMED_HOME"), _server_pools())
    if found:
        raise DeployError("deployments not ready:\n  - " + "\n  - ".join(found))
    return {"globmed_home": os.environ["GLOBMED_HOME"]}


if __name__ == "__main__":
    try:
        print(check(*sys.argv[1:2]))
    except DeployError as exc:
        sys.exit(f"error: {exc}")
