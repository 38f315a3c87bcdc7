"""Settings of the translation stage: backends, jobs and output checks (docs/translation.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from globmed_data.settings import FieldRef, PerLanguage, Strict, as_list, has_default
from globmed_data.sources.settings import FileFormat, ValueSpec, _as_value_spec


class HFBackendSettings(Strict):
    """Hugging Face transformers: seq2seq MT models (NLLB-200, M2M100, Marian) or causal LMs."""

    kind: Literal["hf"]
    model: str  # local folder or Hub id (a local folder never touches the network)
    device: str = "cpu"  # cpu, cuda, cuda:1, ...
    batch_size: int = Field(16, ge=1)
    max_new_tokens: int = Field(256, ge=1)
    # Model-specific language codes, e.g. NLLB {sw: swh_Latn, en: eng_Latn}; default: the ISO code.
    language_codes: dict[str, str] = Field(default_factory=dict)
    # GPUs Ray reserves for the model (executor: ray); default 1 when device is cuda, else 0.
    gpus: float | None = Field(None, ge=0)


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
    # GPUs Ray reserves for the engine (executor: ray); default tensor x pipeline parallel size.
    gpus: float | None = Field(None, ge=0)


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
    )(as_list)


class TranslationChecks(Strict):
    """Checks on every translated entry; a failure rejects it with a reason."""

    min_length_ratio: PerLanguage = Field(default_factory=lambda: {"default": 0.35, "zh": 0.12, "ja": 0.15})
    max_length_ratio: PerLanguage = Field(default_factory=lambda: {"default": 3.0, "zh": 1.5, "ja": 1.8})
    max_repeated_ngram_fraction: float = Field(0.5, gt=0, le=1)  # of the output's word/char 3-grams
    language_id: bool = True  # the output's detected language must be the target

    _per_language = field_validator("min_length_ratio", "max_length_ratio")(has_default)


class ParallelSet(Strict):
    """Reference translations in any file layout, for `globmed translate eval --set NAME`: the
    files (found and read as a source's are), the fields of the text and of its translation, and
    each side's language (a constant, a record field, or a regex group of the file path)."""

    name: str
    paths: list[str]
    exclude: list[str] = Field(default_factory=list)
    format: FileFormat = "auto"
    encoding: str = "utf-8"
    record_path: str | None = None
    source_text: FieldRef
    target_text: FieldRef
    source_language: ValueSpec = ValueSpec(value="en")
    target_language: ValueSpec

    _lists = field_validator("paths", "exclude", mode="before", json_schema_input_type=str | list[str])(
        as_list
    )
    _values = field_validator(
        "source_language", "target_language", mode="before", json_schema_input_type=str | ValueSpec
    )(_as_value_spec)


class TranslateSettings(Strict):
    """Translation into other languages (docs/translation.md)."""

    enabled: bool = False
    prompt_version: str = "v1"  # part of the cache key: change it when the prompt changes
    backends: dict[str, BackendSettings] = Field(default_factory=dict)
    jobs: list[TranslationJob] = Field(default_factory=list)
    protect_terms: list[str] = Field(default_factory=list)  # drug names etc. kept verbatim
    checks: TranslationChecks = TranslationChecks()
    eval_sets: list[ParallelSet] = Field(default_factory=list)  # parallel corpora for `translate eval`

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
