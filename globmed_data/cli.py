"""The `globmed` command line. Prefect is imported only by `run`, so other commands start fast.

Exit codes: 0 success; 1 unexpected error; 2 invalid configuration or usage (nothing was done);
3 the run finished but some sources failed (partial); 4 every source failed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from globmed_data.config import ConfigError, config_json_schema, load_config
from globmed_data.warehouse import Warehouse, WarehouseError, resolve_warehouse_path

app = typer.Typer(
    help="globmed-data: build a versioned multilingual medical dataset.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect and validate pipeline configurations.", no_args_is_help=True)
app.add_typer(config_app, name="config")
quality_app = typer.Typer(help="Quality decisions: pass rates, rule hits, samples.", no_args_is_help=True)
app.add_typer(quality_app, name="quality")
console = Console(stderr=True)
# Piped output is not cut at 80 columns: tables stay readable in logs and CI.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)

EXIT_CONFIG, EXIT_PARTIAL, EXIT_FAILED = 2, 3, 4
WarehouseOpt = typer.Option(
    None,
    "--warehouse",
    "-w",
    help="DuckDB file (default: $GLOBMED_WAREHOUSE, "
    "then the config's `warehouse`, then .globmed/warehouse.duckdb).",
)


def _fail(message: str, code: int) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _open_read(warehouse: Path | None) -> Warehouse:
    try:
        return Warehouse(resolve_warehouse_path(warehouse), read_only=True)
    except WarehouseError as exc:
        raise _fail(str(exc), EXIT_CONFIG) from None


@app.command()
def run(
    config: Path = typer.Option(..., "--config", "-c", help="Pipeline config (YAML)."),
    warehouse: Path | None = WarehouseOpt,
) -> None:
    """Run the pipeline flow (Prefect; ephemeral unless PREFECT_API_URL points at a server)."""
    try:
        loaded = load_config(config)  # refuse an invalid config before Prefect even starts
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_CONFIG) from None
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.pipeline import pipeline_flow

    enabled = [s.name for s in loaded.config.sources if s.enabled]
    console.print(f"running [bold]{loaded.config.name}[/] ({len(enabled)} sources) from {config}")
    result = pipeline_flow(config_path=str(config), warehouse=str(warehouse) if warehouse else None)
    _print_run(result)
    code = {"succeeded": 0, "partial": EXIT_PARTIAL, "failed": EXIT_FAILED}[result["status"]]
    raise typer.Exit(code)


def _print_run(result: dict[str, Any]) -> None:
    table = Table(title=f"run {result['run_id'][:12]} — {result['status']}", title_justify="left")
    for col in (
        "source",
        "status",
        "files",
        "records",
        "added",
        "updated",
        "unchanged",
        "quarantined",
        "vanished",
        "seconds",
    ):
        table.add_column(col, justify="left" if col in ("source", "status") else "right")
    for r in result["sources"]:
        style = {"failed": "red", "skipped": "dim"}.get(r["status"], "")
        table.add_row(
            r["source"],
            r["status"],
            str(r["files"]),
            str(r["records"]),
            str(r["added"]),
            str(r["updated"]),
            str(r["unchanged"]),
            str(r["quarantined"]),
            str(r["vanished"]),
            f"{r['seconds']:.2f}",
            style=style,
        )
    out.print(table)
    for r in result["sources"]:
        if r["error"]:
            console.print(f"[red]{r['source']}[/]: {r['error']}", highlight=False)
    stages = result.get("stages", {})
    if "langid" in stages:
        lid = stages["langid"]
        decided = ", ".join(f"{k} {v}" for k, v in lid["totals"].items())
        out.print(
            f"langid: {lid['checked']} entries decided in {lid['seconds']:.1f}s; all entries: {decided}"
        )
    if "quality" in stages:
        q = stages["quality"]
        t = q["totals"]
        out.print(
            f"quality: {q['checked']} entries checked in {q['seconds']:.1f}s; all entries: "
            f"{t['passed']} passed, {t['rejected']} rejected (`globmed quality report` for details)"
        )
    if "dedup" in stages:
        d = stages["dedup"]
        out.print(
            f"dedup: {d['checked']} entries signed in {d['seconds']:.1f}s; {d['clusters']} clusters, "
            f"{d['duplicates']} duplicates excluded ({d['exact_duplicates']} exact, "
            f"{d['near_duplicates']} near), "
            f"{d['contaminated']} train entries contaminated"
        )
    console.print(f"warehouse: {result['warehouse']}")


@app.command()
def status(
    warehouse: Path | None = WarehouseOpt,
    as_json: bool = typer.Option(False, "--json", help="Print one stable JSON object (docs/cli.md)."),
) -> None:
    """Counts per source, language, task and stage, and quarantine counts by reason."""
    from globmed_data.summary import status as status_of

    with _open_read(warehouse) as wh:
        data = status_of(wh)
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    out.print(
        f"[bold]{data['entries']}[/] active entries in {data['warehouse']} "
        f"({data['quarantined']} quarantined records, {data['vanished']} vanished entries)"
    )
    for title, key in (
        ("language", "by_language"),
        ("task", "by_task"),
        ("source", "by_source"),
        ("split", "by_split"),
        ("quarantine reason", "quarantine_by_reason"),
        ("language-ID decision", "langid"),
    ):
        table = Table(title=f"by {title}", title_justify="left")
        table.add_column(title)
        table.add_column("count", justify="right")
        for k, v in data[key].items():
            table.add_row(k, str(v))
        out.print(table)
    d = data["dedup"]
    out.print(
        f"dedup: {d['clusters']} clusters, {d['duplicates']} duplicates, {d['contaminated']} contaminated; "
        f"{data['curated']} curated entries"
    )
    q = data["quality"]
    if q["checked"]:
        out.print(f"quality: {q['passed']} passed, {q['rejected']} rejected of {q['checked']} checked")
        table = Table(title="quality rule hits", title_justify="left")
        for col in ("rule", "rejected", "flagged"):
            table.add_column(col, justify="left" if col == "rule" else "right")
        for rule in sorted(set(q["rejected_by_reason"]) | set(q["flagged_by_reason"])):
            table.add_row(
                rule, str(q["rejected_by_reason"].get(rule, "")), str(q["flagged_by_reason"].get(rule, ""))
            )
        out.print(table)
    if data["last_run"]:
        lr = data["last_run"]
        table = Table(title=f"last run {lr['run_id'][:12]} ({lr['status']})", title_justify="left")
        for col in ("stage", "source", "status", "seconds", "records", "added", "quarantined"):
            table.add_column(col)
        for s in lr["stages"]:
            c = s["counts"]
            table.add_row(
                s["stage"],
                s["source"],
                s["status"],
                f"{s['seconds'] or 0:.2f}",
                str(c.get("records", "")),
                str(c.get("added", "")),
                str(c.get("quarantined", "")),
            )
        out.print(table)


@app.command()
def quarantine(
    warehouse: Path | None = WarehouseOpt,
    source: str | None = typer.Option(None, "--source", "-s", help="Only this source."),
    reason: str | None = typer.Option(None, "--reason", "-r", help="Only this reason code."),
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many rows (0: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array of records."),
) -> None:
    """List quarantined records with their reason codes."""
    from globmed_data.summary import quarantine_rows

    with _open_read(warehouse) as wh:
        rows = quarantine_rows(wh, source, reason, limit or None)
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    table = Table(title=f"{len(rows)} quarantined record(s)", title_justify="left")
    for col in ("source", "where", "reason", "detail", "payload"):
        table.add_column(col, overflow="fold")
    for r in rows:
        payload = (r["payload"] or "")[:80].replace("\n", " ")
        table.add_row(r["source"], f"{r['file']}:{r['locator']}", r["reason"], r["detail"] or "", payload)
    out.print(table)


@quality_app.command("report")
def quality_report_cmd(
    warehouse: Path | None = WarehouseOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Pass rates per source, language and task; hits per rule; language-ID decisions."""
    from globmed_data.quality_report import quality_report, render_markdown

    with _open_read(warehouse) as wh:
        report = quality_report(wh)
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(render_markdown(report))


