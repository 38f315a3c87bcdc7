"""`globmed bench run|list|show|compare` (docs/cli.md). Prefect and the harness are imported only
by `bench run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from globmed_data.clitools import (
    EXIT_CONFIG,
    EXIT_FAILED,
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

bench_app = typer.Typer(
    help="Benchmark models on a dataset version (lm-evaluation-harness), per task and language.",
    no_args_is_help=True,
)


@bench_app.command("run")
def bench_run(
    dataset: str = typer.Option(
        ..., "--dataset", "-d", help="Version folder, REPO_PATH@vX.Y.Z or OWNER/NAME@vX.Y.Z."
    ),
    model: list[str] = typer.Option(
        None, "--model", "-m", help="Model spec (repeatable); default: bench.models."
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Pipeline config: bench settings, low-resource languages."
    ),
    tasks: list[str] = typer.Option(None, "--tasks", help="Tasks to score (repeatable); default: all."),
    languages: list[str] = typer.Option(None, "--languages", help="Languages (repeatable); default: all."),
    split: list[str] = typer.Option(None, "--split", help="Splits (repeatable); default: test."),
    mode: str | None = typer.Option(None, "--mode", help="loglik | generate (default: by engine)."),
    limit: int | None = typer.Option(None, "--limit", help="Items per (task, language, split) at most."),
    instruction: str | None = typer.Option(None, "--instruction", help="en | item: the prompts' language."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Harness batch size."),
    judge: str | None = typer.Option(
        None, "--judge", help="Model spec that grades open-QA replies (yes/no)."
    ),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="Hub endpoint to pull OWNER/NAME@vX.Y.Z from."
    ),
    warehouse: Path | None = WarehouseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Score models on a version's splits; store per-item results; print accuracy with intervals."""
    from globmed_data.bench.run import plan_bench

    overrides = {
        "tasks": tasks,
        "languages": languages,
        "splits": split,
        "mode": mode,
        "limit": limit,
        "instruction": instruction,
        "batch_size": batch_size,
        "judge": judge,
    }
    request = {
        "dataset": dataset,
        "models": model or None,
        "config_path": str(config) if config else None,
        "warehouse": str(warehouse) if warehouse else None,
        "overrides": overrides,
        "endpoint": endpoint,
    }
    try:  # refuse a bad request before Prefect or any model starts
        plan_bench(
            request["dataset"],
            request["models"],
            config_path=request["config_path"],
            warehouse=request["warehouse"],
            overrides=overrides,
            endpoint=endpoint,
        )
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None
    prefect_environment()
    from flows.bench import bench_flow, outcome

    try:
        summary, _ = outcome(start_flow(bench_flow, **request))  # failed models: in the summary
    except ConfigError as exc:  # what only the executor can tell: a model's GPUs, say
        raise fail(str(exc), EXIT_CONFIG) from None
    except Exception as exc:  # Prefect could not start, the warehouse is held, the disk is full...
        raise fail(f"{type(exc).__name__}: {exc}".splitlines()[0], 1) from None
    if as_json:
        print_json(summary)
    else:
        _print_scores(summary["results"], summary["gaps"])
        for r in summary["runs"]:
            if r["status"] == "failed":
                console.print(f"[red]{r['model']}[/]: {r['error']}", highlight=False)
        console.print(f"leaderboard: {summary['files']['leaderboard']}\nchart: {summary['files']['chart']}")
    code = {"succeeded": 0, "partial": EXIT_PARTIAL, "failed": EXIT_FAILED}[summary["status"]]
    raise typer.Exit(code)


def _print_scores(results: list[dict[str, Any]], gaps: list[dict[str, Any]]) -> None:
    table = Table(title="accuracy per language (95% Wilson interval)", title_justify="left")
    for col in (
        "model",
        "task",
        "split",
        "language",
        "resource",
        "n",
        "accuracy",
        "95% CI",
        "invalid",
        "chance",
    ):
        table.add_column(col, justify="right" if col in ("n", "accuracy", "invalid", "chance") else "left")
    for r in results:
        chance = f"{r['chance']:.3f}" if r.get("chance") is not None else ""
        table.add_row(
            r["model"],
            r["task"],
            r["split"],
            r["language"],
            r["resource"],
            str(r["n"]),
            f"{r['accuracy']:.3f}",
            f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
            f"{r['invalid_rate']:.3f}",
            chance,
        )
    out.print(table)
    for g in gaps:
        out.print(
            f"gap {g['model']} {g['task']}/{g['split']}: high {g['high_accuracy']:.3f} "
            f"({g['high_languages']} lang.) − low {g['low_accuracy']:.3f} ({g['low_languages']} lang.) "
            f"= {g['gap']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]",
            highlight=False,
        )


