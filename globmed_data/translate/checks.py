"""Checks on every translated entry. Each failure is a reason code, optionally `code(detail)`:

backend_error, empty_output, protected_lost / protected_repeated / protected_invented (a
placeholder did not survive), numbers_changed, copy_of_source, length_ratio(r), repetition,
wrong_language(xx).
"""

from __future__ import annotations

import re
from collections import Counter

from globmed_data.kernels.scripts import UNSPACED_LANGUAGES
from globmed_data.langid.identify import LanguageIdentifier, judge
from globmed_data.settings import PerLanguage
from globmed_data.translate.segments import Segment, numbers_of
from globmed_data.translate.settings import TranslationChecks

_LETTERS = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"\w+")
COPY_MIN_LETTERS = 20  # shorter segments (drug names, "Aspirin") may rightly stay as they are


def for_language(value: PerLanguage, language: str) -> float:
    if isinstance(value, dict):
        return float(value.get(language.split("-")[0], value["default"]))
    return float(value)


def repeated_fraction(text: str, language: str) -> float:
    """Share of 3-grams (characters for unspaced scripts, words otherwise) that repeat an earlier one."""
    units = list(text.replace(" ", "")) if language in UNSPACED_LANGUAGES else _WORD.findall(text.lower())
    grams = [tuple(units[i : i + 3]) for i in range(len(units) - 2)]
    if len(grams) < 12:
        return 0.0
    return 1 - len(set(grams)) / len(grams)


class OutputChecker:
    def __init__(self, checks: TranslationChecks, identifier: LanguageIdentifier | None) -> None:
        self.checks = checks
        self.identifier = identifier if checks.language_id else None

    def check(
        self,
        segments: list[Segment],
        outputs: list[str | None],
        problems: list[list[str]],
        target: str,
    ) -> list[str]:
        """Reasons why this translated entry fails (empty: it passes)."""
        reasons: list[str] = []
        where = lambda seg: f"{seg.field}[{seg.index}]" if seg.index is not None else seg.field  # noqa: E731
        for seg, out, found in zip(segments, outputs, problems, strict=True):
            if out is None:
                reasons.append(f"backend_error({where(seg)})")
                continue
            if seg.text.strip() and not out.strip():
                reasons.append(f"empty_output({where(seg)})")
            reasons += [f"{code}({where(seg)})" for code in found]
            letters = len(_LETTERS.findall(seg.text))
            if (
                seg.needs_model
                and letters >= COPY_MIN_LETTERS
                and out.strip().casefold() == seg.text.strip().casefold()
            ):
                reasons.append(f"copy_of_source({where(seg)})")
            if seg.needs_model and repeated_fraction(out, target) > self.checks.max_repeated_ngram_fraction:
                reasons.append(f"repetition({where(seg)})")
        if reasons:
            return _unique(reasons)
        source = " ".join(s.text for s in segments)
        output = " ".join(o or "" for o in outputs)
        if numbers_of(source) != numbers_of(output):
            reasons.append("numbers_changed")
        translated = [(s, o or "") for s, o in zip(segments, outputs, strict=True) if s.needs_model]
        src_chars = sum(len(s.text) for s, _ in translated)
        if src_chars:
            ratio = sum(len(o) for _, o in translated) / src_chars
            low = for_language(self.checks.min_length_ratio, target)
            high = for_language(self.checks.max_length_ratio, target)
            if not low <= ratio <= high:
                reasons.append(f"length_ratio({ratio:.2f})")
        if self.identifier is not None and translated:
            det = self.identifier.detect(" ".join(o for _, o in translated), target)
            verdict = judge(target, det, supported=self.identifier.supports(target), min_confidence=0.5,
                            policy="reject")  # fmt: skip
            if verdict.decision == "reject":
                reasons.append(f"wrong_language({det.language})")
        return reasons


def _unique(items: list[str]) -> list[str]:
    return list(Counter(items))
