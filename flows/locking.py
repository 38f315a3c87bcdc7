"""One run per warehouse across machines: a Prefect global concurrency limit per warehouse
(created by the project, strict, one slot), then the warehouse's file lock (globmed_data/ops/
lock.py), which alone guards runs on one machine and ephemeral-server runs.

The limit is taken only when PREFECT_API_URL names a server: an ephemeral API lives in one
process, so the file lock is the whole story there."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from globmed_data.ops.lock import WarehouseBusy, holder_of, wait_seconds, writer_lock


def limit_name(warehouse: str | Path) -> str:
    """'globmed-warehouse-<name>-<hash of the absolute path>': readable, and one per file."""
    path = Path(warehouse).resolve()
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    return f"globmed-warehouse-{path.stem}-{digest}"


def ensure_limit(name: str) -> None:
    """Create the one-slot limit if the server lacks it (strict acquisition needs it to exist)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another run created it meanwhile
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


@contextmanager
def warehouse_slot(warehouse: str | Path, *, what: str, wait: float | None = None) -> Iterator[None]:
    """Hold the warehouse for one run, waiting up to `wait` seconds (see ops/lock.py)."""
    seconds = wait_seconds(wait)
    with ExitStack() as stack:
        if os.environ.get("PREFECT_API_URL"):
            from prefect.concurrency.sync import concurrency

            name = limit_name(warehouse)
            ensure_limit(name)
            try:
                # At least a second: acquiring a free slot takes a round trip to the server.
                stack.enter_context(
                    concurrency(name, occupy=1, timeout_seconds=max(seconds, 5.0), strict=True)
                )
            except TimeoutError:
                raise WarehouseBusy(Path(warehouse), holder_of(warehouse), seconds) from None
        stack.enter_context(writer_lock(warehouse, what=what, wait=seconds))
        yield
