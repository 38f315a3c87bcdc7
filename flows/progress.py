"""Live progress in the Prefect UI: one progress artifact per stage pass (or collected source),
created as soon as the stage knows its work and updated after every batch, at most twice a
second; a log line at most every ten seconds, and always the last one."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from flows.naming import artifact_key

MIN_UPDATE_S = 0.5
MIN_LOG_S = 10.0


class StageProgress:
    """A `Progress` callback (globmed_data/pipeline/stage.py) for one task run."""

    def __init__(self, dataset: str, what: str, unit: str = "entries") -> None:
        self.key = artifact_key(dataset, what, "progress")
        self.what, self.unit = what, unit
        self.artifact: UUID | None = None
        self.last_update = self.last_log = 0.0
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        percent = 100.0 if total <= 0 else min(100.0, 100.0 * done / total)
        if self.artifact is None:
            self.artifact = create_progress_artifact(
                percent, key=self.key, description=f"{self.what}: {done:,}/{total:,} {self.unit}"
            )
            self.last_update = now
        elif done >= total or now - self.last_update >= MIN_UPDATE_S:
            update_progress_artifact(self.artifact, percent, description=f"{self.what}: {done:,}/{total:,}")
            self.last_update = now
        if done >= total or now - self.last_log >= MIN_LOG_S:
            rate = f", {done / max(now - self.started, 1e-9):,.0f}/s" if done else ""
            get_run_logger().info(f"{self.what}: {done:,}/{total:,} {self.unit} ({percent:.0f}%{rate})")
            self.last_log = now

    def state(self) -> dict[str, Any]:
        return {"key": self.key, "artifact": str(self.artifact) if self.artifact else None}
