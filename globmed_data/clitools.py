"""What every `globmed` command group shares: the consoles, exit codes and the warehouse option.

Exit codes: 0 success; 1 unexpected error; 2 invalid configuration or usage (nothing was done);
3 partial (some sources, or some models, failed); 4 every source or model failed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from globmed_data.warehouse import ENV_VAR, Warehouse, WarehouseError, resolve_warehouse_path

console = Console(stderr=True)
# Piped output is not cut at 80 columns: tables stay readable in logs and CI.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)

EXIT_CONFIG, EXIT_PARTIAL, EXIT_FAILED = 2, 3, 4
WarehouseOpt = typer.Option(
    None,
    "--warehouse",
    "-w",
    help="DuckDB file (default: $GLOBMED_WAREHOUSE, then the config's `warehouse` where a config "
    "is given, else the warehouse the last `globmed run` here used, then .globmed/warehouse.duckdb).",
)


JsonOpt = typer.Option(False, "--json", help="Print JSON (stable keys, documented in docs/cli.md).")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def fail(message: str, code: int) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def read_path(warehouse: Path | None) -> Path:
    """The flag, $GLOBMED_WAREHOUSE, the last run's warehouse (said on stderr), the default."""
    from globmed_data.ops.last_run import recall

    if warehouse is None and not os.environ.get(ENV_VAR):
        last = recall()
        if last is not None:
            console.print(f"[dim]warehouse: {last} (the last `globmed run` here)[/]", highlight=False)
            return last
    return resolve_warehouse_path(warehouse)


def open_read(warehouse: Path | None) -> Warehouse:
    try:
        return Warehouse(read_path(warehouse), read_only=True)
    except WarehouseError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None


def prefect_environment() -> None:
    """Before Prefect is imported: no analytics, and an ephemeral API server given two minutes to
    start (Prefect's 20 s default is missed on a busy two-core machine, or on the first start of a
    fresh install, which compiles and migrates first), launched now. Values set by the user win."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from globmed_data.ops.prefect_start import launch_api

    launch_api()  # the server starts while this process imports Prefect and the flows


def announce_first_compile() -> None:
    """The text kernels compile on first use (numba, cached next to the code): about two minutes
    on a busy two-core machine. `make install` compiles them ahead; if that was skipped, say so
    instead of going silent."""
    from globmed_data.kernels.warm import cold_modules

    cold = cold_modules()
    if cold:
        console.print(
            f"[yellow]first run on this install: compiling the text kernels ({', '.join(cold)}); this "
            "happens once and takes a minute or two (`make install` or `python -m "
            "globmed_data.kernels.warm` does it ahead)[/]",
            highlight=False,
        )


def start_flow(flow: Any, **parameters: Any) -> Any:
    """Run a flow in this process and return its final state. Without a configured API, on the
    ephemeral server that prefect_environment launched (ops/prefect_start.py: a port held from the
    start, a wall-clock deadline, started beside this process's imports)."""
    from globmed_data.ops.prefect_start import ensure_api

    ensure_api()
    return flow(**parameters, return_state=True)
