"""The `globmed` command line. Prefect is imported only by `run`, so other commands start fast.

Exit codes: 0 success; 1 unexpected error; 2 invalid configuration or usage (nothing was done);
3 the run finished but some sources failed (partial); 4 every source failed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from globmed_data.bench.cli import bench_app
from globmed_data.clitools import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_PARTIAL,
    WarehouseOpt,
    announce_first_compile,
    console,
    out,
    prefect_environment,
    start_flow,
)
from globmed_data.clitools import (
    fail as _fail,
)
from globmed_data.clitools import (
    open_read as _open_read,
)
from globmed_data.config import config_json_schema, load_config
from globmed_data.ops.lock import WarehouseBusy
from globmed_data.settings import ConfigError
from globmed_data.train.cli import train_app
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
versions_app = typer.Typer(help="Dataset versions: list, show, diff.", no_args_is_help=True)
app.add_typer(versions_app, name="versions")
translate_app = typer.Typer(
    help="Translation: run the stage, evaluate a backend, human review.", no_args_is_help=True
)
app.add_typer(translate_app, name="translate")
stage_app = typer.Typer(help="The pipeline's stages: list them, run one.", no_args_is_help=True)
app.add_typer(stage_app, name="stage")
review_app = typer.Typer(
    help="Export translated entries for review; import the verdicts.", no_args_is_help=True
)
translate_app.add_typer(review_app, name="review")
app.add_typer(bench_app, name="bench")
app.add_typer(train_app, name="train")


@app.command()
def run(
    config: Path = typer.Option(..., "--config", "-c", help="Pipeline config (YAML)."),
    warehouse: Path | None = WarehouseOpt,
    wait: float | None = typer.Option(
        None,
        "--wait",
        help="Seconds to wait while another run writes the warehouse (default: $GLOBMED_LOCK_WAIT, "
        "else fail at once naming that run).",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an operational error."),
) -> None:
    """Run the pipeline flow (Prefect; ephemeral unless PREFECT_API_URL points at a server)."""
    from globmed_data.ops.last_run import remember

    loaded = _load(config)  # refuse an invalid config before Prefect even starts
    wh_path = _warehouse_path(loaded, warehouse)
    _check_writable(wh_path, wait)  # a busy or unwritable warehouse: said now, in one line
    if _nothing_to_do(loaded, wh_path):
        remember(wh_path, config)
        raise typer.Exit(0)
    prefect_environment()
    announce_first_compile()
    from flows.pipeline import RunFailed, pipeline_flow

    if not debug:
        _console_without_tracebacks()
    enabled = [s.name for s in loaded.config.sources if s.enabled]
    console.print(f"running [bold]{loaded.config.name}[/] ({len(enabled)} sources) from {config}")
    state = start_flow(
        pipeline_flow,
        config_path=str(config),
        warehouse=str(warehouse) if warehouse else None,
        lock_wait_seconds=wait,
    )
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, RunFailed):
        outcome = outcome.summary  # sources or stages failed: the flow run says so in Prefect
    elif isinstance(outcome, BaseException):
        if debug:
            raise outcome
        raise _fail(_operational(outcome), EXIT_CONFIG if isinstance(outcome, WarehouseBusy) else 1)
    remember(wh_path, config)
    _print_run(outcome)
    if outcome.get("error"):  # a stage raised: the run stopped there (its cause and what to do)
        hint = _hint(outcome["error"])
        raise _fail(
            outcome["error"] + (f": {hint}" if hint else " (a re-run resumes where this one stopped)"), 1
        )
    code = {"succeeded": 0, "partial": EXIT_PARTIAL, "failed": EXIT_FAILED}[outcome["status"]]
    raise typer.Exit(code)


def _check_writable(wh_path: Path, wait: float | None) -> None:
    """Take and let go of the writer lock: its file proves the folder writable, and a run holding
    it is named (the flow takes it again for the run)."""
    import duckdb

    from globmed_data.ops.lock import writer_lock

    try:
        with writer_lock(wh_path, what="globmed (CLI)", wait=wait):
            if wh_path.exists():  # a process outside globmed (a DuckDB shell) may hold the file
                duckdb.connect(str(wh_path), read_only=True).close()
    except (WarehouseBusy, OSError, duckdb.Error) as exc:
        raise _fail(_operational(exc), EXIT_CONFIG) from None


def _nothing_to_do(loaded: Any, wh_path: Path) -> bool:
    """The no-change fast path: when no source file, setting or pending decision changed since the
    last successful run, say so without starting Prefect (seconds saved on every idle re-run).
    Anything it cannot vouch for (a Hub source, a first run) goes through the flow."""
    from globmed_data.ops.unchanged import unchanged_since_last_run

    last = unchanged_since_last_run(loaded, wh_path)
    if last is None:
        return False
    console.print(
        f"nothing changed since run {last['run_id'][:12]} ({last['finished_at']:%Y-%m-%d %H:%M:%S}): "
        f"no source file, setting or decision to redo; dataset {last['repo_id']} stays at "
        f"v{last['version']}. warehouse: {wh_path}",
        highlight=False,
    )
    return True


class _NoTraceback(logging.Formatter):
    """Prefect's console lines with any traceback cut off (the Prefect UI and the API logs keep
    them whole; `globmed run --debug` prints them)."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        cut = text.find("Traceback (most recent call last)")
        return text if cut < 0 else text[:cut].rstrip() + " (--debug shows the traceback)"


