"""Settings of the benchmark flow (docs/benchmark.md): the `bench:` section of a config; the
CLI's flags override them for one run."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from globmed_data.bench.specs import parse_spec
from globmed_data.settings import SPLIT_NAMES, Strict, Task, as_list


class BenchSettings(Strict):
    """Which models are scored on a published version, on what, and how."""

    # Scored on every published version by the benchmark deployment; `globmed bench run --model`
    # names others. Specs: hf:PATH_OR_ID, vllm:PATH_OR_ID, openai:MODEL@URL, constant:A, random:SEED.
    models: list[str] = Field(default_factory=lambda: ["constant:A", "random:0"])
    tasks: list[Task] = Field(default_factory=list)  # empty: every task
    languages: list[str] = Field(default_factory=list)  # empty: every language
    splits: list[str] = Field(default_factory=lambda: ["test"])
    limit: int | None = Field(None, ge=1)  # items per (task, language, split) at most: the first by entry id
    # loglik: the option letter with the highest log-likelihood; generate: the reply parsed.
    # auto: generate for openai endpoints (they give no log-likelihoods), loglik otherwise.
    mode: Literal["auto", "loglik", "generate"] = "auto"
    judge: str | None = None  # a model spec that grades open-QA replies against the reference (yes/no)
    instruction: Literal["en", "item"] = "en"  # item: the item's language where a template exists
    batch_size: int = Field(8, ge=1)
    device: str = "cpu"  # hf: cpu, cuda, cuda:1, ...
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    max_gen_tokens: int = Field(32, ge=1)  # generate mode, choice tasks
    max_gen_tokens_open_qa: int = Field(128, ge=1)
    vllm_python: str | None = None  # vLLM's environment's interpreter; default $GLOBMED_VLLM_PYTHON
    vllm_engine: dict[str, Any] = Field(default_factory=dict)  # vllm.LLM(...) kwargs, e.g. max_model_len
    # GPUs Ray reserves for each hf/vllm model (executor: ray); default: 1 when device is cuda (hf),
    # the tensor x pipeline parallel size (vllm), 0 for the rest.
    gpus: float | None = Field(None, ge=0)
    api_key_env: str = "OPENAI_API_KEY"  # openai: the key's environment variable (unset: no key)
    api_key_secret: str | None = None  # or a Prefect Secret block's name
    out: str | None = None  # reports, charts, harness tasks and logs; default: bench/ by the warehouse

    _lists = field_validator("models", "tasks", "languages", "splits", mode="before")(as_list)

    @field_validator("models")
    @classmethod
    def _specs(cls, v: list[str]) -> list[str]:
        for spec in v:
            parse_spec(spec)  # raises with what a spec looks like
        return v

    @field_validator("judge")
    @classmethod
    def _judge(cls, v: str | None) -> str | None:
        if v is not None:
            parse_spec(v)
        return v

    @field_validator("splits")
    @classmethod
    def _splits(cls, v: list[str]) -> list[str]:
        stray = sorted(set(v) - set(SPLIT_NAMES))
        if stray:
            raise ValueError(f"unknown split(s) {', '.join(stray)}; use {', '.join(SPLIT_NAMES)}")
        return v
