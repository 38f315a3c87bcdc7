"""Settings of the quality stage: thresholds and per-rule actions (docs/quality.md)."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field, field_validator

from globmed_data.quality.rules import RULES
from globmed_data.settings import PerLanguage, Strict, has_default

RuleAction = Literal["reject", "flag", "off"]


class QualityThresholds(Strict):
    """Documented defaults; per-language values where scripts differ (no spaces in zh/ja/th)."""

    min_options: int = Field(2, ge=1)
    max_options: int = Field(10, ge=2)
    min_chars: PerLanguage = Field(
        default_factory=lambda: {"default": 20.0, "zh": 8.0, "ja": 8.0, "ko": 8.0, "th": 10.0}
    )
    max_chars: PerLanguage = 6000.0
    max_context_chars: int = Field(60000, ge=100)
    max_dup_line_fraction: float = Field(0.3, ge=0, le=1)
    max_dup_ngram_fraction: float = Field(0.8, ge=0, le=1)
    # Chinese and Japanese clinical text is dense with full-width brackets and signs.
    max_symbol_ratio: PerLanguage = Field(default_factory=lambda: {"default": 0.3, "zh": 0.5, "ja": 0.5})
    max_digit_ratio: PerLanguage = 0.5
    min_script_share: PerLanguage = Field(
        default_factory=lambda: {"default": 0.5, "zh": 0.35, "ja": 0.35, "ko": 0.35}
    )

    _per_language = field_validator(
        "min_chars", "max_chars", "max_symbol_ratio", "max_digit_ratio", "min_script_share"
    )(has_default)


class QualitySettings(Strict):
    """Quality rules (reason codes and defaults: docs/quality.md)."""

    enabled: bool = True
    thresholds: QualityThresholds = QualityThresholds()
    actions: dict[str, RuleAction] = Field(default_factory=dict)  # override a rule's default action
    require_rationale: list[str] = Field(default_factory=list)  # sources whose entries need one
    # More phrases by which a question points to an image it lacks, per language (regexes,
    # matched case-insensitively; added to quality/phrases.py's lists).
    image_phrases: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("image_phrases")
    @classmethod
    def _valid_regexes(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for language, patterns in v.items():
            for pattern in patterns:
                try:  # the search engine's own syntax (Rust regex), as the rule will use it
                    pl.Series([""]).str.contains(pattern)
                except pl.exceptions.ComputeError as e:
                    raise ValueError(
                        f"image_phrases.{language}: {pattern!r} is not a valid regex ({e})"
                    ) from None
        return v

    @field_validator("actions")
    @classmethod
    def _known_rules(cls, v: dict[str, RuleAction]) -> dict[str, RuleAction]:
        unknown = sorted(set(v) - set(RULES))
        if unknown:
            raise ValueError(f"unknown rule(s) {', '.join(unknown)}; rules are: {', '.join(RULES)}")
        return v
