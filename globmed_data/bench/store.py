"""Benchmark results in the warehouse: bench_runs and bench_items (migration 0009); scores and
the gap are the views v_bench_scores and v_bench_gap, which every report reads."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from globmed_data.bench.dataset import DatasetVersion
from globmed_data.bench.evaluate import ItemRow
from globmed_data.bench.prompts import PROMPT_VERSION
from globmed_data.bench.settings import BenchSettings
from globmed_data.bench.specs import ModelSpec
from globmed_data.warehouse import Warehouse, now

_ITEM_SCHEMA = pa.schema(
    [
        ("bench_run_id", pa.string()),
        ("entry_id", pa.string()),
        ("config", pa.string()),
        ("task", pa.string()),
        ("language", pa.string()),
        ("split", pa.string()),
        ("resource", pa.string()),
        ("prompt_language", pa.string()),
        ("prediction", pa.string()),
        ("reply", pa.string()),
        ("gold", pa.string()),
        ("n_options", pa.int32()),
        ("correct", pa.bool_()),
        ("score", pa.float64()),
        ("invalid", pa.bool_()),
        ("option_logliks", pa.list_(pa.float64())),
        ("judge_correct", pa.bool_()),
    ]
)


def start_run(
    wh: Warehouse, run_id: str, spec: ModelSpec, version: DatasetVersion, mode: str, settings: BenchSettings
) -> None:
    with wh.transaction() as con:
        con.execute(
            "INSERT INTO bench_runs (bench_run_id, model, engine, repo_id, version, fingerprint, mode, "
            "prompt_version, instruction, item_limit, settings, status, started_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?)",
            [
                run_id,
                spec.spec,
                spec.engine,
                version.repo_id,
                version.version,
                version.fingerprint,
                mode,
                PROMPT_VERSION,
                settings.instruction,
                settings.limit,
                json.dumps(settings.model_dump(mode="json"), sort_keys=True),
                now(),
            ],
        )


def finish_run(
    wh: Warehouse, run_id: str, rows: list[ItemRow], seconds: float, harness_seconds: float
) -> None:
    """The items and the run's end in one transaction: a run is succeeded with all its items or not at all."""
    columns = {
        name: [getattr(r, name) for r in rows] for name in _ITEM_SCHEMA.names if name != "bench_run_id"
    }
    table = pa.table({"bench_run_id": [run_id] * len(rows), **columns}, schema=_ITEM_SCHEMA)
    with wh.transaction() as con:
        con.register("b_items", table)
        try:
            con.execute("INSERT INTO bench_items SELECT * FROM b_items")
        finally:
            con.unregister("b_items")
        con.execute(
            "UPDATE bench_runs SET status = 'succeeded', items = ?, seconds = ?, harness_seconds = ?, "
            "finished_at = ? WHERE bench_run_id = ?",
            [len(rows), seconds, harness_seconds, now(), run_id],
        )


def fail_run(wh: Warehouse, run_id: str, error: str) -> None:
    with wh.transaction() as con:
        con.execute(
            "UPDATE bench_runs SET status = 'failed', error = ?, finished_at = ? WHERE bench_run_id = ?",
            [error[:2000], now(), run_id],
        )


SCORE_COLUMNS = (
    "model",
    "task",
    "language",
    "split",
    "resource",
    "n",
    "accuracy",
    "ci_low",
    "ci_high",
    "invalid_rate",
    "chance",
    "judge_accuracy",
)


def scores(wh: Warehouse, run_ids: list[str]) -> list[dict[str, Any]]:
    return wh.query_dicts(
        f"SELECT bench_run_id, {', '.join(SCORE_COLUMNS)} FROM v_bench_scores "
        "WHERE list_contains(?, bench_run_id) ORDER BY model, task, split, resource, language",
        [run_ids],
    )


def gaps(wh: Warehouse, run_ids: list[str]) -> list[dict[str, Any]]:
    return wh.query_dicts(
        "SELECT bench_run_id, model, task, split, high_languages, low_languages, high_accuracy, "
        "low_accuracy, gap, ci_low, ci_high FROM v_bench_gap WHERE list_contains(?, bench_run_id) "
        "ORDER BY model, task, split",
        [run_ids],
    )


def runs(wh: Warehouse, limit: int | None = None) -> list[dict[str, Any]]:
    sql = "SELECT * FROM v_bench_runs"
    return wh.query_dicts(sql + (f" LIMIT {int(limit)}" if limit else ""))


def find_run(wh: Warehouse, prefix: str) -> dict[str, Any] | None:
    found = wh.query_dicts("SELECT * FROM v_bench_runs WHERE starts_with(bench_run_id, ?)", [prefix])
    if len(found) > 1:
        raise ValueError(f"run id prefix '{prefix}' matches {len(found)} runs: give more of it")
    return found[0] if found else None


def latest_runs(wh: Warehouse, repo_id: str, version: str, models: list[str] | None = None) -> list[str]:
    """The newest succeeded run per (model, mode) on a version (what `bench compare` compares)."""
    rows = wh.query(
        "SELECT bench_run_id, model FROM (SELECT *, row_number() OVER (PARTITION BY model, mode "
        "ORDER BY started_at DESC) AS k FROM bench_runs WHERE status = 'succeeded' AND repo_id = ? "
        "AND version = ?) WHERE k = 1 ORDER BY model",
        [repo_id, version],
    )
    return [r[0] for r in rows if not models or r[1] in models]
