"""The model registry in the warehouse (`models`, migration 0010) and its views v_models and
v_model_gain. A model's id is derived from its inputs, so a re-run of the same training replaces
its row instead of adding a second one."""

from __future__ import annotations

import json
import re
from typing import Any

from globmed_data.bench.dataset import DatasetVersion
from globmed_data.train.recipe import Recipe
from globmed_data.warehouse import Warehouse, now


def model_id_for(base: str, version: DatasetVersion, recipe: Recipe) -> str:
    """<base name>-<dataset name>-v<version>-<recipe hash[:8]>: readable, and the same for the same
    base, version and recipe (a version number names one fingerprint in a repository)."""
    base_name = re.split(r"[/:]", base.rstrip("/"))[-1].removesuffix(".gguf")
    dataset_name = version.repo_id.split("/")[-1]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{base_name}-{dataset_name}-v{version.version}").strip("-")
    return f"{stem[:80]}-{recipe.digest()[:8]}"


def start(wh: Warehouse, model_id: str, base: str, version: DatasetVersion, recipe: Recipe) -> None:
    with wh.transaction() as con:
        con.execute("DELETE FROM models WHERE model_id = ?", [model_id])
        con.execute(
            "INSERT INTO models (model_id, base_model, method, repo_id, version, fingerprint, recipe_hash, "
            "recipe, status, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)",
            [
                model_id,
                base,
                recipe.method,
                version.repo_id,
                version.version,
                version.fingerprint,
                recipe.digest(),
                json.dumps(recipe.model_dump(mode="json"), sort_keys=True),
                now(),
            ],
        )


def finish(wh: Warehouse, model_id: str, fields: dict[str, Any]) -> None:
    """status 'trained' with the training figures, the artifacts and the model's spec."""
    values = {**fields, "status": "trained", "finished_at": now()}
    for key in ("examples_per_language", "artifacts"):
        if key in values:
            values[key] = json.dumps(values[key], sort_keys=True)
    columns = ", ".join(f"{k} = ?" for k in values)
    with wh.transaction() as con:
        con.execute(f"UPDATE models SET {columns} WHERE model_id = ?", [*values.values(), model_id])


def fail(wh: Warehouse, model_id: str, error: str) -> None:
    with wh.transaction() as con:
        con.execute(
            "UPDATE models SET status = 'failed', error = ?, finished_at = ? WHERE model_id = ?",
            [error, now(), model_id],
        )


def set_bench_runs(wh: Warehouse, model_id: str, base_run: str | None, trained_run: str | None) -> None:
    with wh.transaction() as con:
        con.execute(
            "UPDATE models SET base_bench_run_id = ?, trained_bench_run_id = ? WHERE model_id = ?",
            [base_run, trained_run, model_id],
        )


def set_artifacts(wh: Warehouse, model_id: str, artifacts: dict[str, str]) -> None:
    with wh.transaction() as con:
        con.execute(
            "UPDATE models SET artifacts = ? WHERE model_id = ?",
            [json.dumps(artifacts, sort_keys=True), model_id],
        )


def models(wh: Warehouse, limit: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM v_models" + (f" LIMIT {int(limit)}" if limit else "")
    return wh.query_dicts(sql)


def find_model(wh: Warehouse, prefix: str) -> dict[str, Any] | None:
    rows = wh.query_dicts("SELECT * FROM models WHERE starts_with(model_id, ?)", [prefix])
    if len(rows) > 1:
        raise ValueError(f"'{prefix}' names {len(rows)} models: give more of the id")
    if not rows:
        return None
    row = rows[0]
    for key in ("recipe", "examples_per_language", "artifacts"):
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


def gains(wh: Warehouse, model_id: str) -> list[dict[str, Any]]:
    return wh.query_dicts(
        "SELECT * FROM v_model_gain WHERE model_id = ? ORDER BY task, split, resource, language", [model_id]
    )
