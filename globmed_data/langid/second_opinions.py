"""The detectors asked where fastText is unsure: py3langid and langdetect, as those packages
define them, made cheap to start and (langdetect) to run.

- py3langid ships its model LZMA-compressed: unpacking it costs about a second per process.
  The unpacked arrays are kept in the model cache (model_cache), keyed by the package's model
  file, and later processes load them in milliseconds.
- langdetect parses 55 JSON profiles per process (about a second) and then runs 7 random
  trials of up to 1,000 steps in pure Python (20-60 ms per text). Its profiles are cached as
  one matrix, and the trials run compiled, drawing from the same Mersenne Twister stream as
  Python's `random` (seeded as langdetect seeds it), in the same float64 order, so the
  probabilities are langdetect's own to the last bit (tests compare them). Its text cleaning
  and n-gram extraction are langdetect's own code, called as is.
"""

from __future__ import annotations

import math
import random
import sys
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numba
import numpy as np

from globmed_data.kernels.model_cache import cached_arrays
from globmed_data.langid.fasttext_model import LangIdError


class Py3LangId:
    """py3langid (a langid.py port): covers Zulu, Hausa, Kinyarwanda, Yoruba and others."""

    name = "py3langid"

    def __init__(self) -> None:
        try:
            import py3langid  # noqa: F401
        except ImportError:
            raise LangIdError("py3langid is not installed: `pip install py3langid`") from None

    @property
    def _model(self) -> Any:
        return _py3langid_model()

    @cached_property
    def labels(self) -> frozenset[str]:
        return frozenset(self._model.nb_classes)

    def scores(self, text: str) -> dict[str, float]:
        return {code: float(p) for code, p in self._model.rank(text)[:3]}


@cache
def _py3langid_model() -> Any:
    """py3langid's own identifier, built from its unpacked model arrays (cached)."""
    from py3langid import modelio
    from py3langid.langid import MODEL_DIR, MODEL_FILE
    from py3langid.langid import LanguageIdentifier as Model

    source = MODEL_DIR / MODEL_FILE

    def unpack() -> dict[str, np.ndarray]:
        ptc, pc, classes, nextmove, row, output = modelio.load_model(source)
        return {"ptc": ptc, "pc": pc, "classes": np.array(classes), "nextmove": np.asarray(nextmove),
                "row": np.asarray(row), "output": np.asarray(output, np.int64)}  # fmt: skip

    a = cached_arrays("py3langid", source, unpack)
    return Model(
        a["ptc"], a["pc"], a["classes"].tolist(), modelio._to_array(a["nextmove"]),
        a["output"].tolist(), norm_probs=True, tk_row=modelio._to_array(a["row"]),
    )  # fmt: skip


class LangDetect:
    """langdetect (a port of Google's language-detection), seeded, so it answers the same each
    time; compiled trials, langdetect's own probabilities."""

    name = "langdetect"

    def __init__(self) -> None:
        try:
            import langdetect  # noqa: F401
        except ImportError:
            raise LangIdError("langdetect is not installed: `pip install langdetect`") from None

    def scores(self, text: str) -> dict[str, float]:
        from langdetect.detector import Detector

        profiles = _langdetect_profiles()
        detector = Detector(profiles)
        detector.append(text)
        detector.cleaning_text()
        ngrams = detector._extract_ngrams()
        if not ngrams:
            return {}  # langdetect raises "No features in text"
        rows = np.fromiter((profiles.word_lang_prob_map[w] for w in ngrams), np.int64, len(ngrams))
        langprob = _trials(
            rows, profiles.table, profiles.mt, profiles.mt_index, detector.n_trial, detector.alpha,
            detector.ALPHA_WIDTH, float(detector.BASE_FREQ), detector.ITERATION_LIMIT,
            detector.CONV_THRESHOLD, _COMPENSATED_SUM,
        )  # fmt: skip
        ranked = detector._sort_probability(langprob.tolist())
        return {_langdetect_code(r.lang): float(r.prob) for r in ranked}


def _langdetect_code(code: str) -> str:
    return {"zh-cn": "zh", "zh-tw": "zh"}.get(code, code)


class _Profiles:
    """What a langdetect Detector reads from its factory: the n-grams (here mapped to rows of
    one matrix of per-language probabilities), the language list and the seed."""

    seed = 0  # langdetect is random unless seeded

    def __init__(self, words: list[str], table: np.ndarray, langlist: list[str]) -> None:
        self.word_lang_prob_map = {w: k for k, w in enumerate(words)}
        self.table = table
        self.langlist = langlist
        state = random.Random(self.seed).getstate()[1]  # as Detector seeds its own Random
        self.mt = np.array(state[:624], np.uint32)
        self.mt_index = int(state[624])


