"""The stages in pipeline order. The flow, `globmed stage run`, `globmed export --run-stages` and
the export's pending-work check all read this one list; adding a stage is adding it here."""

from __future__ import annotations

from dataclasses import dataclass

from globmed_data.config import PipelineConfig
from globmed_data.dedup.stage import DedupStage
from globmed_data.export.stage import ExportStage
from globmed_data.langid.stage import LangIdStage
from globmed_data.pipeline.stage import Stage, enabled
from globmed_data.quality.stage import QualityStage
from globmed_data.sources.stage import CollectStage
from globmed_data.translate.stage import TranslateStage

STAGES: tuple[Stage, ...] = (
    CollectStage(),
    LangIdStage(),
    QualityStage(),
    TranslateStage(),
    DedupStage(),
    ExportStage(),
)


def stage(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"no stage '{name}'; stages are: {', '.join(s.name for s in STAGES)}")


@dataclass(frozen=True)
class Step:
    """One pass of a stage in a run: `langid:translated` is language ID on translated entries."""

    name: str
    stage: Stage


def plan(config: PipelineConfig) -> list[Step]:
    """The enabled stages in order; after a stage that adds entries, the entry-deciding stages
    before it pass again over what it added (only that is pending, so the passes are short)."""
    steps: list[Step] = []
    for s in STAGES:
        if not enabled(s, config):
            continue
        steps.append(Step(s.name, s))
        if s.adds_entries:
            again = [x for x in steps if x.stage.decides_entries and x.stage is not s and ":" not in x.name]
            steps += [Step(f"{x.name}:{s.adds_entries}", x.stage) for x in again]
    return steps
