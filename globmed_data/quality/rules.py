"""The quality rules, one record each: its code, group, default action, the thresholds it reads,
and either its expression over the measured columns or the pattern it searches in an entry's
whole text (with a cheap prefilter the pattern implies).

Everything else is derived from this registry: the prefilter that picks the few entries worth
searching, the settings hash that makes stored decisions stale when a rule changes, and the
rule table in docs/quality.md (checked by a test). Adding a rule is adding one `Rule(...)` here,
and its threshold (if any) to `QualityThresholds` in settings.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:  # settings.py validates rule codes against this registry, so no runtime import
    from globmed_data.quality.settings import QualityThresholds

ACTIONS = ("reject", "flag")
GROUPS = ("structure", "text", "language", "content", "safety")
# Weight of a hit in the entry's score, a product of (1 - weight) over its hits.
WEIGHTS = {"reject": 0.5, "flag": 0.1}


@dataclass(frozen=True)
class Inputs:
    """What a rule's expression may read besides the batch's columns."""

    t: QualityThresholds
    require_rationale: list[str]
    per_language: Callable[[Any], pl.Expr]  # a PerLanguage threshold as an expression over `language`


@dataclass(frozen=True)
class Rule:
    code: str
    group: str
    action: str  # default: reject | flag (the config's `quality.actions` may change it, or turn it off)
    what: str  # one line, shown in docs/quality.md and `globmed quality show`
    hit: Callable[[Inputs], pl.Expr] | None = None  # True where the entry breaks the rule
    pattern: str | None = None  # or: searched in all of the entry's text
    prefilter: str | None = None  # a pattern every text `pattern` matches also matches (cheap)
    thresholds: tuple[str, ...] = ()  # QualityThresholds fields the rule reads
    examples: tuple[str, ...] = ()  # texts the pattern must catch (tests check them)

    def expression(self, inputs: Inputs) -> pl.Expr:
        if self.pattern is not None:
            return pl.col(f"_hit_{self.code}")
        assert self.hit is not None, self.code
        return self.hit(inputs)


_MARKUP = (
    r"(?i)</?(?:p|div|br|span|img|a|table|tr|td|th|ul|ol|li|b|i|u|em|strong|sup|sub|font|h[1-6])(?-u:\b)[^<>]{0,200}>"
    r"|&(?:nbsp|amp|lt|gt|quot|apos|#\d{2,5}|#x[0-9a-f]{2,4});|\[/?(?:img|url|b|i)\]|!\[[^\]]*\]\("
)
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
# UTF-8 read as Latin-1: a lead byte shown as Â..ß then one continuation byte (U+0080..U+00BF),
# or à..ï then two; also the BOM read as text, and U+FFFD where bytes were lost.
_MOJIBAKE = r"[\u00c2-\u00df][\u0080-\u00bf]|[\u00e0-\u00ef][\u0080-\u00bf]{2}|\ufffd|ï»¿|â€"
_URL = r"(?i)(?-u:\b)https?://|(?-u:\b)www\.[a-z0-9-]+\."
_ALL_ABOVE = (
    r"(?i)^(?:all|none|both) of (?:the )?(?:above|following|these)|^all are correct|^todas (?:las )?"
    r"(?:anteriores|respuestas|son correctas)|^ninguna de (?:las )?anteriores|^toutes les (?:réponses|"
    r"propositions)|^aucune des (?:réponses|propositions)|^以上(?:都|皆|均|全)|^上記の?(?:すべて|いずれも)"
    r"|^(?:все|ничего из) (?:перечисленн|вышеперечисленн)"
)
# What an LLM translator writes instead of a translation ("I'm sorry, but there is no text...").
_ARTIFACT = (
    r"(?i)(?:^|\n)\s*(?:I'?m sorry|I am sorry|Sorry),? (?:but )?(?:there|I|it)|as an (?-i:AI)(?-u:\b)"
    r"|there (?:is|seems to be) no (?:text|context|choice|question)s? (?:provided|to (?:be )?translate)"
    r"|(?:^|\n)\s*(?:Here is the translation|Translation)\s*:|this is not a translation"
    r"|(?:cannot|can't|unable to|not possible to) (?:be )?(?:accurately )?translated?"
)
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z]{2,}"
_PHONE = r"\+\d{1,3}[ .-]?\(?\d{1,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}(?-u:\b)|\(\d{3}\) ?\d{3}-\d{4}(?-u:\b)|(?-u:\b)\d{3}-\d{3}-\d{4}(?-u:\b)"
_ID_NUMBER = r"(?-u:\b)\d{3}-\d{2}-\d{4}(?-u:\b)|(?-u:\b)\d{17}[\dXx](?-u:\b)"


def _mcqa() -> pl.Expr:
    return pl.col("task") == "mcqa"


def _invalid_answer(_: Inputs) -> pl.Expr:
    answers = pl.col("answer_indices")
    return (
        pl.when(_mcqa())
        .then(
            answers.is_null()
            | (answers.list.len() == 0)
            | (answers.list.max() >= pl.col("n_options"))
            | (answers.list.min() < 0)
        )
        .when(pl.col("task") == "open_qa")
        .then(pl.col("answer").fill_null("").str.strip_chars() == "")
        .otherwise(False)
    )


def _invalid_label(_: Inputs) -> pl.Expr:
    label = pl.col("label").fill_null("")
    return (
        pl.when(pl.col("task") == "yes_no")
        .then(~label.is_in(["yes", "no", "maybe"]))
        .when(pl.col("task") == "nli")
        .then(~label.is_in(["entailment", "neutral", "contradiction"]))
        .when(pl.col("task") == "classification")
        .then(~pl.col("options").list.contains(label).fill_null(False))
        .otherwise(False)
    )


def _script_mismatch(c: Inputs) -> pl.Expr:
    # A backstop for what language ID could not confirm: a question in the right language may be
    # mostly Latin drug or bacteria names, so it needs enough letters and no agreement from langid.
    return (
        (pl.col("_letters") >= 10)
        & (pl.col("script_share") < c.per_language(c.t.min_script_share))
        & ~pl.col("langid_agrees").fill_null(False)
    )


RULES: dict[str, Rule] = {r.code: r for r in [
    # structure
    Rule("missing_text", "structure", "reject", "no question (or NLI premise/hypothesis)",
         hit=lambda c: pl.col("_main").str.strip_chars().str.len_chars() == 0),
    Rule("too_few_options", "structure", "reject", "an MCQA with fewer than min_options options",
         hit=lambda c: _mcqa() & (pl.col("n_options") < c.t.min_options), thresholds=("min_options",)),
    Rule("too_many_options", "structure", "reject", "an MCQA with more than max_options options",
         hit=lambda c: _mcqa() & (pl.col("n_options") > c.t.max_options), thresholds=("max_options",)),
    Rule("empty_option", "structure", "reject", "an option that is empty after normalisation",
         hit=lambda c: _mcqa() & (pl.col("empty_options") > 0)),
    Rule("duplicate_options", "structure", "reject", "two options with the same text (case and spaces aside)",
         hit=lambda c: _mcqa() & (pl.col("distinct_options") < pl.col("n_options") - pl.col("empty_options").clip(upper_bound=1))),
    Rule("invalid_answer", "structure", "reject", "no answer key, a key outside the options, or no open answer",
         hit=_invalid_answer),
    Rule("invalid_label", "structure", "reject", "a yes/no, NLI or classification label outside its label set",
         hit=_invalid_label),
    # text
    Rule("too_short", "text", "reject", "item (question + options) shorter than min_chars, per language",
         hit=lambda c: (pl.col("main_chars") > 0) & (pl.col("item_chars") < c.per_language(c.t.min_chars)),
         thresholds=("min_chars",)),
    Rule("too_long", "text", "reject", "main text longer than max_chars, or context over max_context_chars",
         hit=lambda c: (pl.col("main_chars") > c.per_language(c.t.max_chars)) | (pl.col("context_chars") > c.t.max_context_chars),
         thresholds=("max_chars", "max_context_chars")),
    Rule("repetitive", "text", "reject", "duplicate lines or duplicate n-grams over the Gopher-style limits",
         hit=lambda c: (pl.col("dup_line_fraction") > c.t.max_dup_line_fraction) | (pl.col("dup_ngram_fraction") > c.t.max_dup_ngram_fraction),
         thresholds=("max_dup_line_fraction", "max_dup_ngram_fraction")),
    Rule("symbol_ratio", "text", "reject", "share of symbol/punctuation characters over max_symbol_ratio",
         hit=lambda c: (pl.col("main_chars") >= 20) & (pl.col("symbol_ratio") > c.per_language(c.t.max_symbol_ratio)),
         thresholds=("max_symbol_ratio",)),
    Rule("digit_ratio", "text", "flag", "share of digits over max_digit_ratio (calculation items are valid)",
         hit=lambda c: (pl.col("main_chars") >= 20) & (pl.col("digit_ratio") > c.per_language(c.t.max_digit_ratio)),
         thresholds=("max_digit_ratio",)),
    Rule("markup", "text", "reject", "leftover HTML/BBCode/Markdown-image markup or HTML entities",
         pattern=_MARKUP, prefilter=r"[<&\[]", examples=("<br>", "a &amp; b", "[img]x[/img]", "![x](y.png)")),
    Rule("control_chars", "text", "reject", "control characters", pattern=_CONTROL, prefilter=_CONTROL,
         examples=("a\x07b",)),
    Rule("mojibake", "text", "reject", "unrepaired mojibake (UTF-8 read as Latin-1) or U+FFFD",
         pattern=_MOJIBAKE, prefilter=r"[\u00c2-\u00ef][\u0080-\u00bf]|\ufffd|ï»¿|â€",
         examples=("cafÃ©", "a\ufffdb", "ï»¿text", "â€œquotedâ€")),
    Rule("url", "text", "flag", "a URL", pattern=_URL, prefilter=r"(?i:https?:|www\.)",
         examples=("see https://example.org", "www.who.int/x")),
    Rule("translation_artifact", "text", "reject", "a machine translator's refusal or note left in the text",
         pattern=_ARTIFACT, prefilter=r"(?i:sorry|translat|there (?:is|seems))|AI",
         examples=("I'm sorry, but there is no text", "As an AI model", "There is no text provided.",
                   "Here is the translation: x", "This cannot be translated")),
    # language
    Rule("language_mismatch", "language", "flag", "language ID disagrees (action = the langid policy)",
         hit=lambda c: pl.col("langid_decision").is_in(["flag", "reject"]).fill_null(False)),
    Rule("script_mismatch", "language", "reject", "share of letters in the language's script under min_script_share",
         hit=_script_mismatch, thresholds=("min_script_share",)),
    # content
    Rule("missing_image", "content", "reject",
         "refers to a figure or image that the entry (or the entry it was translated from) does not carry",
         hit=lambda c: pl.col("_image_ref"),
         examples=("shown in the image below", "see the figure", "別冊", "写真（A）を", "如图", "下图",
                   "se muestra en la imagen", "на рисунке", "asociada a la imagen", "imagem a seguir",
                   "בתמונה", "in image 15", "(Supplement No. 6) is shown separately", "siehe Abbildung 2",
                   "다음 사진", "ดังภาพ", "xem hình", "في الصورة", "चित्र में")),
    Rule("all_of_the_above", "content", "flag", "an option like 'all of the above' (valid, but order-dependent)",
         hit=lambda c: _mcqa() & pl.col("options").list.eval(pl.element().str.strip_chars().str.contains(_ALL_ABOVE)).list.any().fill_null(False),
         examples=("All of the above", "todas las anteriores", "以上都是")),
    Rule("missing_rationale", "content", "reject", "no rationale where the source requires one",
         hit=lambda c: pl.col("source").is_in(c.require_rationale) & (pl.col("rationale").fill_null("").str.strip_chars() == "")),
    # safety
    Rule("pii_email", "safety", "flag", "an e-mail address", pattern=_EMAIL, prefilter="@",
         examples=("write to jane.doe@example.org",)),
    Rule("pii_phone", "safety", "flag", "a phone number", pattern=_PHONE, prefilter=r"\+|\(\d{3}\)|\d{3}-\d",
         examples=("+44 20 7946 0958", "(555) 123-4567", "555-123-4567")),
    Rule("pii_id_number", "safety", "flag", "an ID-like number (SSN, national ID)", pattern=_ID_NUMBER,
         prefilter=r"\d{3}-\d|\d{17}", examples=("SSN 123-45-6789", "ID 11010519491231002X")),
]}  # fmt: skip

# One cheap pass over every entry picks the few worth searching with the patterns.
PREFILTER = "|".join(f"(?:{r.prefilter})" for r in RULES.values() if r.pattern is not None)
