"""What every `globmed` command group shares: the consoles, exit codes and the warehouse option.

Exit codes: 0 success; 1 unexpected error; 2 invalid configuration or usage (nothing was done);
3 partial (some sources, or some models, failed); 4 every source or model failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from globmed_data.warehouse import Warehouse, WarehouseError, resolve_warehouse_path

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


JsonOpt = typer.Option(False, "--json", help="Print JSON (stable keys, documented in docs/cli.md).")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def fail(message: str, code: int) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def open_read(warehouse: Path | None) -> Warehouse:
    try:
        return Warehouse(resolve_warehouse_path(warehouse), read_only=True)
    except WarehouseError as exc:
        raise fail(str(exc), EXIT_CONFIG) from None


def prefect_environment() -> None:
    """Before Prefect is imported: no analytics, and an ephemeral API server given two minutes to
    start (Prefect's 20 s default is missed on a busy two-core machine, or on the first start of a
    fresh install, which compiles and migrates first). Values set by the user win."""
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
