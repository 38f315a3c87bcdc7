"""The compiled fastText predictor gives the C++ engine's labels and probabilities, bit for bit."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from globmed_data.kernels.utf8 import utf8_buffers
from globmed_data.langid import fasttext_native
from globmed_data.langid.fasttext_model import FastTextModel, _engine, default_model_path
from tests.fasttext_files import write_model

TEXTS = [
    "Quel est le traitement de première intention de l'hypertension artérielle",
    "¿Cuál es el tratamiento de primera elección de la hipertensión arterial?",
    "Какой препарат является препаратом выбора при артериальной гипертензии",
    "उच्च रक्तचाप के लिए पहली पसंद की दवा कौन सी है",
    "ما هو العلاج الأول لارتفاع ضغط الدم الشرياني",
    "高血压的首选治疗药物是什么 高血圧の第一選択薬はどれか",
    "Mgonjwa ana homa kali na maumivu makali ya kichwa tangu jana usiku",
    "",
    " \t\v\f\r ",
    "a",
    "first line\nsecond line is never read",
    "tab\tand\x00nul separate words",
    "__label__en is a label, not a word; __label__ alone too",
    "x" * 300 + " " + "é" * 50,
    "emoji 🙂🙂 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 beyond the BMP",
    "a literal </s> ends the line as the newline does",
    "the the the of of and and in in to",
]


def _engine_and_native(path, texts, k=3):
    engine = _engine(path)  # the C++ engine itself
    native = fasttext_native.load(path)
    data, offsets = utf8_buffers(pl.Series(texts, dtype=pl.String))
    ids, probs, counts = native.predict(data, offsets, k)
    got = [
        [(native.labels[ids[i, j]], min(float(probs[i, j]), 1.0)) for j in range(counts[i])]
        for i in range(len(texts))
    ]
    want = [
        [
            (label.removeprefix("__label__"), min(float(p), 1.0))
            for p, label in engine.f.predict(t + "\n", k, 0.0, "strict")
        ]
        for t in texts
    ]
    return want, got


def test_the_bundled_model_predicts_as_the_engine_does() -> None:
    want, got = _engine_and_native(default_model_path(), TEXTS)
    assert got == want  # same labels, same float32 probabilities


MODELS = {
    "hs dense": {},
    "softmax dense, word bigrams": {"loss": 3, "word_ngrams": 2},
    "softmax, no subwords, word trigrams": {"loss": 3, "maxn": 0, "word_ngrams": 3},
    "hs quantised, norms quantised, pruned": {"quantised": True, "qnorm": True, "pruned": 300},
    "softmax quantised output, pruned": {
        "loss": 3,
        "quantised": True,
        "qout": True,
        "qnorm": True,
        "pruned": 500,
    },
    "hs quantised, odd width": {"quantised": True, "dim": 7},
    "hs quantised, pruned to nothing": {"quantised": True, "pruned": 0},
}


@pytest.mark.parametrize("kind", list(MODELS))
def test_every_kind_of_model_predicts_as_the_engine_does(tmp_path, kind) -> None:
    words = sorted({w for t in TEXTS for w in t.split() if "\0" not in w})[:40]
    labels = ["en", "fr", "es", "ru", "hi", "ar", "zh", "ja", "sw", "de", "it"]
    path = write_model(tmp_path / "model.bin", words, labels, **MODELS[kind])
    for k in (1, 3, 11):
        want, got = _engine_and_native(path, TEXTS, k)
        for w, g in zip(want, got, strict=True):
            assert [lab for lab, _ in g] == [lab for lab, _ in w]
            assert np.allclose([p for _, p in g], [p for _, p in w], rtol=0, atol=0)


def test_other_losses_and_other_files_are_refused(tmp_path) -> None:
    with pytest.raises(fasttext_native.UnsupportedModel, match="loss 2"):
        fasttext_native.load(write_model(tmp_path / "ns.bin", ["a"], ["en", "fr"], loss=2))
    (tmp_path / "junk.bin").write_bytes(b"not a model at all")
    with pytest.raises(fasttext_native.UnsupportedModel, match="not a fastText model"):
        fasttext_native.load(tmp_path / "junk.bin")


def test_the_model_uses_the_compiled_predictor_and_falls_back_to_the_engine(tmp_path) -> None:
    texts = pl.Series(TEXTS * 300, dtype=pl.String)  # enough for the threads to share them
    compiled = FastTextModel(default_model_path())
    assert compiled.native is not None and {"en", "zh", "sw"} <= compiled.labels
    one, two = compiled.top_k(texts, 3), compiled.top_k(texts, 3, threads=2)
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    # A loss the compiled predictor lacks (negative sampling) runs on the engine, same answers.
    path = write_model(tmp_path / "ns.bin", ["the", "der"], ["en", "de", "fr"], loss=2)
    engine = FastTextModel(path)
    assert engine.native is None and engine.labels == {"en", "de", "fr"}
    assert engine.top_many(["the der", "x"], 2) == [
        [
            (lab.removeprefix("__label__"), min(float(p), 1.0))
            for p, lab in engine._engine.f.predict(t + "\n", 2, 0.0, "strict")
        ]
        for t in ["the der", "x"]
    ]
