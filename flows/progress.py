"""Live progress in the Prefect UI: one progress artifact per stage pass, created as soon as the
stage knows its work and updated after every batch, at most twice a second; a log line at most
every ten seconds, and always the last one. A map stage (collect) has one artifact for all its
units (sources), not one each."""

from __future__ import annotations

import threading
import time
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from flows.naming import artifact_key
from globmed_data.pipeline.stage import Progress

MIN_UPDATE_S = 0.5
MIN_LOG_S = 10.0


class _Bar:
    """One progress artifact and its log lines, throttled."""

    def __init__(self, dataset: str, what: str) -> None:
        self.key = artifact_key(dataset, what, "progress")
        self.artifact: UUID | None = None
        self.last_update = self.last_log = 0.0

    def show(self, percent: float, text: str, log_text: str, final: bool) -> None:
        now = time.monotonic()
        if self.artifact is None:
            self.artifact = create_progress_artifact(percent, key=self.key, description=text)
            self.last_update = now
        elif final or now - self.last_update >= MIN_UPDATE_S:
            update_progress_artifact(self.artifact, percent, description=text)
            self.last_update = now
        if final or now - self.last_log >= MIN_LOG_S:
            get_run_logger().info(log_text)
            self.last_log = now

    def state(self) -> dict[str, Any]:
        return {"key": self.key, "artifact": str(self.artifact) if self.artifact else None}


class StageProgress:
    """A `Progress` callback (globmed_data/pipeline/stage.py) for one task run."""

    def __init__(self, dataset: str, what: str, unit: str = "entries") -> None:
        self.bar = _Bar(dataset, what)
        self.what, self.unit = what, unit
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        percent = 100.0 if total <= 0 else min(100.0, 100.0 * done / total)
        rate = f", {done / max(time.monotonic() - self.started, 1e-9):,.0f}/s" if done else ""
        text = f"{self.what}: {done:,}/{total:,} {self.unit}"
        self.bar.show(percent, text, f"{text} ({percent:.0f}%{rate})", done >= total)

    def state(self) -> dict[str, Any]:
        return self.bar.state()


class MapProgress:
    """One artifact for a map stage whose units run side by side: each unit (a source) is an
    equal share, filled as the unit reports its own progress (bytes read, for the collect). An
    artifact per source, created and updated by 104 sources at 8x, kept the Prefect server at a
    quarter of a core through the collect (docs/scaling-history.md)."""

    def __init__(self, dataset: str, stage: str, units: list[str], unit: str = "sources") -> None:
        self.bar = _Bar(dataset, stage)
        self.what, self.unit = stage, unit
        self.shares = dict.fromkeys(units, 0.0)
        self.lock = threading.Lock()  # the units' task runs call from their own threads
        self.shown = False

    def of(self, unit: str) -> Progress:
        """The `Progress` callback for one unit."""

        def report(done: int, total: int) -> None:
            self._set(unit, 1.0 if total <= 0 else min(1.0, done / total))

        return report

    def finish(self, unit: str) -> None:
        """A unit is over, whatever it reported (a skipped or failed source reports nothing)."""
        self._set(unit, 1.0)

    def _set(self, unit: str, share: float) -> None:
        with self.lock:
            if share <= self.shares.get(unit, 0.0) and self.shown:
                return  # nothing new (a late smaller report, a finished unit's finish)
            self.shares[unit], self.shown = share, True
            finished = sum(s >= 1.0 for s in self.shares.values())
            n = len(self.shares)
            percent = 100.0 * sum(self.shares.values()) / max(n, 1)
            text = f"{self.what}: {finished:,}/{n:,} {self.unit} done"
            self.bar.show(percent, text, f"{text} ({percent:.0f}%)", finished == n)
