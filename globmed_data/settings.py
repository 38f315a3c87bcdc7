"""Settings pieces every stage shares: the strict base model, the tasks, per-language values."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

TASKS = ("mcqa", "yes_no", "nli", "open_qa", "classification")
Task = Literal["mcqa", "yes_no", "nli", "open_qa", "classification"]
FieldRef = str | list[str]  # a dotted path, or candidates tried in order (aliases for misspellings)
SPLIT_NAMES = ("train", "validation", "test")
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
# A number for every language, or {default: n, zh: m, ...} where scripts differ.
PerLanguage = float | dict[str, float]


class ConfigError(ValueError):
    """The configuration is invalid; the message says what to fix."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def as_list(value: Any) -> Any:
    """A lone string where a list of names is expected means a one-item list."""
    return [value] if isinstance(value, str) else value


def has_default(v: PerLanguage) -> PerLanguage:
    """A per-language map must say what the other languages get."""
    if isinstance(v, dict) and "default" not in v:
        raise ValueError("a per-language map needs a `default` entry")
    return v
