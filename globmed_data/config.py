"""Pipeline configuration: YAML in, validated pydantic models out, before any work starts.

Each stage's package owns its settings model (`globmed_data/<stage>/settings.py`); this module
only composes them into `PipelineConfig` and loads a file. Relative paths are resolved against
the config file's folder; `${VAR}` and `${VAR:-default}` are expanded from the environment in
path strings.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from globmed_data.bench.settings import BenchSettings
from globmed_data.dedup.settings import DedupSettings
from globmed_data.export.settings import ExportSettings
from globmed_data.ids import canonical_json, stable_hash
from globmed_data.langid.settings import LangIdSettings
from globmed_data.pipeline.settings import ExecutorSettings
from globmed_data.quality.settings import QualitySettings
from globmed_data.settings import ConfigError, Strict
from globmed_data.sources.settings import CollectSettings, FileSource, HubSource, Source, files_by_default
from globmed_data.translate.settings import TranslateSettings

DEFAULT_LANGUAGES = ["en", "zh", "ja", "ko", "de", "fr", "es", "it", "th", "sw", "yo", "zu"]
DEFAULT_LOW_RESOURCE = ["sw", "yo", "zu"]


class LanguageSettings(Strict):
    targets: list[str] = Field(default_factory=lambda: list(DEFAULT_LANGUAGES))
    low_resource: list[str] = Field(default_factory=lambda: list(DEFAULT_LOW_RESOURCE))


class PipelineConfig(Strict):
    version: Literal[1] = 1
    name: str = "globmed"
    warehouse: str | None = None
    languages: LanguageSettings = LanguageSettings()
    executor: ExecutorSettings = ExecutorSettings()
    collect: CollectSettings = CollectSettings()
    langid: LangIdSettings = LangIdSettings()
    quality: QualitySettings = QualitySettings()
    translate: TranslateSettings = TranslateSettings()
    dedup: DedupSettings = DedupSettings()
    export: ExportSettings = ExportSettings()
    bench: BenchSettings = BenchSettings()
    sources: list[Source] = Field(min_length=1)

    _kinds = field_validator("sources", mode="before")(lambda v: files_by_default(v))

    @model_validator(mode="after")
    def _cross_checks(self) -> PipelineConfig:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        for s in self.sources:
            if s.translation_of and s.translation_of.source not in names:
                raise ValueError(
                    f"source '{s.name}': translation_of.source '{s.translation_of.source}' "
                    "is not a source in this config"
                )
        for where, listed in (
            ("langid.per_source", self.langid.per_source),
            ("quality.require_rationale", self.quality.require_rationale),
            ("dedup.source_priority", self.dedup.source_priority),
            ("export.config_per_source", self.export.config_per_source),
            *((f"translate.jobs[{j.name}].sources", j.sources) for j in self.translate.jobs),
        ):
            stray = sorted(set(listed) - set(names))
            if stray:
                raise ValueError(f"{where} names source(s) not in this config: {', '.join(stray)}")
        return self

    def source(self, name: str) -> FileSource | HubSource:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)

    def config_hash(self) -> str:
        """What the results depend on: where the maps run (executor) does not change them."""
        return stable_hash("config", canonical_json(self.model_dump(mode="json", exclude={"executor"})))


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            if m.group(2) is None:
                raise ConfigError(f"environment variable {m.group(1)} is not set (used in {text!r})")
            return m.group(2)
        return value

    return _ENV.sub(repl, text)


def unset_variables(data: Any, where: str = "") -> list[str]:
    """Every `${VAR}` (without a `:-default`) whose variable is unset, with the key it is under:
    found before any work starts, not when a stage first resolves the path."""
    if isinstance(data, dict):
        return [m for k, v in data.items() for m in unset_variables(v, f"{where}.{k}" if where else str(k))]
    if isinstance(data, list):
        return [m for i, v in enumerate(data) for m in unset_variables(v, f"{where}[{i}]")]
    if not isinstance(data, str):
        return []
    return [
        f"  - {where}: environment variable {m.group(1)} is not set "
        f"(set it, or give a default: ${{{m.group(1)}:-DEFAULT}})"
        for m in _ENV.finditer(data)
        if m.group(2) is None and os.environ.get(m.group(1)) is None
    ]


def resolve_path(text: str, base: Path) -> Path:
    path = Path(expand_env(text)).expanduser()
    return path if path.is_absolute() else (base / path)


def format_validation_error(exc: ValidationError, origin: str, data: Any = None) -> str:
    lines = [f"invalid configuration in {origin}:"]
    for err in exc.errors():
        loc = ".".join(_located(err["loc"], data))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (misspelt?)"
        lines.append(f"  - {loc or '(top level)'}: {msg}")
    return "\n".join(lines)


def _located(loc: tuple[Any, ...], data: Any) -> list[str]:
    """The error's path, with a source named by its name rather than its position
    (`sources[medqa_en].mapping` rather than `sources.23.files.mapping`)."""
    parts: list[str] = []
    node = data
    for p in loc:
        if p in ("files", "hub"):  # the discriminated union's tag, not a key of the file
            continue
        named = isinstance(p, int) and isinstance(node, list) and p < len(node) and isinstance(node[p], dict)
        if named and isinstance(node[p].get("name"), str) and parts:
            parts[-1] = f"{parts[-1]}[{node[p]['name']}]"
        else:
            parts.append(str(p))
        node = node[p] if isinstance(node, (list, dict)) and _has(node, p) else None
    return parts


def _has(node: list[Any] | dict[Any, Any], key: Any) -> bool:
    return key in node if isinstance(node, dict) else isinstance(key, int) and 0 <= key < len(node)


class LoadedConfig(BaseModel):
    """A validated config plus where it came from (relative paths resolve against `base_dir`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    config: PipelineConfig
    path: Path
    base_dir: Path

    def resolve(self, text: str) -> Path:
        return resolve_path(text, self.base_dir)


def parse_config(data: Any, origin: str = "<config>") -> PipelineConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"invalid configuration in {origin}: expected a mapping at the top level")
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, origin, data)) from None


def load_config(path: str | Path) -> LoadedConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    config = parse_config(data, str(path))
    unset = unset_variables(data)
    if unset:
        raise ConfigError("\n".join([f"invalid configuration in {path}:", *unset]))
    return LoadedConfig(config=config, path=path.resolve(), base_dir=path.resolve().parent)


def config_json_schema() -> dict[str, Any]:
    schema = PipelineConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://globmed-data/schemas/pipeline-config.schema.json"
    schema["title"] = "globmed-data pipeline configuration"
    return schema