@bench_app.command("list")
def bench_list(
    warehouse: Path | None = WarehouseOpt,
    limit: int = typer.Option(50, "--limit", help="Newest runs to show."),
    as_json: bool = JsonOpt,
) -> None:
    """Benchmark runs, newest first."""
    from globmed_data.bench import store

    with open_read(warehouse) as wh:
        rows = store.runs(wh, limit)
    if as_json:
        print_json({"runs": rows})
        return
    table = Table(title=f"{len(rows)} benchmark run(s)", title_justify="left")
    for col in ("run", "model", "dataset", "mode", "status", "items", "items/s", "started"):
        table.add_column(col)
    for r in rows:
        rate = f"{r['items_per_second']:.1f}" if r["items_per_second"] else ""
        table.add_row(
            r["bench_run_id"][:12],
            r["model"],
            f"{r['repo_id']} v{r['version']}",
            r["mode"],
            r["status"],
            str(r["items"] or ""),
            rate,
            f"{r['started_at']:%Y-%m-%d %H:%M}",
        )
    out.print(table)


@bench_app.command("show")
def bench_show(
    run_id: str = typer.Argument(..., help="A benchmark run id (or a unique prefix)."),
    warehouse: Path | None = WarehouseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """One run: its settings, scores per language and the gap."""
    from globmed_data.bench import store

    with open_read(warehouse) as wh:
        try:
            run = store.find_run(wh, run_id)
        except ValueError as exc:
            raise fail(str(exc), EXIT_CONFIG) from None
        if run is None:
            raise fail(f"no benchmark run {run_id}: `globmed bench list` shows them", EXIT_CONFIG)
        results, gaps = store.scores(wh, [run["bench_run_id"]]), store.gaps(wh, [run["bench_run_id"]])
    if as_json:
        print_json({"run": run, "results": results, "gaps": gaps})
        return
    out.print(
        f"run {run['bench_run_id']}: {run['model']} on {run['repo_id']} v{run['version']} "
        f"({run['mode']}, prompts {run['prompt_version']}) — {run['status']}",
        highlight=False,
    )
    if run["error"]:
        console.print(f"[red]{run['error']}[/]", highlight=False)
    _print_scores(results, gaps)


@bench_app.command("compare")
def bench_compare(
    version: str = typer.Argument(..., help="Dataset version, e.g. 1.0.0 or v1.0.0."),
    repo: str | None = typer.Option(None, "--repo", help="Dataset repo (default: the only one benchmarked)."),
    model: list[str] = typer.Option(None, "--model", "-m", help="Models to compare (default: all)."),
    warehouse: Path | None = WarehouseOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The newest run of each model on a version, side by side per task and language."""
    from globmed_data.bench import store

    version = version.removeprefix("v")
    with open_read(warehouse) as wh:
        repos = [
            r[0] for r in wh.query("SELECT DISTINCT repo_id FROM bench_runs WHERE version = ?", [version])
        ]
        if repo is None and len(repos) > 1:
            raise fail(
                f"v{version} was benchmarked in {', '.join(repos)}: choose one with --repo", EXIT_CONFIG
            )
        repo = repo or (repos[0] if repos else "")
        ids = store.latest_runs(wh, repo, version, model or None)
        results, gaps = store.scores(wh, ids), store.gaps(wh, ids)
    if not ids:
        raise fail(f"no succeeded benchmark run on {repo or 'any repo'} v{version}", EXIT_CONFIG)
    if as_json:
        print_json({"repo_id": repo, "version": version, "runs": ids, "results": results, "gaps": gaps})
        return
    models = sorted({r["model"] for r in results})
    table = Table(title=f"{repo} v{version}: accuracy [95% CI]", title_justify="left")
    for col in ("task", "split", "language", *models):
        table.add_column(col)
    cells: dict[tuple[str, str, str], dict[str, str]] = {}
    for r in results:
        key = (r["task"], r["split"], r["language"] + ("*" if r["resource"] == "low" else ""))
        cells.setdefault(key, {})[r["model"]] = f"{r['accuracy']:.3f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
    for key in sorted(cells):
        table.add_row(*key, *(cells[key].get(m, "") for m in models))
    out.print(table)
    for g in gaps:
        out.print(
            f"gap {g['model']} {g['task']}/{g['split']}: {g['gap']:+.3f} "
            f"[{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]",
            highlight=False,
        )
