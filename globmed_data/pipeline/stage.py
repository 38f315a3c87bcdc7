"""The stage interface: what every step of the pipeline is, so that the flow, the CLI and the
crash-safety contract treat them alike.

A stage has a name, its settings (a section of the config) and their hash, the warehouse tables
and views it reads and writes, a way to count its pending work, and `run(context) -> Report`.
A stage that decides entries one by one (`decides_entries`) records its settings hash in
`stage_state`: the curated view then shows only entries it decided under those settings, so a
run killed midway leaves work pending, never a guess. A stage that adds entries (translation)
has the entry-deciding stages before it run again on what it added.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from globmed_data.pipeline.executor import Executor, InlineExecutor

if TYPE_CHECKING:
    from globmed_data.config import LoadedConfig, PipelineConfig
    from globmed_data.warehouse import Warehouse

Log = Callable[[str], None]
# (done, total): called once the stage knows its work, then after every batch. The flow turns it
# into a Prefect progress artifact; the CLI's `stage run` ignores it.
Progress = Callable[[int, int], None]


def _no_progress(done: int, total: int) -> None:
    return None


@dataclass
class Context:
    """What a stage runs with: the warehouse (the one writer), the config, the run, a logger, a
    progress callback, and where its maps run (the run's process unless the flow opened one)."""

    wh: Warehouse
    loaded: LoadedConfig
    run_id: str
    log: Log = field(default=lambda _: None)
    progress: Progress = field(default=_no_progress)
    executor: Executor = field(default_factory=InlineExecutor)


@dataclass
class Report:
    """A stage's outcome: its counts (stored in run_stages and the run summary) and one line."""

    stage: str
    counts: dict[str, Any]
    summary: str

    @property
    def status(self) -> str:
        return str(self.counts.get("status", "succeeded"))


@runtime_checkable
class Stage(Protocol):
    name: str
    reads: tuple[str, ...]  # warehouse tables and views
    writes: tuple[str, ...]
    decides_entries: bool  # one decision per entry, which the curated view requires
    adds_entries: str | None  # what it adds ("translated"): the deciding stages pass again over it

    def settings(self, config: PipelineConfig) -> Any:
        """Its section of the config (a pydantic model with `enabled`, where it can be off)."""
        ...

    def settings_hash(self, loaded: LoadedConfig) -> str:
        """What its stored decisions must have been made under to count as current."""
        ...

    def pending(self, wh: Warehouse, loaded: LoadedConfig) -> dict[str, int]:
        """Work it has not done yet, by kind (usually {name: entries}); empty when none is known."""
        ...

    def undecided(self, wh: Warehouse, settings_hash: str) -> int | None:
        """Entries it has not decided under this settings hash (None: it cannot tell without
        the config): `globmed status` counts these from `stage_state` alone."""
        ...

    def run(self, context: Context) -> Report: ...


class PendingWork(RuntimeError):
    """A stage has entries it has not decided yet: exporting now would publish a guess."""

    def __init__(self, pending: dict[str, int]) -> None:
        self.pending = pending
        listed = ", ".join(
            "dedup clusters out of date" if stage == "dedup:clusters" else f"{stage} {n:,} entries undecided"
            for stage, n in pending.items()
        )
        super().__init__(
            f"stages have pending work ({listed}): run them first with "
            "`globmed run -c CONFIG`, or `globmed export -c CONFIG --run-stages`"
        )


@runtime_checkable
class MapStage(Stage, Protocol):
    """A stage that is a map over units (collect: the sources): the flow runs one task per unit,
    side by side, and Ray will run them as tasks."""

    def units(self, loaded: LoadedConfig) -> list[str]: ...

    def run_unit(self, context: Context, unit: str) -> Report: ...


def enabled(stage: Stage, config: PipelineConfig) -> bool:
    return bool(getattr(stage.settings(config), "enabled", True))
