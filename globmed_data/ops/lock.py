"""One writer per warehouse.

DuckDB lets one process hold a file; a second writer used to die with a traceback about a lock.
Every writer now takes `<warehouse>.lock` first (an advisory `flock`, released by the kernel when
the holder dies, so it never goes stale) and writes who holds it into the file. A second writer
waits up to its bound and then fails with one line naming the holder; a reader waits the same
bound (a train run reading what a bench run is writing, both started by one event) and then uses
the same file to say why it cannot open the warehouse during a run.

Within one process the lock is re-entrant: the pipeline flow holds it for the whole run and the
stages' own opens go through. Across machines sharing a Prefect server, the flows also hold a
Prefect global concurrency limit per warehouse (flows/locking.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

WAIT_ENV = "GLOBMED_LOCK_WAIT"  # seconds a writer waits for the lock (default below)
DEFAULT_WAIT = 0.0

_held: dict[Path, tuple[int, int]] = {}  # lock path -> (fd, depth) held by this process
_guard = threading.Lock()


class WarehouseBusy(RuntimeError):
    """Another process writes the warehouse; the message names it."""

    def __init__(self, warehouse: Path, holder: dict[str, Any] | None, waited: float) -> None:
        self.warehouse = warehouse
        self.holder = holder or {}
        waited_text = f" after waiting {waited:.0f}s" if waited >= 1 else ""
        super().__init__(
            f"the warehouse {warehouse} is being written by {describe(self.holder)}{waited_text}: "
            f"wait for it to finish, pass --wait SECONDS (or set {WAIT_ENV}), or use another --warehouse"
        )


def lock_path(warehouse: str | Path) -> Path:
    path = Path(warehouse).resolve()
    return path.with_name(path.name + ".lock")


def describe(holder: dict[str, Any]) -> str:
    """'run shared-real 2026-12-02 18:20:11 (pid 4242 on host, since 18:20:11 UTC)'."""
    if not holder:
        return "another process"
    what = holder.get("what") or "a writer"
    where = f"pid {holder.get('pid')} on {holder.get('host')}"
    since = f", since {holder['since']}" if holder.get("since") else ""
    return f"{what} ({where}{since})"


def wait_seconds(wait: float | None) -> float:
    if wait is not None:
        return max(0.0, float(wait))
    raw = os.environ.get(WAIT_ENV, "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_WAIT
    except ValueError:
        raise ValueError(f"{WAIT_ENV}={raw!r} is not a number of seconds") from None


def holder_of(warehouse: str | Path) -> dict[str, Any] | None:
    """Who holds the warehouse now, or None when nobody writes it."""
    path = lock_path(warehouse)
    if not path.exists() or path in _held:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(path) or {}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def holder_after(warehouse: str | Path, wait: float | None = None) -> dict[str, Any] | None:
    """holder_of, once the writer has let go (None) or `wait` seconds have passed (default:
    $GLOBMED_LOCK_WAIT, else at once): a reader waits the same bound as a writer would."""
    deadline = time.monotonic() + wait_seconds(wait)
    while (holder := holder_of(warehouse)) is not None and time.monotonic() < deadline:
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    return holder


@contextmanager
def writer_lock(warehouse: str | Path, *, what: str = "", wait: float | None = None) -> Iterator[None]:
    """Hold the warehouse's writer lock; wait up to `wait` seconds (default: $GLOBMED_LOCK_WAIT,
    else fail at once) for another process to let go, then raise WarehouseBusy."""
    path = lock_path(warehouse)
    with _guard:
        if path in _held:
            fd, depth = _held[path]
            _held[path] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if not reentered:
        _acquire(path, warehouse, what, wait_seconds(wait))
    try:
        yield
    finally:
        _release(path)


def annotate(warehouse: str | Path, **fields: str) -> None:
    """Add fields to this process's note on a lock it holds (what a successor must clean up)."""
    path = lock_path(warehouse)
    with _guard:
        fd = _held[path][0]
    note = {**(_read_holder(path) or {}), **fields}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(note).encode(), 0)
    except OSError:
        pass


def _acquire(path: Path, warehouse: str | Path, what: str, wait: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    started = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            waited = time.monotonic() - started
            if waited >= wait:
                holder = _read_holder(path)
                os.close(fd)
                raise WarehouseBusy(Path(warehouse), holder, waited) from None
            time.sleep(min(0.5, wait - waited))
    left = _read_holder(path)  # still there: its holder was killed before it could clear it
    holder = {
        "what": what or "a globmed writer",
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
    }
    try:  # the note is a courtesy: a full disk must not leave the lock held and unrecorded
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
    except OSError:
        pass
    with _guard:
        _held[path] = (fd, 1)
    _release_dead_lease(left)


def _release_dead_lease(left: dict[str, Any] | None) -> None:
    """A note still on the lock when it is taken was left by a holder that was killed. Whatever
    took the lock (a run, or a CLI command in between), the Prefect concurrency lease that holder
    recorded is released now: else it keeps the warehouse's slot until the lease expires."""
    lease = (left or {}).get("lease")
    if not lease or not os.environ.get("PREFECT_API_URL"):
        return
    from uuid import UUID

    from prefect.concurrency._sync import release_concurrency_slots_with_lease

    with suppress(Exception):  # expired, released already, or the server is away: it expires anyway
        release_concurrency_slots_with_lease(UUID(lease))


def _release(path: Path) -> None:
    with _guard:
        fd, depth = _held[path]
        if depth > 1:
            _held[path] = (fd, depth - 1)
            return
        del _held[path]
    try:
        os.ftruncate(fd, 0)
    except OSError:
        pass  # a read-only or full disk: the note stays, the lock still goes
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _read_holder(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None
