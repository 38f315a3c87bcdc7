"""Language identification of entries: fastText first, a second opinion where it is unsure.

Texts are prepared in one compiled pass (langid_text); fastText runs compiled over whole
columns (fasttext_model, fasttext_native); the second opinions (second_opinions) are asked
row by row for the few texts that need them. The same decisions are made for one text
(detect) and for whole columns (detect_frame, then judge_frame for the policy's verdict).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from globmed_data.langid.fasttext_model import FastTextModel, LangIdError, Ranked, default_model_path
from globmed_data.langid.second_opinions import LangDetect, Py3LangId

LANGID_VERSION = "1"

# Detected codes that count as the declared language (close varieties the models confuse).
AGREEMENT_FAMILIES: dict[str, str] = {
    "wuu": "zh", "yue": "zh", "gan": "zh", "hak": "zh", "nan": "zh", "lzh": "zh", "cdo": "zh",
    "nb": "no", "nn": "no",
    "pt-br": "pt",
}  # fmt: skip
# When the declared language is one the model cannot detect, only a confident detection of a
# widely used language means the text is not in it (an untranslated copy, typically).
SURE_WRONG = frozenset({"en", "fr", "es", "de", "pt", "it", "ru", "zh", "ja", "ar", "hi", "ko"})
# Scripts used by one language only: short texts in them need no statistical model.
SCRIPT_LANGUAGE = {"Hangul": "ko", "Kana": "ja", "Thai": "th", "Greek": "el", "Hebrew": "he",
                   "Georgian": "ka", "Armenian": "hy"}  # fmt: skip


def family(code: str | None) -> str | None:
    return AGREEMENT_FAMILIES.get(code, code) if code else code


def prepare_frame(texts: pl.Series, max_chars: int) -> pl.DataFrame:
    """Texts as the detectors should see them (clean), their dominant script, and letter counts:
    URLs, e-mails, digits and punctuation carry no language, and in a text mainly in a
    non-Latin script, Latin words are drug names and abbreviations (langid_text says how)."""
    # Imported here: the compiled pass needs numba, which the langid worker processes, given
    # prepared texts, never load.
    from globmed_data.langid.text import prepare_texts

    return prepare_texts(texts, max_chars)


def prepare(text: str, max_chars: int) -> tuple[str, str | None, int]:
    """prepare_frame for one text."""
    row = prepare_frame(pl.Series([text], dtype=pl.String), max_chars).row(0)
    return row[0], row[1], row[2]


Prepared = tuple[str, str | None, int]  # clean text, dominant script, letters
DETECTION_SCHEMA = {"language": pl.String, "confidence": pl.Float64, "detector": pl.String,
                    "runner_up": pl.String, "runner_up_confidence": pl.Float64, "script": pl.String,
                    "letters": pl.Int64}  # fmt: skip


class Detection(NamedTuple):
    language: str | None  # None: too short or nothing to go on
    confidence: float
    detector: str
    runner_up: str | None
    runner_up_confidence: float
    script: str | None
    letters: int


SECOND_OPINIONS = {"langdetect": LangDetect, "py3langid": Py3LangId}


class LanguageIdentifier:
    """fastText decides when sure; otherwise the second opinions vote with it (mean score).

    Texts too short for statistics are decided by script where the script has one language;
    a text in Chinese characters only (no Kana, no Hangul) is Chinese. When the declared
    language is one the fastText model lacks (lid.176: Zulu, Hausa, ...), the coverage detector
    (py3langid) answers instead, so such entries can be confirmed, not just left unsure.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        second_opinion: Sequence[str] = ("py3langid", "langdetect"),
        coverage: str | None = "py3langid",
        confident: float = 0.8,
        min_letters: int = 12,
        max_chars: int = 120,
    ) -> None:
        self.model = _load_model(Path(model_path) if model_path else default_model_path())
        self.seconds = [_second(kind) for kind in second_opinion]
        self.coverage = _second(coverage) if coverage else None
        self.confident = confident
        self.min_letters = min_letters
        self.max_chars = max_chars

    def supports(self, language: str) -> bool:
        if language in self.model.labels:
            return True
        return bool(self.coverage and language in self.coverage.labels)

    def decide(
        self, clean: str, script: str | None, letters: int, declared: str, policy: str, min_confidence: float
    ) -> tuple[Detection, Verdict]:
        det = self.detect_prepared(clean, script, letters, declared)
        verdict = judge(
            declared, det, supported=self.supports(declared), min_confidence=min_confidence, policy=policy
        )
        return det, verdict

    def detect(self, text: str, declared: str | None = None) -> Detection:
        return self.detect_prepared(*prepare(text, self.max_chars), declared)

    def detect_prepared(
        self, clean: str, script: str | None, letters: int, declared: str | None
    ) -> Detection:
        routed = self.route(clean, script, letters, declared)
        if routed is not None:
            return routed
        return self.finish(clean, script, letters, declared, self.model.top(clean, k=3))

    def unsure(self, best: Detection, declared: str | None) -> bool:
        """Whether fastText's answer needs second opinions: not confident, and not the declared
        language (a mismatch needs evidence; fastText's first choice agreeing is enough)."""
        if best.confidence >= self.confident or not self.seconds:
            return False
        return not (declared and family(best.language) == family(declared))

    def detect_frame(self, prepared: pl.DataFrame, declared: pl.Series, threads: int = 1) -> pl.DataFrame:
        """detect_prepared over whole columns (`prepared` as prepare_frame gives it): routes and
        fastText's answers are columns, fastText runs compiled on `threads` threads, and only
        the rows that need a second opinion (or the coverage detector) are asked one by one."""
        n = prepared.height
        clean, script = prepared.get_column("clean"), prepared.get_column("script").to_numpy()
        letters = prepared.get_column("letters").to_numpy()
        declared_ = declared.to_numpy()
        language = np.full(n, None, dtype=object)
        confidence, runner_conf = np.zeros(n), np.zeros(n)
        detector = np.full(n, "none", dtype=object)
        runner = np.full(n, None, dtype=object)

        def among(column: str | pl.Series, values: Collection[str]) -> np.ndarray:
            series = prepared.get_column(column) if isinstance(column, str) else column
            return series.is_in(list(values)).fill_null(False).to_numpy()

        by_script = among("script", ["Han", "Kana"]) & (letters >= 2)
        short = ~by_script & (letters < self.min_letters)
        routed_lang = np.where(script == "Han", "zh", "ja").astype(object)
        for name, lang in SCRIPT_LANGUAGE.items():
            routed_lang[short & (script == name)] = lang
        routed = by_script | (short & among("script", SCRIPT_LANGUAGE))
        language[routed] = routed_lang[routed]
        confidence[routed], detector[routed] = 1.0, "script"
        covered = ~(by_script | short) & among(declared, self._coverage_only(declared))
        need = np.flatnonzero(~(by_script | short | covered))

        ids, probs, counts = self.model.top_k(clean.gather(need), 3, threads)
        names = np.array([*self.model.label_list, None], dtype=object)  # id -1: no label
        p = np.minimum(probs.astype(np.float64), 1.0)
        language[need], confidence[need] = names[ids[:, 0]], np.where(counts > 0, p[:, 0], 0.0)
        runner[need], runner_conf[need] = names[ids[:, 1]], np.where(counts > 1, p[:, 1], 0.0)
        detector[need] = self.model.name
        # One by one: the coverage detector's rows; fastText rows with tied scores (the order
        # is then by code); and the unsure, which ask second opinions.
        tied = (counts > 1) & ((p[:, 0] == p[:, 1]) | ((counts > 2) & (p[:, 1] == p[:, 2])))
        sure = (confidence[need] >= self.confident) | (not self.seconds)
        agrees = _families(language[need]) == _families(declared_[need])
        slow = need[tied | ~(sure | (agrees & (declared_[need] != None)))]  # noqa: E711
        for k in [*np.flatnonzero(covered), *slow]:
            row = (clean[int(k)], script[k], int(letters[k]))
            if covered[k]:
                det = self.route(*row, declared_[k])
            else:
                at = int(np.searchsorted(need, k))
                top = [(str(names[ids[at, j]]), float(p[at, j])) for j in range(counts[at])]
                det = self.finish(*row, declared_[k], top)
            assert det is not None
            language[k], confidence[k], detector[k], runner[k], runner_conf[k] = det[:5]
        return pl.DataFrame(
            {"language": language.tolist(), "confidence": confidence, "detector": detector.tolist(),
             "runner_up": runner.tolist(),
             "runner_up_confidence": runner_conf, "script": prepared.get_column("script"),
             "letters": prepared.get_column("letters")},
            schema=DETECTION_SCHEMA,
        )  # fmt: skip

    def _coverage_only(self, declared: pl.Series) -> set[str]:
        """The declared languages only the coverage detector knows (route() sends them there).
        Its model is loaded only when some declared language is one fastText lacks."""
        lacking = set(declared.drop_nulls().unique().to_list()) - self.model.labels
        if not lacking or not self.coverage:
            return set()
        return lacking & self.coverage.labels

    def route(self, clean: str, script: str | None, letters: int, declared: str | None) -> Detection | None:
        """What is decided without fastText: by script, or by the coverage detector for a declared
        language the model lacks. None: fastText decides."""
        if script in ("Han", "Kana") and letters >= 2:
            lang = "zh" if script == "Han" else "ja"
            return Detection(lang, 1.0, "script", None, 0.0, script, letters)
        if letters < self.min_letters:
            lang = SCRIPT_LANGUAGE.get(script or "")
            return Detection(
                lang, 1.0 if lang else 0.0, "script" if lang else "none", None, 0.0, script, letters
            )
        if (
            declared
            and self.coverage
            and declared not in self.model.labels
            and declared in self.coverage.labels
        ):
            return _best(self.coverage.scores(clean), self.coverage.name, script, letters)
        return None

    def finish(
        self, clean: str, script: str | None, letters: int, declared: str | None, top: Ranked
    ) -> Detection:
        """The detection from fastText's top labels, with second opinions where it is unsure."""
        ranked = dict(top)
        best = _best(ranked, self.model.name, script, letters)
        if not self.unsure(best, declared):
            return best
        # Unsure: ask the second opinions in order, cheapest first, and stop as soon as one
        # backs fastText's first choice or the mean so far backs the declared language: the
        # slow one (langdetect, ~20 ms) then only breaks ties that could become a mismatch.
        votes = [ranked]
        for other in self.seconds:
            votes.append(other.scores(clean))
            lead = _lead(_mean(votes))
            if _lead(votes[-1]) == best.language or (declared and family(lead) == family(declared)):
                break
        names = [self.model.name, *(s.name for s in self.seconds[: len(votes) - 1])]
        return _best(_mean(votes), "+".join(names), script, letters)


