"""Where the stages' maps run (globmed_data/pipeline/executor.py): `executor:` in the config."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from globmed_data.settings import Strict


class ExecutorSettings(Strict):
    kind: Literal["local", "ray"] = "local"
    # Processes (local) or CPUs of a local Ray cluster for the maps; default one per CPU.
    # 1: everything in the run's process.
    workers: int | None = Field(None, ge=1, le=1024)
    # Ray: the cluster to join ("ray://head:10001", "auto"); default $RAY_ADDRESS, else a local
    # cluster started for the run.
    address: str | None = None
    # A source with less than this to read is mapped in the run's process: sending it to
    # another costs more than it saves.
    min_task_bytes: int = Field(1 << 20, ge=0)
    # On an executor that takes the stages' batches (Ray), a stage with fewer entries to decide
    # (language ID, quality, dedup's signing) decides them in the run's process, on its threads.
    min_task_entries: int = Field(20_000, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _kind_alone(cls, value: Any) -> Any:
        """`executor: ray` is short for `executor: {kind: ray}`."""
        return {"kind": value} if isinstance(value, str) else value
