"""A training recipe (docs/training.md): one YAML file, validated before any model or dataset
loads, and hashed so that a model records exactly how it was made."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from globmed_data.settings import ConfigError, Strict, Task, as_list


class LoraRecipe(Strict):
    """peft's LoraConfig: rank, scale, dropout and the modules that get adapters."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    # "all-linear" (peft's shorthand: every linear layer but the output head) or module names.
    target_modules: str | list[str] = "all-linear"


class MixingRecipe(Strict):
    """How languages are mixed in the training set, so that low-resource languages can be
    up-sampled. natural: every train entry once. temperature: language l gets a share
    proportional to n_l^(1/T) of the same total (T > 1 flattens towards uniform). weights: language
    l is repeated w_l times (fractions sample; unlisted languages keep 1)."""

    strategy: Literal["natural", "temperature", "weights"] = "natural"
    temperature: float = Field(1.0, gt=0)
    weights: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _weights(self) -> MixingRecipe:
        if self.strategy == "weights" and not self.weights:
            raise ValueError("strategy 'weights' needs weights: {LANGUAGE: MULTIPLIER, ...}")
        bad = sorted(lang for lang, w in self.weights.items() if w < 0)
        if bad:
            raise ValueError(f"weights must be >= 0 (got a negative weight for {', '.join(bad)})")
        return self


class Recipe(Strict):
    """How a base model is fine-tuned on a dataset version's train split."""

    method: Literal["lora", "full"] = "lora"
    lora: LoraRecipe = Field(default_factory=LoraRecipe)
    max_seq_length: int = Field(1024, ge=16)  # cut from the end; one left without its answer is dropped
    learning_rate: float = Field(2e-4, gt=0)
    epochs: float | None = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1)  # wins over epochs when given
    batch_size: int = Field(8, ge=1)
    gradient_accumulation: int = Field(1, ge=1)
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    weight_decay: float = Field(0.0, ge=0)
    seed: int = 0
    tasks: list[Task] = Field(default_factory=list)  # empty: every task of the version
    languages: list[str] = Field(default_factory=list)  # empty: every language
    rationale: bool = False  # append the item's rationale (where it has one) after the answer
    instruction: Literal["en", "item"] = "en"  # the prompts' language, as the benchmark's setting
    mixing: MixingRecipe = Field(default_factory=MixingRecipe)
    max_examples: int | None = Field(None, ge=1)  # after mixing: the first N of the seeded order
    logging_steps: int = Field(1, ge=1)
    save_steps: int = Field(50, ge=1)  # a resumable checkpoint every N optimiser steps
    merge: bool = False  # also save the base with the adapter merged in (LoRA only)
    # Recompute activations in the backward pass. Measured on SmolLM2-135M, CPU, batch 8 x 512
    # tokens: peak RSS 9.7 GB instead of 17.1 GB at the same speed (docs/training.md).
    gradient_checkpointing: bool = True
    device: str = "auto"  # auto: cuda when available (bf16), else cpu (float32)

    _lists = field_validator("tasks", "languages", mode="before")(as_list)

    @model_validator(mode="after")
    def _length(self) -> Recipe:
        if self.epochs is None and self.max_steps is None:
            raise ValueError("give epochs or max_steps")
        if self.merge and self.method != "lora":
            raise ValueError("merge applies to LoRA only (a full fine-tune is already a whole model)")
        return self

    def digest(self) -> str:
        """sha256 over the canonical JSON of every setting (defaults included)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def load_recipe(path: str | Path | None, overrides: dict | None = None) -> Recipe:
    """The recipe in `path` (YAML; none: the defaults) with `overrides`; ConfigError says what to fix."""
    data: dict = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"recipe {file}: no such file")
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"recipe {file}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"recipe {file}: expected a mapping of settings, got {type(data).__name__}")
    data = {**data, **(overrides or {})}
    try:
        return Recipe(**data)
    except ValidationError as exc:
        where = f"recipe {path}" if path else "recipe"
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'recipe'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from None
