"""Network steps retry transient failures with backoff, give up on permanent ones at once, and
a Hub publication retried after a dropped connection ends published once."""

from __future__ import annotations

import httpx2
import pytest

from globmed_data.ops.retry import delay, transient, with_retries


class _Answer(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.response = type("R", (), {"status_code": status})()


def test_transient_failures_are_retried_with_growing_pauses() -> None:
    calls, pauses = [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise httpx2.ConnectError("connection refused") if len(calls) == 1 else _Answer(503)
        return "ok"

    assert with_retries("step", flaky, tries=4, sleep=pauses.append, log=lambda _: None) == "ok"
    assert len(calls) == 3 and len(pauses) == 2 and all(0 <= p <= 30 for p in pauses)
    assert max(delay(10) for _ in range(50)) <= 30  # capped


def test_permanent_failures_and_the_last_attempt_raise_as_is() -> None:
    for status in (400, 401, 403, 404):
        assert not transient(_Answer(status))
    calls = []

    def missing() -> None:
        calls.append(1)
        raise _Answer(404)

    with pytest.raises(_Answer):
        with_retries("step", missing, tries=5, sleep=lambda _: None)
    assert len(calls) == 1

    def down() -> None:
        calls.append(1)
        raise TimeoutError("silent server")

    calls.clear()
    said: list[str] = []
    with pytest.raises(TimeoutError):
        with_retries("pull x", down, tries=3, sleep=lambda _: None, log=said.append)
    assert len(calls) == 3 and said[0].startswith("pull x: TimeoutError: silent server; retry 2/3")
    wrapped = RuntimeError("hub call failed")
    wrapped.__cause__ = httpx2.ReadTimeout("read timed out")
    assert transient(wrapped)
