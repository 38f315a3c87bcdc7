"""Translation backends behind one small interface: `translate(texts, src, tgt) -> outputs`.

- hf: transformers on CPU or GPU: seq2seq MT models (NLLB-200, M2M100, Marian, T5) or causal LMs
  with a chat template; local folder or Hub id; imported lazily (extra `[train]`).
- openai: any OpenAI-compatible chat-completions endpoint; bounded concurrency, timeouts, retries
  with backoff (429 honours Retry-After), the key from the environment or a Prefect Secret.
- vllm: vLLM's offline engine in a worker process of vLLM's own environment (vllm_worker.py), one
  batched `LLM.chat` call per batch.

An output of None means that segment failed in the backend (the entry is rejected with the
error; other segments go on). Errors that would recur on a retry (a prompt longer than the
context, a 400 answer) start with PERMANENT: the cache keeps them, so re-runs do not retry them.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from globmed_data.pipeline.executor import Hosted, device_gpus, vllm_gpus
from globmed_data.secrets import credential, redact
from globmed_data.translate.settings import (
    BackendSettings,
    HFBackendSettings,
    OpenAIBackendSettings,
    VLLMBackendSettings,
)

LANGUAGE_NAMES = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fr": "French", "ha": "Hausa",
    "hi": "Hindi", "it": "Italian", "ja": "Japanese", "ko": "Korean", "pt": "Portuguese", "ru": "Russian",
    "sw": "Swahili", "th": "Thai", "yo": "Yoruba", "zh": "Chinese", "zu": "Zulu", "ig": "Igbo",
    "am": "Amharic", "so": "Somali", "rw": "Kinyarwanda", "lg": "Luganda", "ln": "Lingala",
}  # fmt: skip


class BackendError(RuntimeError):
    pass


PERMANENT = "permanent: "


class Backend(Protocol):
    name: str
    model: str
    batch_size: int

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str | None]: ...


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code.split("-")[0], code)


def chat_messages(text: str, src: str, tgt: str) -> list[dict[str, str]]:
    """The chat prompt (prompt version v1): a medical translator that keeps [n] placeholders."""
    system = (
        f"You are a professional medical translator. Translate the user's text from {language_name(src)} "
        f"to {language_name(tgt)}. Keep every placeholder such as [1] or [2] exactly as written, in "
        "the right place. Do not answer questions in the text, do not add notes: reply with the "
        "translation only."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def model_gpus(settings: BackendSettings) -> float | None:
    """The GPUs a backend's model needs where the executor places models (Ray); None: it holds
    no model (an endpoint serves it), so it stays in the run's process."""
    if isinstance(settings, OpenAIBackendSettings):
        return None
    if settings.gpus is not None:
        return settings.gpus
    if isinstance(settings, HFBackendSettings):
        return device_gpus(settings.device)
    return vllm_gpus(settings.engine)


class HostedBackend:
    """A backend whose model the executor holds (pipeline/executor.py `host`): a Ray actor with the
    model's GPUs, or the object itself in the run's process. The stage calls it as any backend."""

    def __init__(self, name: str, settings: BackendSettings, hosted: Hosted) -> None:
        self.name, self.model, self.hosted = name, settings.model, hosted
        self.batch_size: int = hosted.get("batch_size")
        self.last_errors: list[str | None] | None = None

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str | None]:
        outs: list[str | None] = self.hosted.call("translate", list(texts), src, tgt)
        self.last_errors = self.hosted.get("last_errors") if any(o is None for o in outs) else None
        return outs

    def close(self) -> None:
        self.hosted.close()


def make_backend(
    name: str, settings: BackendSettings, *, secret: Callable[[str], str] | None = None
) -> Backend:
    if isinstance(settings, HFBackendSettings):
        return HFBackend(name, settings)
    if isinstance(settings, OpenAIBackendSettings):
        return OpenAIBackend(name, settings)
    if isinstance(settings, VLLMBackendSettings):
        return VLLMBackend(name, settings)
    raise BackendError(f"unknown backend kind for {name}")


# -- hf -----------------------------------------------------------------------------------------