def _second(kind: str) -> LangDetect | Py3LangId:
    try:
        return SECOND_OPINIONS[kind]()
    except KeyError:
        raise LangIdError(
            f"unknown language detector {kind!r}; use one of {sorted(SECOND_OPINIONS)}"
        ) from None


def _families(codes: np.ndarray) -> np.ndarray:
    return np.array([AGREEMENT_FAMILIES.get(c, c) for c in codes], dtype=object)


def _mean(votes: list[dict[str, float]]) -> dict[str, float]:
    combined: dict[str, float] = {}
    for vote in votes:
        for code, p in vote.items():
            combined[code] = combined.get(code, 0.0) + p / len(votes)
    return combined


def _lead(scores: dict[str, float]) -> str | None:
    return min(scores.items(), key=lambda kv: (-kv[1], kv[0]), default=(None, 0.0))[0]


def _best(scores: dict[str, float], detector: str, script: str | None, letters: int) -> Detection:
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    if not ranked:
        return Detection(None, 0.0, detector, None, 0.0, script, letters)
    lang, conf = ranked[0]
    second, second_conf = ranked[1] if len(ranked) > 1 else (None, 0.0)
    return Detection(lang, min(conf, 1.0), detector, second, second_conf, script, letters)


@cache
def _load_model(path: Path) -> FastTextModel:
    return FastTextModel(path)


