"""Compile the numba kernels ahead of the first run (`make install` calls this).

The kernels are compiled on first use and cached next to their modules (`__pycache__/*.nbi`);
the first run on a fresh install otherwise spends a minute or two compiling in silence. This
runs every stage that uses them on a few demo-like texts, so the cache is filled for all.

    python -m globmed_data.kernels.warm
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from pathlib import Path

# Every module with cached kernels, by import name.
MODULES = (
    "globmed_data.kernels.text_metrics",
    "globmed_data.dedup.kernels",
    "globmed_data.langid.text",
    "globmed_data.langid.fasttext_native",
    "globmed_data.langid.second_opinions",
)


def cold_modules() -> list[str]:
    """Kernel modules with nothing in numba's cache yet (empty when a cache dir is configured
    elsewhere: then there is no cheap way to tell)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return []
    cold = []
    for name in MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        source = Path(spec.origin)
        if not any((source.parent / "__pycache__").glob(f"{source.stem}.*.nbi")):
            cold.append(name.rsplit(".", 2)[-2] + "." + source.stem)
    return cold


def compile_all() -> float:
    """Run the demo's stages once in a scratch warehouse (no Prefect): every kernel the pipeline
    uses is compiled and cached. Returns the seconds it took."""
    import tempfile

    from globmed_data.config import load_config
    from globmed_data.pipeline.registry import plan
    from globmed_data.pipeline.runner import run_step
    from globmed_data.pipeline.stage import Context
    from globmed_data.resources import resource_dir
    from globmed_data.warehouse import Warehouse

    started = time.perf_counter()
    config = resource_dir("configs") / "demo.yaml"
    loaded = load_config(config)
    with tempfile.TemporaryDirectory() as scratch, Warehouse(Path(scratch) / "warm.duckdb") as wh:
        for step in plan(loaded.config):
            if step.name == "export":
                continue  # no kernels; and it would write a dataset repository
            run_step(step, Context(wh, loaded, "warm-up"))
    _warm_second_opinions()
    return time.perf_counter() - started


def _warm_second_opinions() -> None:
    """langdetect's compiled trials run only where language ID asks for a second opinion, which
    the demo never does: called once here, so no later run finds them cold."""
    from globmed_data.langid.second_opinions import LangDetect, LangIdError

    with contextlib.suppress(LangIdError):  # langdetect not installed: its kernels never run
        LangDetect().scores("The patient has a fever and a cough since yesterday.")


if __name__ == "__main__":
    cold = cold_modules()
    print(f"compiling the text kernels ({', '.join(cold) or 'cache present, checking'})…", flush=True)
    print(f"kernels ready in {compile_all():.0f}s")
