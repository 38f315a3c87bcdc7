"""One run per warehouse: the warehouse's file lock (globmed_data/ops/lock.py), which alone
guards runs on one machine and ephemeral-server runs, then, across machines, a Prefect global
concurrency limit per warehouse (created by the project, strict, one slot).

The limit is taken only when PREFECT_API_URL names a server: an ephemeral API lives in one
process, so the file lock is the whole story there."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from globmed_data.ops.lock import WarehouseBusy, annotate, wait_seconds, writer_lock


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
    """Hold the warehouse for one run, waiting up to `wait` seconds (see ops/lock.py).

    The file lock comes first: the kernel frees it when its holder dies, so holding it proves
    that no live process on this machine has the warehouse (and taking it released the lease a
    killed run left, whose id is in its note on the lock). The lease id is noted for the same
    reason: Prefect's own `concurrency()` hides it."""
    seconds = wait_seconds(wait)
    with ExitStack() as stack:
        stack.enter_context(writer_lock(warehouse, what=what, wait=seconds))
        if os.environ.get("PREFECT_API_URL"):
            _hold_slot(stack, warehouse, seconds)
        yield


LEASE_S = 300.0  # renewed in the background while the run lives


def _hold_slot(stack: ExitStack, warehouse: str | Path, seconds: float) -> None:
    from prefect.concurrency._leases import maintain_concurrency_lease
    from prefect.concurrency._sync import (
        acquire_concurrency_slots_with_lease,
        release_concurrency_slots_with_lease,
    )

    name = limit_name(warehouse)
    ensure_limit(name)
    try:
        # Five seconds at least: even a free slot takes round trips to the server.
        lease = acquire_concurrency_slots_with_lease(
            [name], 1, timeout_seconds=max(seconds, 5.0), strict=True, lease_duration=LEASE_S
        )
    except TimeoutError:  # a run on another machine (the file lock here is ours)
        holder = {
            "what": f"a run holding Prefect's concurrency limit {name}",
            "pid": "?",
            "host": "another machine",
        }
        raise WarehouseBusy(Path(warehouse), holder, seconds) from None
    stack.callback(release_concurrency_slots_with_lease, lease.lease_id)
    annotate(warehouse, lease=str(lease.lease_id))
    stack.enter_context(
        maintain_concurrency_lease(lease.lease_id, LEASE_S, raise_on_lease_renewal_failure=False)
    )