def entry_text(entry: dict[str, Any]) -> str:
    """The text whose language an entry claims: question and options, or the NLI pair."""
    frame = pl.DataFrame([entry], schema=_TEXT_SCHEMA)
    return frame.select(entry_text_expr()).item()


_TEXT_SCHEMA = {
    "task": pl.String, "question": pl.String, "premise": pl.String, "hypothesis": pl.String,
    "options": pl.List(pl.String), "answer": pl.String, "context": pl.String,
}  # fmt: skip


def entry_text_expr() -> pl.Expr:
    """entry_text as a polars expression over entry columns; short texts borrow the context."""
    parts = pl.concat_str(
        [
            pl.col("question"),
            pl.col("premise"),
            pl.col("hypothesis"),
            pl.col("options").list.join(" "),
            pl.when(pl.col("task") == "open_qa").then(pl.col("answer")),
        ],
        separator=" ",
        ignore_nulls=True,
    )
    short = (parts.str.len_chars() < 200) & pl.col("context").is_not_null()
    return (
        pl.when(short)
        .then(pl.concat_str([parts, pl.col("context").str.slice(0, 600)], separator=" "))
        .otherwise(parts)
        .alias("text")
    )


class Verdict(NamedTuple):
    """What the stage decides for one entry, given its declared language and the policy."""

    agrees: bool | None  # None: cannot tell (too short, unsure, or language unsupported)
    decision: str  # agree | unsure | unsupported | too_short | flag | relabel | reject
    language_out: str  # the entry's language after the decision


