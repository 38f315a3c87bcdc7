"""The second-opinion detectors answer exactly as py3langid and langdetect themselves do, and
the model cache and the prefetching thread behave."""

from __future__ import annotations

import json
import random
import threading

import numpy as np
import pytest

from globmed_data.kernels import model_cache
from globmed_data.langid.second_opinions import LangDetect, Py3LangId, _langdetect_code, _next_uint32, _random
from globmed_data.prefetch import prefetched
from tests.helpers import SHARED_DATA, needs_shared

TEXTS = [
    "Quel est le traitement de première intention de l'hypertension artérielle",
    "¿Cuál es el tratamiento de primera elección de la hipertensión arterial?",
    "Какой препарат является препаратом выбора при артериальной гипертензии",
    "高血压的首选治疗药物是什么",
    "Mgonjwa ana homa kali na maumivu makali ya kichwa tangu jana usiku",
    "cishe seziqhubeke isikhathi eside kanganani lezi zimpawu",
    "The concentration of a negative ion is mMoUL extracellular and mMo intracellular",
    "the cat",
    "12345 !!!",
    "",
]


def test_the_compiled_generator_draws_what_pythons_random_draws() -> None:
    state = random.Random(0).getstate()[1]
    mt, index = np.array(state[:624], np.uint32), np.array([state[624]], np.int64)
    want = random.Random(0)
    assert [_random(mt, index) for _ in range(1500)] == [want.random() for _ in range(1500)]
    assert [_next_uint32(mt, index) >> 21 for _ in range(700)] == [want.getrandbits(11) for _ in range(700)]


def _langdetect_itself(text: str) -> dict[str, float]:
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0
    try:
        return {_langdetect_code(r.lang): float(r.prob) for r in detect_langs(text)}
    except LangDetectException:
        return {}


def test_langdetect_scores_are_langdetects_own() -> None:
    ours = LangDetect()
    for text in TEXTS:
        assert ours.scores(text) == _langdetect_itself(text), text


@needs_shared
def test_langdetect_scores_are_langdetects_own_on_real_sentences() -> None:
    texts = []
    for path in sorted((SHARED_DATA / "TICO-19").glob("tico19_en-*.jsonl"))[:12]:
        with path.open(encoding="utf-8") as fh:
            texts += [json.loads(line)["tgt"] for _, line in zip(range(3), fh, strict=False)]
    ours = LangDetect()
    assert len(texts) >= 20
    for text in texts:
        assert ours.scores(text) == _langdetect_itself(text), text


def test_py3langid_from_the_cache_ranks_as_py3langid_does() -> None:
    from py3langid.langid import MODEL_FILE
    from py3langid.langid import LanguageIdentifier as Model

    theirs = Model.from_model_file(MODEL_FILE, norm_probs=True)
    ours = Py3LangId()
    for text in TEXTS:
        want = {code: float(p) for code, p in theirs.rank(text)[:3]}
        assert ours.scores(text) == want
    assert {"zu", "ha", "yo", "sw"} <= ours.labels


def test_the_model_cache_builds_once_and_again_when_the_source_changes(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GLOBMED_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "model.txt"
    source.write_text("v1")
    builds = []

    def build() -> dict[str, np.ndarray]:
        builds.append(source.read_text())
        return {"values": np.arange(3), "names": np.array(["a", "bc"])}

    first = model_cache.cached_arrays("demo", source, build)
    again = model_cache.cached_arrays("demo", source, build)
    assert builds == ["v1"] and again["names"].tolist() == ["a", "bc"]
    assert np.array_equal(first["values"], again["values"])
    source.write_text("v2, a longer file")  # a new package version: a new entry
    model_cache.cached_arrays("demo", source, build)
    assert builds == ["v1", "v2, a longer file"]
    for entry in (tmp_path / "cache").glob("demo-*.npz"):  # truncated, say by a full disk
        entry.write_bytes(entry.read_bytes()[:100])
    assert model_cache.cached_arrays("demo", source, build)["names"].tolist() == ["a", "bc"]
    assert len(builds) == 3  # built again, not an error
    # A cache that cannot be written is not an error: the arrays are built each time.
    monkeypatch.setenv("GLOBMED_CACHE_DIR", str(source))  # a file, not a folder
    assert model_cache.cached_arrays("demo", source, build)["values"].tolist() == [0, 1, 2]


def test_prefetching_keeps_order_raises_errors_and_stops_early() -> None:
    assert list(prefetched(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise ValueError("bad batch")

    got = []
    with pytest.raises(ValueError, match="bad batch"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1]

    closed = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    for item in prefetched(endless()):
        if item == 5:
            break
    assert closed.wait(2)  # the background thread stopped and closed its source