def _console_without_tracebacks() -> None:
    from prefect.logging.handlers import PrefectConsoleHandler

    for logger in (logging.getLogger(), *(logging.getLogger(n) for n in logging.root.manager.loggerDict)):
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, PrefectConsoleHandler) and not isinstance(handler.formatter, _NoTraceback):
                handler.setFormatter(_NoTraceback(handler.formatter))


def _operational(exc: Exception) -> str:
    """One line: what failed and what to do (the traceback is behind --debug)."""
    from globmed_data.pipeline.stage import PendingWork

    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    hint = _hint(text)
    if hint:
        return f"{text}: {hint}"
    if isinstance(exc, PendingWork | WarehouseError | WarehouseBusy):  # their messages say what to do
        return str(exc).splitlines()[0]
    return f"{text} (run again with --debug for the traceback; a re-run resumes where this one stopped)"


def _hint(text: str) -> str | None:
    """What to do about an error whose cause is outside the data: a full disk, a read-only
    location, a DuckDB file another process holds."""
    lowered = text.lower()
    if "no space left" in lowered or "disk full" in lowered:
        return "the disk is full; free space (or move the warehouse with --warehouse), then run again"
    if "read-only" in lowered or "permission denied" in lowered:
        return "the location is not writable; choose another with --warehouse or fix its permissions"
    if "could not set lock" in lowered:  # DuckDB's words for a file another process holds
        return "another process has the warehouse; wait for it to finish, or use another --warehouse"
    return None


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
            hint = _hint(r["error"])
            console.print(
                f"[red]{r['source']}[/]: {r['error']}" + (f" ({hint})" if hint else ""), highlight=False
            )
    for name, counts in result.get("stages", {}).items():
        out.print(f"{name}: {counts['summary']}", highlight=False)
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
    if data["undecided"]:
        listed = ", ".join(f"{stage} {n}" for stage, n in data["undecided"].items())
        out.print(f"[yellow]undecided (left out of the curated view until the stages run):[/] {listed}")
    for v in data["versions"]:
        out.print(
            f"dataset {v['repo_id']}: latest v{v['version']} ({v['status']}), {v['entries']} entries"
            + (f"; error: {v['error']}" if v["error"] else ""),
            highlight=False,
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
    from globmed_data.summary import quarantine_count, quarantine_rows

    with _open_read(warehouse) as wh:
        rows = quarantine_rows(wh, source, reason, limit or None)
        total = quarantine_count(wh, source, reason)
    shown = f"{len(rows):,} of {total:,}" if len(rows) < total else f"{total:,}"
    if len(rows) < total:  # said on stderr, so the JSON on stdout stays the documented array
        console.print(f"showing {shown} quarantined records (--limit 0 for all)", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    table = Table(title=f"{shown} quarantined record(s)", title_justify="left")
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
    from globmed_data.quality.report import quality_report, render_markdown

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
    from globmed_data.quality.report import rejected_samples
    from globmed_data.quality.rules import RULES

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


@app.command("export")
def export_cmd(
    config: Path = typer.Option(..., "--config", "-c", help="Pipeline config (YAML)."),
    warehouse: Path | None = WarehouseOpt,
    publish: bool = typer.Option(True, "--publish/--no-publish", help="Push to the configured targets."),
    run_stages: bool = typer.Option(
        False, "--run-stages", help="First run the stages that have pending work (langid, quality, ...)."
    ),
) -> None:
    """Export the curated view as a dataset version (none when nothing changed) and publish it.

    Re-running retries a version whose publication failed. Refused (exit 2) while a stage has
    pending work, such as after a killed run, unless --run-stages runs it first."""
    import uuid

    from globmed_data.export.stage import export_summary, run_export
    from globmed_data.pipeline.runner import run_deciding_stages
    from globmed_data.pipeline.stage import Context, PendingWork

    loaded = _load(config)
    say = lambda m: console.print(m, highlight=False)  # noqa: E731
    with _open_write(loaded, warehouse) as wh:
        try:
            if run_stages:
                run_deciding_stages(Context(wh, loaded, f"export-{uuid.uuid4().hex[:12]}", say))
            result = run_export(wh, loaded, publish=publish, log=say)
        except PendingWork as exc:
            raise _fail(str(exc), EXIT_CONFIG) from None
    out.print(f"export: {export_summary(result)}", highlight=False)
    raise typer.Exit(EXIT_PARTIAL if result.get("status") == "failed" else 0)


@app.command()
def pull(
    repo: str = typer.Argument(..., help="Dataset repo id, owner/name."),
    revision: str = typer.Option(..., "--revision", "-r", help="A version tag (v1.4.0), branch or commit."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Folder to download into."),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="Hub endpoint (default: HF_ENDPOINT or the Hub)."
    ),
    fingerprint: str | None = typer.Option(None, "--fingerprint", help="Also require this fingerprint."),
) -> None:
    """Download a dataset version and verify its files and fingerprint."""
    from globmed_data.export.layout import VerificationError
    from globmed_data.export.pull import pull_version

    token = os.environ.get("HF_TOKEN")
    try:
        manifest = pull_version(repo, revision, out_dir, endpoint=endpoint, token=token,
                                expected_fingerprint=fingerprint)  # fmt: skip
    except VerificationError as exc:
        raise _fail(f"verification failed: {exc}", EXIT_FAILED) from None
    except FileExistsError as exc:
        raise _fail(str(exc), EXIT_CONFIG) from None
    except Exception as exc:  # network, auth, unknown revision: the client's message says which
        raise _fail(f"{type(exc).__name__}: {exc}", EXIT_FAILED) from None
    out.print(
        f"{repo}@{revision}: v{manifest['version']}, {manifest['entries']} entries in "
        f"{len(manifest['files'])} files, fingerprint {manifest['fingerprint']} verified → {out_dir}"
    )


def _repo_of(wh: Warehouse, repo: str | None) -> str:
    if repo:
        return repo
    repos = [r for (r,) in wh.query("SELECT DISTINCT repo_id FROM dataset_versions ORDER BY 1")]
    if len(repos) != 1:
        raise _fail(f"pass --repo: the warehouse holds {', '.join(repos) or 'no'} dataset repos", EXIT_CONFIG)
    return repos[0]


def _version_of(wh: Warehouse, repo_id: str, version: str) -> dict[str, Any]:
    from globmed_data.export.versions import VersionNotFound, get_version

    try:
        return get_version(wh, repo_id, version)
    except VersionNotFound as exc:
        raise _fail(str(exc), EXIT_CONFIG) from None


RepoOpt = typer.Option(None, "--repo", help="Dataset repo id (default: the only one in the warehouse).")


@versions_app.command("list")
def versions_list(
    warehouse: Path | None = WarehouseOpt,
    repo: str | None = RepoOpt,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
) -> None:
    """Every version with its status, size and changes."""
    from globmed_data.export.versions import list_versions

    with _open_read(warehouse) as wh:
        rows = list_versions(wh, _repo_of(wh, repo))
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    table = Table(
        title=f"{len(rows)} version(s) of {rows[0]['repo_id'] if rows else repo}", title_justify="left"
    )
    for col in ("version", "status", "bump", "parent", "entries", "added", "removed", "changed", "created"):
        table.add_column(
            col, justify="right" if col in ("entries", "added", "removed", "changed") else "left"
        )
    for r in rows:
        c = r["changes"]
        table.add_row(
            f"v{r['version']}",
            r["status"],
            r["bump"],
            f"v{r['parent_version']}" if r["parent_version"] else "",
            str(r["counts"]["entries"]), str(c["added"]), str(c["removed"]), str(c["changed"]),
            f"{r['created_at']:%Y-%m-%d %H:%M}",
        )  # fmt: skip
    out.print(table)


@versions_app.command("show")
def versions_show(
    version: str = typer.Argument(..., help="A version, e.g. 1.4.0 or v1.4.0."),
    warehouse: Path | None = WarehouseOpt,
    repo: str | None = RepoOpt,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """One version: fingerprint, counts, where it was published, and its card."""
    from globmed_data.export.versions import publications

    with _open_read(warehouse) as wh:
        repo_id = _repo_of(wh, repo)
        record = _version_of(wh, repo_id, version)
        record["publications"] = publications(wh, repo_id, record["version"])
    if as_json:
        sys.stdout.write(json.dumps(record, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    out.print(f"[bold]{repo_id} v{record['version']}[/] — {record['status']}", highlight=False)
    for key in ("fingerprint", "schema_version", "parent_version", "bump", "config_hash", "folder", "error"):
        if record.get(key) is not None:
            out.print(f"  {key}: {record[key]}", highlight=False)
    counts = record["counts"]
    for key in ("by_config", "by_language", "by_split"):
        out.print(f"  {key}: " + ", ".join(f"{k} {v}" for k, v in counts[key].items()), highlight=False)
    for p in record["publications"]:
        out.print(
            f"  {p['target']}: {p['status']} at {p['location']} {p['revision'] or p['error']}",
            highlight=False,
        )


@versions_app.command("diff")
def versions_diff(
    a: str = typer.Argument(..., help="The older version."),
    b: str = typer.Argument(..., help="The newer version."),
    warehouse: Path | None = WarehouseOpt,
    repo: str | None = RepoOpt,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Entries added, removed and changed between two versions, per language, task and source."""
    from globmed_data.export.versions import diff_indexes, version_index

    with _open_read(warehouse) as wh:
        repo_id = _repo_of(wh, repo)
        old, new = (_version_of(wh, repo_id, v)["version"] for v in (a, b))
        diff = diff_indexes(version_index(wh, repo_id, old), version_index(wh, repo_id, new))
    if as_json:
        sys.stdout.write(json.dumps({"from": old, "to": new, **diff}, indent=2, default=int) + "\n")
        return
    out.print(
        f"v{old} → v{new}: {diff['added']} added, {diff['removed']} removed, {diff['changed']} changed, "
        f"{diff['unchanged']} unchanged, {diff['moved_split']} moved between splits"
    )
    if diff["by_group"]:
        table = Table(title_justify="left")
        for col in ("language", "task", "source", "added", "removed", "changed"):
            table.add_column(col, justify="right" if col in ("added", "removed", "changed") else "left")
        for g in diff["by_group"]:
            table.add_row(*(str(g[c]) for c in ("language", "task", "source", "added", "removed", "changed")))
        out.print(table)


def _load(config: Path) -> Any:
    try:
        return load_config(config)
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_CONFIG) from None


def _warehouse_path(loaded: Any, warehouse: Path | None) -> Path:
    configured = loaded.resolve(loaded.config.warehouse) if loaded.config.warehouse else None
    return resolve_warehouse_path(warehouse, configured)


def _open_write(loaded: Any, warehouse: Path | None, wait: float | None = None) -> Warehouse:
    try:
        return Warehouse(_warehouse_path(loaded, warehouse), lock_wait=wait, what="globmed (CLI)")
    except (WarehouseError, WarehouseBusy, OSError) as exc:
        raise _fail(_operational(exc), EXIT_CONFIG) from None


@stage_app.command("list")
def stage_list(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Also show which are enabled, and in what passes."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The stages in pipeline order, with the tables they read and write."""
    from globmed_data.pipeline.registry import STAGES, plan

    loaded = _load(config) if config else None
    passes = [s.name for s in plan(loaded.config)] if loaded else None
    rows = [
        {
            "stage": s.name,
            "enabled": None if passes is None else s.name in passes,
            "decides_entries": s.decides_entries,
            "reads": list(s.reads),
            "writes": list(s.writes),
        }
        for s in STAGES
    ]
    if as_json:
        print(json.dumps({"stages": rows, "passes": passes}, indent=2))
        return
    table = Table(title="stages, in pipeline order", title_justify="left")
    for col in ("stage", "enabled", "reads", "writes"):
        table.add_column(col)
    for r in rows:
        on = "" if r["enabled"] is None else ("yes" if r["enabled"] else "no")
        table.add_row(r["stage"], on, ", ".join(r["reads"]), ", ".join(r["writes"]))
    out.print(table)
    if passes:
        out.print("passes: " + " → ".join(passes), highlight=False)


@stage_app.command("run")
def stage_run(
    name: str = typer.Argument(..., help="A stage (`globmed stage list`): collect, langid, quality, ..."),
    config: Path = typer.Option(..., "--config", "-c", help="Pipeline config (YAML)."),
    warehouse: Path | None = WarehouseOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the stage's counts as JSON."),
) -> None:
    """Run one stage alone, without Prefect: only its pending work, recorded in run_stages.

    The curated view still requires every enabled stage's decisions, so running one stage
    never lets undecided entries through."""
    import uuid
    from contextlib import closing

    from globmed_data.pipeline import registry
    from globmed_data.pipeline.curation import record_stage_settings
    from globmed_data.pipeline.executor import executor_for
    from globmed_data.pipeline.runner import run_step
    from globmed_data.pipeline.stage import Context, PendingWork, enabled

    loaded = _load(config)
    try:
        stage = registry.stage(name)
    except KeyError as exc:
        raise _fail(str(exc.args[0]), EXIT_CONFIG) from None
    if not enabled(stage, loaded.config):
        raise _fail(f"stage '{name}' is disabled in {config} ({name}.enabled: false)", EXIT_CONFIG)
    say = lambda m: console.print(m, highlight=False)  # noqa: E731
    run_id = f"stage-{uuid.uuid4().hex[:12]}"
    with _open_write(loaded, warehouse) as wh, closing(executor_for(loaded.config.executor)) as executor:
        wh.start_run(run_id, config_hash=loaded.config.config_hash(), config_path=str(loaded.path))
        record_stage_settings(wh, loaded)  # as a run does: this config's stages define "decided"
        try:
            report = run_step(registry.Step(name, stage), Context(wh, loaded, run_id, say, executor=executor))
        except PendingWork as exc:
            wh.finish_run(run_id, "failed", {}, error=str(exc))
            raise _fail(str(exc), EXIT_CONFIG) from None
        except Exception as exc:
            wh.finish_run(run_id, "failed", {}, error=f"{type(exc).__name__}: {exc}")
            raise _fail(_operational(exc), 1) from None
        wh.finish_run(run_id, "failed" if report.status == "failed" else "succeeded", {name: report.counts})
    if as_json:
        print(json.dumps(report.counts, indent=2, default=str, ensure_ascii=False))
    else:
        out.print(f"{name}: {report.summary}", highlight=False)
    raise typer.Exit(EXIT_PARTIAL if report.status == "failed" else 0)


@translate_app.command("run")
def translate_run(
    config: Path = typer.Option(..., "--config", "-c", help="Pipeline config (YAML)."),
    warehouse: Path | None = WarehouseOpt,
) -> None:
    """Run the translation jobs alone (`globmed run` runs them inside the pipeline)."""
    from globmed_data.translate.stage import run_translate

    loaded = _load(config)
    if not loaded.config.translate.jobs:
        raise _fail("the config has no translate.jobs", EXIT_CONFIG)
    with _open_write(loaded, warehouse) as wh:
        counts = run_translate(wh, loaded, "cli", log=lambda m: console.print(m, highlight=False))
    out.print(json.dumps(counts, indent=2, ensure_ascii=False))


@translate_app.command("eval")
def translate_eval(
    config: Path = typer.Option(..., "--config", "-c", help="Pipeline config (YAML)."),
    backend: str = typer.Option(..., "--backend", "-b", help="A backend name from translate.backends."),
    languages: str = typer.Option(
        "sw,ha,zu,fr,es,ar,zh,ru,hi,pt", "--languages", "-l", help="Target languages, comma-separated."
    ),
    limit: int = typer.Option(200, "--limit", "-n", help="Sentence pairs per language."),
    tico: Path | None = typer.Option(
        None, "--tico", help="TICO-19 folder (default: ../shared/data/TICO-19)."
    ),
    eval_set: str | None = typer.Option(
        None, "--set", help="A parallel set of translate.eval_sets to score against instead of TICO-19."
    ),
    warehouse: Path | None = WarehouseOpt,
    as_json: bool = typer.Option(False, "--json", help="Print the scores as a JSON array."),
) -> None:
    """Score a backend against reference translations (TICO-19 or a configured parallel set):
    chrF++ and BLEU per language."""
    from globmed_data.translate.evaluate import Corpus, evaluate
    from globmed_data.translate.stage import Translator

    loaded = _load(config)
    if backend not in loaded.config.translate.backends:
        known = ", ".join(loaded.config.translate.backends) or "none"
        raise _fail(f"no backend '{backend}' in translate.backends (defined: {known})", EXIT_CONFIG)
    from globmed_data.sources.locate import SourceError
    from globmed_data.translate.parallel import ConfiguredCorpus, TicoCorpus

    corpus: Corpus
    if eval_set is not None:
        sets = {x.name: x for x in loaded.config.translate.eval_sets}
        if eval_set not in sets:
            raise _fail(f"no eval set '{eval_set}' in translate.eval_sets (defined: "
                        f"{', '.join(sets) or 'none'})", EXIT_CONFIG)  # fmt: skip
        corpus = ConfiguredCorpus(sets[eval_set], loaded)
    else:
        folder = tico or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "TICO-19"
        if not folder.is_dir():
            raise _fail(f"TICO-19 folder not found: {folder} (pass --tico or --set)", EXIT_CONFIG)
        corpus = TicoCorpus(folder)
    langs = [x.strip() for x in languages.split(",") if x.strip()]
    log = lambda m: console.print(m, highlight=False)  # noqa: E731
    with _open_write(loaded, warehouse) as wh:
        try:
            rows = evaluate(Translator(wh, loaded, "eval", log), backend, corpus, langs, limit, log)
        except (FileNotFoundError, SourceError) as exc:  # no pairs, or no files
            raise _fail(str(exc), EXIT_CONFIG) from None
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"{backend} on {corpus.name} (→ xx)", title_justify="left")
    for col in ("language", "segments", "chrF++", "BLEU", "seconds"):
        table.add_column(col, justify="left" if col == "language" else "right")
    for r in rows:
        table.add_row(r["target_language"], str(r["segments"]), f"{r['chrf_pp']:.1f}", f"{r['bleu']:.1f}",
                      f"{r['seconds']:.1f}")  # fmt: skip
    out.print(table)


@review_app.command("export")
def review_export(
    out_file: Path = typer.Option(..., "--out", "-o", help="JSONL file to write."),
    languages: str = typer.Option(
        "", "--languages", "-l", help="Only these target languages (comma-separated)."
    ),
    sample: int = typer.Option(50, "--sample", "-n", help="Entries per target language."),
    warehouse: Path | None = WarehouseOpt,
) -> None:
    """Write a stable sample of unreviewed translated entries per target language for review."""
    from globmed_data.translate.review import export_sample

    with _open_read(warehouse) as wh:
        counts = export_sample(wh, out_file, [x for x in languages.split(",") if x] or None, sample)
    out.print(f"{sum(counts.values())} entries for review → {out_file} ({counts})")


@review_app.command("import")
def review_import(
    in_file: Path = typer.Argument(..., help="The reviewed JSONL file."),
    warehouse: Path | None = WarehouseOpt,
) -> None:
    """Apply reviewers' verdicts: accept, fix (replaces the machine output) or reject."""
    from globmed_data.translate.review import import_verdicts

    if not in_file.is_file():
        raise _fail(f"file not found: {in_file}", EXIT_CONFIG)
    with Warehouse(resolve_warehouse_path(warehouse)) as wh:
        result = import_verdicts(wh, in_file)
    for problem in result["problems"]:
        console.print(f"[red]skipped[/] {problem}", highlight=False)
    out.print(
        f"accepted {result['accept']}, fixed {result['fix']}, rejected {result['reject']}, "
        f"not reviewed {result['blank']}, invalid {len(result['problems'])}"
    )
    raise typer.Exit(EXIT_PARTIAL if result["problems"] else 0)


@config_app.command("validate")
def config_validate(
    config: Path = typer.Argument(..., help="Pipeline config (YAML)."),
    strict: bool = typer.Option(False, "--strict", help="Treat warnings (missing files...) as errors."),
) -> None:
    """Validate a config without running anything; warn about what would fail at run time."""
    from globmed_data.sources.locate import check_sources

    loaded = _load(config)
    warnings = check_sources(loaded)
    where = _warehouse_path(loaded, None).resolve()
    folder = next(p for p in (where, *where.parents) if p.exists())
    if not os.access(folder if folder.is_dir() else folder.parent, os.W_OK):
        warnings.append(f"warehouse {where}: {folder} is not writable")
    for line in warnings:
        console.print(f"[yellow]warning:[/] {line}", highlight=False)
    if strict and warnings:
        raise _fail(f"{len(warnings)} warning(s) and --strict", EXIT_CONFIG)
    names = ", ".join(s.name for s in loaded.config.sources)
    out.print(f"{config}: valid ({len(loaded.config.sources)} sources: {names})")


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of the pipeline config (schemas/pipeline-config.schema.json)."""
    sys.stdout.write(json.dumps(config_json_schema(), indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":  # pragma: no cover
    app()
