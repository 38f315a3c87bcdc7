"""Settings of the dedup stage (docs/dedup.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from globmed_data.settings import Strict
from globmed_data.sources.settings import Source, files_by_default

KeepRule = Literal["eval_split", "native", "source_priority", "complete", "entry_id"]


class DedupSettings(Strict):
    """Exact and near-duplicate removal and decontamination (docs/dedup.md)."""

    enabled: bool = True
    threshold: float = Field(0.7, gt=0, lt=1)  # estimated Jaccard similarity of shingle sets
    num_perm: int = Field(128, ge=16, le=1024)
    bands: int | None = Field(None, ge=1)  # with `rows`; default: derived from threshold
    rows: int | None = Field(None, ge=1)
    # A candidate link stands at threshold − verify_margin: one standard error of the MinHash
    # estimate (sqrt(J(1−J)/num_perm) ≈ 0.04 at J = 0.7, 128 permutations) below the threshold.
    verify_margin: float = Field(0.05, ge=0, lt=1)
    # Two open questions are one item only when their reference answers are this similar too
    # (estimated Jaccard of the answers' shingles): the same question answered differently is two.
    answer_threshold: float = Field(0.5, gt=0, le=1)
    word_ngram: int = Field(2, ge=1, le=10)  # shingles where words are spaced
    char_ngram: int = Field(2, ge=1, le=20)  # shingles for zh, ja, th, ...
    keep: list[KeepRule] = Field(
        default_factory=lambda: ["eval_split", "native", "source_priority", "complete", "entry_id"]
    )
    source_priority: list[str] = Field(default_factory=list)
    eval_splits: list[str] = Field(default_factory=lambda: ["test"])
    benchmarks: list[Source] = Field(default_factory=list)  # external test sets to keep out of training

    _kinds = field_validator("benchmarks", mode="before")(lambda v: files_by_default(v))

    @model_validator(mode="after")
    def _bands_and_rows(self) -> DedupSettings:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both `bands` and `rows`, or neither (then they follow `threshold`)")
        if self.bands and self.rows and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands × rows ({self.bands * self.rows}) exceeds num_perm ({self.num_perm})")
        if "entry_id" not in self.keep:
            raise ValueError("`keep` must end with `entry_id` so that the choice is deterministic")
        return self
