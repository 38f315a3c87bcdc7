"""An entry as separately translated segments, with the spans no translator may change masked.

Each text field (question, context, every option, rationale; premise and hypothesis for NLI) is
one segment, so the option count and the answer key cannot change. Numbers with their units,
dosages, letter-digit codes (HbA1c, CD4, COVID-19), upper-case abbreviations (ECG, HIV) and the
configured terms (drug names) are replaced by numbered placeholders `[1]`, `[2]`, ... before
translation and put back after; a placeholder that is lost, repeated or invented rejects the
translation.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SEGMENT_FIELDS: dict[str, tuple[str, ...]] = {
    "mcqa": ("question", "context", "options", "rationale"),
    "yes_no": ("question", "context", "rationale"),
    "nli": ("premise", "hypothesis"),
    "open_qa": ("question", "context", "answer", "rationale"),
    "classification": ("question", "context"),  # the label set is a closed vocabulary: kept
}
_UNITS = (
    r"mg/dL|mg/kg|mmol/L|mEq/L|µmol/L|umol/L|g/dL|IU/L|U/L|mL/min|ml/min|mmHg|cmH2O|bpm|"
    r"mcg|µg|ug|mg|kg|g|mL|ml|dL|L|IU|U|mmol|mol|cm|mm|m|h|hr|hrs|min|s|°C|°F|%"
)
_NUMBER = rf"\d+(?:[.,]\d+)*(?:\s?(?:{_UNITS})(?![A-Za-z]))?"
_CODE = r"\b(?:[A-Z]{2,}-\d+|[A-Za-z]+\d+[A-Za-z0-9]*(?:-\d+)?)\b"  # COVID-19, HbA1c, CD4, B12
_ABBREVIATION = r"\b[A-Z]{2,}[a-z]?\b"  # ECG, HIV, NSAIDs
_PLACEHOLDER = re.compile(r"[\[［]\s*(\d+)\s*[\]］]")
_LETTER = re.compile(r"[^\W\d_]")
_DIGITS = re.compile(r"\d+")


class Protector:
    """Masks protected spans as [n] placeholders and restores them."""

    def __init__(self, terms: Sequence[str] = ()) -> None:
        words = sorted({t.strip() for t in terms if t.strip()}, key=len, reverse=True)
        glossary = [rf"(?i:(?<!\w){re.escape(w)}(?!\w))" for w in words]  # terms in any case
        # Existing [n] first (so source text that looks like a placeholder is protected too).
        parts = [_PLACEHOLDER.pattern, *glossary, _CODE, _NUMBER, _ABBREVIATION]
        self._pattern = re.compile("|".join(f"(?:{p})" for p in parts))

    def mask(self, text: str) -> tuple[str, tuple[str, ...]]:
        spans: list[str] = []
        shouting = sum(c.isupper() for c in text) > 0.6 * max(1, sum(c.isalpha() for c in text))

        def repl(m: re.Match[str]) -> str:
            value = m.group(0)
            if shouting and re.fullmatch(_ABBREVIATION, value):
                return value  # an all-caps text: its words are words, not abbreviations
            spans.append(value)
            return f"[{len(spans)}]"

        return self._pattern.sub(repl, text), tuple(spans)

    @staticmethod
    def restore(output: str, spans: tuple[str, ...]) -> tuple[str, list[str]]:
        """Put the spans back; returns the text and problems (reason codes) found."""
        found = Counter(int(m.group(1)) for m in _PLACEHOLDER.finditer(output))
        problems = []
        if any(found[i] == 0 for i in range(1, len(spans) + 1)):
            problems.append("protected_lost")
        if any(n > 1 for i, n in found.items() if 1 <= i <= len(spans)):
            problems.append("protected_repeated")
        if any(i < 1 or i > len(spans) for i in found):
            problems.append("protected_invented")

        def repl(m: re.Match[str]) -> str:
            i = int(m.group(1))
            return spans[i - 1] if 1 <= i <= len(spans) else m.group(0)

        return _PLACEHOLDER.sub(repl, output), problems


@dataclass(frozen=True)
class Segment:
    field: str
    index: int | None  # option number for `options`
    text: str
    masked: str
    spans: tuple[str, ...]

    @property
    def needs_model(self) -> bool:
        """Segments with no letters left after masking ("500 mg", "[1]") are copied as they are."""
        return bool(_LETTER.search(_PLACEHOLDER.sub("", self.masked)))


def segments_of(entry: dict[str, Any], protector: Protector) -> list[Segment]:
    out: list[Segment] = []
    for field in SEGMENT_FIELDS[entry["task"]]:
        value = entry.get(field)
        if value is None:
            continue
        items = list(value) if field == "options" else [value]
        for i, text in enumerate(items):
            masked, spans = protector.mask(text)
            out.append(Segment(field, i if field == "options" else None, text, masked, spans))
    return out


def assemble(entry: dict[str, Any], segments: list[Segment], outputs: list[str]) -> dict[str, Any]:
    """The parent's fields with each segment replaced by its restored translation."""
    fields: dict[str, Any] = {f: entry.get(f) for f in SEGMENT_FIELDS[entry["task"]]}
    if fields.get("options") is not None:
        fields["options"] = list(fields["options"])
    for seg, text in zip(segments, outputs, strict=True):
        if seg.field == "options":
            fields["options"][seg.index] = text
        else:
            fields[seg.field] = text
    return fields


def numbers_of(text: str) -> Counter[str]:
    return Counter(_DIGITS.findall(text))