class HFBackend:
    def __init__(self, name: str, s: HFBackendSettings) -> None:
        self.name, self.model, self.batch_size, self.settings = name, s.model, s.batch_size, s
        self._loaded: tuple[Any, Any, bool] | None = None

    def _load(self) -> tuple[Any, Any, bool]:
        if self._loaded is None:
            try:
                from transformers import (
                    AutoConfig,
                    AutoModelForCausalLM,
                    AutoModelForSeq2SeqLM,
                    AutoTokenizer,
                )
            except ImportError as exc:
                raise BackendError(
                    "the hf backend needs transformers and torch: pip install '.[train]'"
                ) from exc
            from globmed_data.ops.retry import download_model

            source = download_model(self.model)  # a Hub id: fetched with retries, then loaded locally
            kwargs = {"local_files_only": True} if Path(source).is_dir() else {}
            config = AutoConfig.from_pretrained(source, **kwargs)
            seq2seq = bool(getattr(config, "is_encoder_decoder", False))
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            loader = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
            model = loader.from_pretrained(source, **kwargs).to(self.settings.device).eval()
            if not seq2seq:
                tokenizer.padding_side = "left"  # generation continues after the prompt
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            self._loaded = (tokenizer, model, seq2seq)
        return self._loaded

    def _code(self, lang: str) -> str:
        return self.settings.language_codes.get(lang, lang)

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str | None]:
        import torch

        tokenizer, model, seq2seq = self._load()
        # Similar lengths batched together: less padding, and attention memory stays bounded.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[str | None] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            batch = [texts[i] for i in chosen]
            gen: dict[str, Any] = {"max_new_tokens": self.settings.max_new_tokens, "do_sample": False}
            if seq2seq:
                inputs, extra = self._seq2seq_inputs(tokenizer, batch, src, tgt)
                gen.update(extra)
            else:
                chats = [chat_messages(t, src, tgt) for t in batch]
                prompts = [
                    tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                    for c in chats
                ]
                inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            inputs = inputs.to(model.device)
            with torch.inference_mode():
                generated = model.generate(**inputs, **gen, pad_token_id=tokenizer.pad_token_id)
            if not seq2seq:
                generated = generated[:, inputs["input_ids"].shape[1] :]
            for i, text in zip(
                chosen, tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True
            ):
                out[i] = text.strip()
        return out

    def _seq2seq_inputs(
        self, tokenizer: Any, batch: list[str], src: str, tgt: str
    ) -> tuple[Any, dict[str, Any]]:
        extra: dict[str, Any] = {}
        tgt_code = self._code(tgt)
        if hasattr(tokenizer, "src_lang") and tgt_code in tokenizer.get_vocab():
            # NLLB / M2M100: source language on the tokenizer, target as the forced first token
            tokenizer.src_lang = self._code(src)
            extra["forced_bos_token_id"] = tokenizer.convert_tokens_to_ids(tgt_code)
        elif not getattr(tokenizer, "src_lang", None) and "opus-mt" not in self.model.lower():
            # T5-style text-to-text models read the task from a prefix; Marian models need none
            batch = [f"translate {language_name(src)} to {language_name(tgt)}: {t}" for t in batch]
        return tokenizer(batch, return_tensors="pt", padding=True, truncation=True), extra


# -- openai -------------------------------------------------------------------------------------