def judge(declared: str, det: Detection, *, supported: bool, min_confidence: float, policy: str) -> Verdict:
    if det.language is None:
        return Verdict(None, "too_short", declared)
    if family(det.language) == family(declared):
        return Verdict(True, "agree", declared)
    if det.detector == "script" and det.script == "Han" and declared in ("ja", "ko"):
        return Verdict(None, "unsure", declared)  # Kanji/Hanja-only text can be either
    if not supported:
        sure_wrong = det.language in SURE_WRONG and det.confidence >= 0.9
        if not sure_wrong:
            return Verdict(None, "unsupported", declared)
    elif det.confidence < min_confidence:
        return Verdict(None, "unsure", declared)
    return Verdict(False, policy, family(det.language) if policy == "relabel" else declared)


def judge_frame(df: pl.DataFrame, min_confidence: float) -> pl.DataFrame:
    """judge over whole columns: `df` has declared, language (detected), confidence, detector,
    script, supported and policy; gives agrees, decision and language_out, as judge would."""
    declared, detected = pl.col("declared"), pl.col("language")
    same = detected.replace(AGREEMENT_FAMILIES) == declared.replace(AGREEMENT_FAMILIES)
    han_only = (pl.col("detector") == "script") & (pl.col("script") == "Han") & declared.is_in(["ja", "ko"])
    sure_wrong = detected.is_in(list(SURE_WRONG)) & (pl.col("confidence") >= 0.9)
    undecided = (
        pl.when(detected.is_null())
        .then(pl.lit("too_short"))
        .when(same)
        .then(pl.lit("agree"))
        .when(han_only)  # Kanji/Hanja-only text can be either
        .then(pl.lit("unsure"))
        .when(~pl.col("supported") & ~sure_wrong)
        .then(pl.lit("unsupported"))
        .when(pl.col("supported") & (pl.col("confidence") < min_confidence))
        .then(pl.lit("unsure"))
    )
    decision = pl.coalesce(undecided, pl.col("policy"))
    return df.select(
        agrees=pl.when(decision == "agree").then(True).when(undecided.is_null()).then(False),
        decision=decision,
        language_out=pl.when(undecided.is_null() & (pl.col("policy") == "relabel"))
        .then(detected.replace(AGREEMENT_FAMILIES))
        .otherwise(declared),
    )
