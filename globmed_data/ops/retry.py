"""Retries with backoff, and timeouts, for every step that crosses the network: the Hub (source
downloads, pulls, publications), model downloads, translation servers (translate/backends.py
has its own, with Retry-After), so that a dropped connection or a 503 costs a pause, not a run.

What a retry needs is kept between attempts: huggingface_hub resumes downloads from its cache,
a publication re-uses the version folder written before it, and translations are cached per
segment. Errors that would only recur (401, 403, 404, a bad request) are not retried.

Settings (environment): GLOBMED_NET_ATTEMPTS (default 4), GLOBMED_NET_TIMEOUT (seconds of
silence before a Hub request is abandoned and retried; default 60).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_logger = logging.getLogger("globmed.net")  # Prefect shows it in the run's log; the CLI on stderr

ATTEMPTS_ENV, TIMEOUT_ENV = "GLOBMED_NET_ATTEMPTS", "GLOBMED_NET_TIMEOUT"
FIRST_DELAY, MAX_DELAY = 1.0, 30.0
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


def attempts() -> int:
    return max(1, int(os.environ.get(ATTEMPTS_ENV, "") or 4))


def timeout_s() -> float:
    return float(os.environ.get(TIMEOUT_ENV, "") or 60)


def transient(exc: BaseException) -> bool:
    """Worth another try: a network failure, a timeout, or a 408/429/5xx answer."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int):
        return status in _TRANSIENT_STATUS
    names = {cls.__name__ for cls in type(exc).__mro__}
    network = {"ConnectError", "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout",
               "RemoteProtocolError", "ReadError", "WriteError", "TransportError", "TimeoutException",
               "ConnectionError", "TimeoutError", "Timeout", "IncompleteRead"}  # fmt: skip
    if names & network:
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and transient(cause)


def delay(attempt: int) -> float:
    """Exponential backoff with full jitter: 1, 2, 4... seconds at most, capped at 30."""
    return random.uniform(0, min(MAX_DELAY, FIRST_DELAY * 2**attempt))


def with_retries(
    what: str,
    call: Callable[[], T],
    *,
    log: Callable[[str], None] | None = None,  # default: a warning on the "globmed.net" logger
    tries: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, again after a pause when it fails transiently; the last error is raised as is."""
    total = tries or attempts()
    for attempt in range(total):
        try:
            return call()
        except Exception as exc:
            if attempt + 1 >= total or not transient(exc):
                raise
            pause = delay(attempt)
            problem = f"{type(exc).__name__}: {str(exc)[:200]}"
            (log or _logger.warning)(f"{what}: {problem}; retry {attempt + 2}/{total} in {pause:.1f}s")
            sleep(pause)
    raise AssertionError("unreachable")


def hub_timeouts() -> None:
    """huggingface_hub's HTTP client waits forever by default: give every request a timeout, so a
    silent server becomes a retry instead of a hung run."""
    import httpx2
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import hf_request_event_hook

    seconds = timeout_s()

    def factory() -> httpx2.Client:
        return httpx2.Client(
            event_hooks={"request": [hf_request_event_hook]},
            follow_redirects=True,
            timeout=httpx2.Timeout(seconds, connect=min(seconds, 20.0)),
        )

    set_client_factory(factory)
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(seconds)))
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(min(seconds, 20.0))))


def download_model(target: str, log: Callable[[str], None] | None = None) -> str:
    """A model as a local folder: the target itself when it exists, else the Hub repository
    `owner/name` downloaded (with retries; the cache resumes a broken download)."""
    from pathlib import Path

    if Path(target).expanduser().exists() or target.count("/") != 1:
        return target
    from huggingface_hub import snapshot_download

    hub_timeouts()
    return str(with_retries(f"download {target}", lambda: snapshot_download(target), log=log))