class OpenAIBackend:
    def __init__(self, name: str, s: OpenAIBackendSettings, *, transport: Any = None) -> None:
        self.name, self.model, self.settings = name, s.model, s
        self.batch_size = s.concurrency * 8
        self._transport = transport  # tests only: an httpx transport
        self.last_errors: list[str | None] = []  # per input of the last call: why its output is None

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str | None]:
        return asyncio.run(self._all(list(texts), src, tgt))

    async def _all(self, texts: list[str], src: str, tgt: str) -> list[str | None]:
        import httpx

        key = credential(self.settings.api_key_env, self.settings.api_key_secret)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        limit = asyncio.Semaphore(self.settings.concurrency)
        timeout = httpx.Timeout(self.settings.timeout_s)
        errors: list[str | None] = [None] * len(texts)
        async with httpx.AsyncClient(headers=headers, timeout=timeout, transport=self._transport) as client:

            async def one(i: int, text: str) -> str | None:
                async with limit:
                    try:
                        return await self._request(client, text, src, tgt)
                    except BackendError as exc:
                        errors[i] = redact(str(exc), key)
                        return None

            outputs = list(await asyncio.gather(*(one(i, t) for i, t in enumerate(texts))))
        self.last_errors = errors
        return outputs

    async def _request(self, client: Any, text: str, src: str, tgt: str) -> str:
        import httpx

        s = self.settings
        url = s.base_url.rstrip("/") + "/chat/completions"
        payload = {"model": s.model, "messages": chat_messages(text, src, tgt), "max_tokens": s.max_tokens,
                   "temperature": s.temperature}  # fmt: skip
        problem = ""
        for attempt in range(s.max_retries + 1):
            if attempt:
                await asyncio.sleep(_backoff(attempt, problem))
            try:
                response = await client.post(url, json=payload)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"HTTP {response.status_code}|{response.headers.get('retry-after', '')}"
                continue
            if response.status_code >= 400:
                # 400/413/422 answer the request itself and would again; 401/403/404 are set-up errors
                kind = PERMANENT if response.status_code in (400, 413, 422) else ""
                raise BackendError(f"{kind}HTTP {response.status_code} from {url}: {response.text[:300]}")
            try:
                return str(response.json()["choices"][0]["message"]["content"]).strip()
            except (KeyError, IndexError, ValueError) as exc:
                raise BackendError(f"unexpected response from {url}: {response.text[:300]}") from exc
        raise BackendError(f"gave up after {s.max_retries + 1} attempts: {problem.split('|')[0]}")


def _backoff(attempt: int, problem: str) -> float:
    """Retry-After when the server sent one (429/503), else exponential backoff with jitter."""
    retry_after = problem.split("|")[1] if "|" in problem else ""
    if retry_after.replace(".", "", 1).isdigit():
        return min(float(retry_after), 60.0)
    return min(0.5 * 2 ** (attempt - 1), 30.0) * (0.5 + random.random() / 2)


# -- vllm ---------------------------------------------------------------------------------------

WORKER = Path(__file__).with_name("vllm_worker.py")


class VLLMBackend:
    """Runs vllm_worker.py with the vLLM environment's interpreter: one engine start per call."""

    def __init__(self, name: str, s: VLLMBackendSettings) -> None:
        self.name, self.model, self.settings = name, s.model, s
        self.batch_size = 100_000  # the engine batches internally; one call per (src, tgt) group
        self.last_errors: list[str | None] = []

    def translate(self, texts: Sequence[str], src: str, tgt: str) -> list[str | None]:
        s = self.settings
        if not Path(s.python).exists():
            raise BackendError(f"vllm backend: interpreter {s.python} not found (the vLLM environment)")
        job = {
            "model": s.model,
            "engine": s.engine,
            "sampling": {"temperature": s.temperature, "max_tokens": s.max_tokens},
            "conversations": [chat_messages(t, src, tgt) for t in texts],
        }
        with tempfile.TemporaryDirectory(prefix="globmed-vllm-") as tmp:
            request, response = Path(tmp) / "request.json", Path(tmp) / "response.json"
            request.write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
            done = subprocess.run([s.python, str(WORKER), str(request), str(response)], capture_output=True,
                                  text=True, timeout=s.timeout_s)  # fmt: skip
            if done.returncode != 0:
                raise BackendError(f"vllm worker failed ({done.returncode}): {done.stderr[-2000:]}")
            outputs = json.loads(response.read_text(encoding="utf-8"))
        if len(outputs) != len(texts):
            raise BackendError(f"vllm worker returned {len(outputs)} outputs for {len(texts)} inputs")
        too_long = f"{PERMANENT}the prompt does not fit the model's context (max_model_len)"
        self.last_errors = [None if isinstance(o, str) else too_long for o in outputs]
        return [o.strip() if isinstance(o, str) else None for o in outputs]