@quality_app.command("show")
def quality_show(
    warehouse: Path | None = WarehouseOpt,
    reason: str | None = typer.Option(None, "--reason", "-r", help="A rule code (default: any rejection)."),
    source: str | None = typer.Option(None, "--source", "-s", help="Only this source."),
    limit: int = typer.Option(10, "--limit", "-n", help="At most this many entries."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
) -> None:
    """Entries hit by a rule, to read by eye (a stable sample: the same each time)."""
    from globmed_data.quality_report import rejected_samples
    from globmed_data.quality_rules import RULES

    if reason and reason not in RULES and reason != "language_relabelled":
        raise _fail(f"unknown rule {reason!r}; rules are: {', '.join(RULES)}", EXIT_CONFIG)
    with _open_read(warehouse) as wh:
        rows = rejected_samples(wh, reason, source, limit)
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    for r in rows:
        out.print(
            f"[bold]{r['entry_id']}[/] {r['source']} {r['language']} {r['task']} "
            f"reasons={r['reasons']} flags={r['flags']}",
            highlight=False,
        )
        out.print("  " + (r["question"] or r["premise"] or "")[:400].replace("\n", " | "), highlight=False)
        for i, o in enumerate(r["options"] or []):
            out.print(f"    {chr(65 + i)}. {o[:120]}", highlight=False)
    out.print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}")


@config_app.command("validate")
def config_validate(config: Path = typer.Argument(..., help="Pipeline config (YAML).")) -> None:
    """Validate a config without running anything."""
    try:
        loaded = load_config(config)
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_CONFIG) from None
    names = ", ".join(s.name for s in loaded.config.sources)
    out.print(f"{config}: valid ({len(loaded.config.sources)} sources: {names})")


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of the pipeline config (schemas/pipeline-config.schema.json)."""
    sys.stdout.write(json.dumps(config_json_schema(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":  # pragma: no cover
    app()
