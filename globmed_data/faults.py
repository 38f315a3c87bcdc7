"""Named fault points, so crash safety is tested at exact moments rather than by timing.

Every step that commits in parts calls `point("stage.moment")` between its commits. Nothing
happens unless `GLOBMED_FAULT` names that point:

- `GLOBMED_FAULT=dedup.signed` kills the process group with SIGKILL the first time the point is
  reached (what an operator's `kill -9` or an out-of-memory kill does);
- `GLOBMED_FAULT=dedup.signed:2` waits for the second time;
- `GLOBMED_FAULT=dedup.signed:1:raise` raises `InjectedFault` instead, for in-process tests
  (an exception unwinds open transactions, as a kill does, but keeps the test process alive).

The points are listed in docs/crash-safety.md with the fault-injection results.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

ENV = "GLOBMED_FAULT"
_hits: Counter[str] = Counter()
_lock = threading.Lock()


class InjectedFault(BaseException):
    """Raised at a fault point in `raise` mode. A BaseException, as a kill is not an error: the
    handlers that keep a run going past bad input (`except Exception`) must not catch it."""


def _target() -> tuple[str, int, str] | None:
    spec = os.environ.get(ENV)
    if not spec:
        return None
    name, _, rest = spec.partition(":")
    count, _, mode = rest.partition(":")
    return name, int(count or 1), mode or "kill"


def point(name: str) -> None:
    """A moment between two commits: the process may be killed here under test."""
    target = _target()
    if target is None or target[0] != name:
        return
    with _lock:
        _hits[name] += 1
        reached = _hits[name] == target[1]
    if not reached:
        return
    if target[2] == "raise":
        raise InjectedFault(f"fault injected at {name}")
    # The whole group, as `kill -9 -PGID` would: worker threads and child processes go too.
    try:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    finally:
        os.kill(os.getpid(), signal.SIGKILL)


def reset() -> None:
    """Forget how often each point was reached (tests that inject several faults in one process)."""
    with _lock:
        _hits.clear()