@cache
def _langdetect_profiles() -> _Profiles:
    from langdetect import detector_factory

    directory = Path(detector_factory.PROFILES_DIRECTORY)

    def build() -> dict[str, np.ndarray]:
        factory = detector_factory.DetectorFactory()
        factory.load_profile(str(directory))
        words = list(factory.word_lang_prob_map)
        table = np.array([factory.word_lang_prob_map[w] for w in words], np.float64)
        return {"words": np.array(words), "table": table, "langlist": np.array(factory.langlist)}

    a = cached_arrays("langdetect", directory, build)
    return _Profiles(a["words"].tolist(), a["table"], a["langlist"].tolist())


# Python's sum() of floats adds left to right up to 3.11 and compensates from 3.12 on;
# langdetect's normalisation calls it, so the trials do as this Python does.
_COMPENSATED_SUM = sys.version_info >= (3, 12)
_TWO_PI = 2.0 * math.pi


@numba.njit(cache=True, nogil=True)
def _trials(rows: np.ndarray, table: np.ndarray, seed_mt: np.ndarray, seed_index: int, n_trial: int,
            alpha0: float, alpha_width: float, base_freq: float, limit: int, converged: float,
            compensated: bool) -> np.ndarray:  # fmt: skip
    """langdetect's Detector._detect_block after its n-gram extraction."""
    mt = seed_mt.copy()
    index = np.array([seed_index], np.int64)
    nlang = table.shape[1]
    langprob = np.zeros(nlang)
    gauss_next, has_next = 0.0, False
    bits = 0
    while (1 << bits) <= len(rows):  # int.bit_length()
        bits += 1
    for _ in range(n_trial):
        prob = np.full(nlang, 1.0 / nlang)
        if has_next:  # random.gauss keeps its second value for the next call
            z, has_next = gauss_next, False
        else:
            x2pi = _random(mt, index) * _TWO_PI
            g2rad = math.sqrt(-2.0 * math.log(1.0 - _random(mt, index)))
            z = math.cos(x2pi) * g2rad
            gauss_next, has_next = math.sin(x2pi) * g2rad, True
        alpha = alpha0 + (0.0 + z * 1.0) * alpha_width
        i = 0
        while True:
            r = _next_uint32(mt, index) >> (32 - bits)  # random.choice: _randbelow
            while r >= len(rows):
                r = _next_uint32(mt, index) >> (32 - bits)
            word = rows[r]
            weight = alpha / base_freq
            for j in range(nlang):
                prob[j] *= weight + table[word, j]
            if i % 5 == 0 and (_normalise(prob, compensated) > converged or i >= limit):
                break
            i += 1
        for j in range(nlang):
            langprob[j] += prob[j] / n_trial
    return langprob


@numba.njit(cache=True, nogil=True)
def _normalise(prob: np.ndarray, compensated: bool) -> float:
    total = 0.0
    if compensated:  # Python 3.12+ sum(): Neumaier
        c = 0.0
        for p in prob:
            t = total + p
            if abs(total) >= abs(p):
                c += (total - t) + p
            else:
                c += (p - t) + total
            total = t
        if c != 0.0 and math.isfinite(c):
            total += c
    else:
        for p in prob:
            total += p
    top = 0.0
    for j in range(len(prob)):
        p = prob[j] / total
        if top < p:
            top = p
        prob[j] = p
    return top


@numba.njit(cache=True, nogil=True)
def _next_uint32(mt: np.ndarray, index: np.ndarray) -> int:
    """MT19937, as CPython's random module runs it."""
    if index[0] >= 624:
        for k in range(624):
            upper = np.uint32(mt[k]) & np.uint32(0x80000000)
            y = upper | (np.uint32(mt[(k + 1) % 624]) & np.uint32(0x7FFFFFFF))
            v = np.uint32(mt[(k + 397) % 624]) ^ (y >> np.uint32(1))
            if y & np.uint32(1):
                v ^= np.uint32(0x9908B0DF)
            mt[k] = v
        index[0] = 0
    y = np.uint32(mt[index[0]])
    index[0] += 1
    y ^= y >> np.uint32(11)
    y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
    y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
    y ^= y >> np.uint32(18)
    return np.int64(y)


@numba.njit(cache=True, nogil=True)
def _random(mt: np.ndarray, index: np.ndarray) -> float:
    a = _next_uint32(mt, index) >> 5
    b = _next_uint32(mt, index) >> 6
    return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0)
