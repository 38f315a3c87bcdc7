"""Quality rules: whole-column polars expressions over a batch of entries, one reason code each.

Every rule belongs to a group (what it protects), has a default action (reject or flag) that
the config can change, and reads its threshold from `quality.thresholds`. Repetition is the one
rule that needs Python per text, and only for the few texts a cheap column test marks as
candidates. docs/quality.md lists the rules with their thresholds and what they were measured on.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import polars as pl

from globmed_data.config import PerLanguage, QualitySettings
from globmed_data.ids import stable_hash
from globmed_data.scripts import UNSPACED_LANGUAGES, scripts_of
from globmed_data.text_metrics import SCRIPTS, char_counts, dup_ngram_fractions, option_counts, word_counts

RULES_VERSION = "1"


@dataclass(frozen=True)
class Rule:
    group: str
    action: str  # default: reject | flag
    what: str


RULES: dict[str, Rule] = {
    # structure
    "missing_text": Rule("structure", "reject", "no question (or NLI premise/hypothesis)"),
    "too_few_options": Rule("structure", "reject", "an MCQA with fewer than min_options options"),
    "too_many_options": Rule("structure", "reject", "an MCQA with more than max_options options"),
    "empty_option": Rule("structure", "reject", "an option that is empty after normalisation"),
    "duplicate_options": Rule("structure", "reject", "two options with the same text (case and spaces aside)"),
    "invalid_answer": Rule("structure", "reject", "no answer key, a key outside the options, or no open answer"),
    "invalid_label": Rule("structure", "reject", "a yes/no or NLI label outside its label set"),
    # text
    "too_short": Rule("text", "reject", "item (question + options) shorter than min_chars, per language"),
    "too_long": Rule("text", "reject", "main text longer than max_chars, or context over max_context_chars"),
    "repetitive": Rule("text", "reject", "duplicate lines or duplicate n-grams over the Gopher-style limits"),
    "symbol_ratio": Rule("text", "reject", "share of symbol/punctuation characters over max_symbol_ratio"),
    "digit_ratio": Rule("text", "flag", "share of digits over max_digit_ratio (calculation items are valid)"),
    "markup": Rule("text", "reject", "leftover HTML/BBCode/Markdown-image markup or HTML entities"),
    "control_chars": Rule("text", "reject", "control characters"),
    "mojibake": Rule("text", "reject", "unrepaired mojibake (UTF-8 read as Latin-1) or U+FFFD"),
    "url": Rule("text", "flag", "a URL"),
    "translation_artifact": Rule("text", "reject", "a machine translator's refusal or note left in the text"),
    # language
    "language_mismatch": Rule("language", "flag", "language ID disagrees (action = the langid policy)"),
    "script_mismatch": Rule("language", "reject", "share of letters in the language's script under min_script_share"),
    # content
    "missing_image": Rule("content", "reject", "refers to a figure or image that the entry does not carry"),
    "all_of_the_above": Rule("content", "flag", "an option like 'all of the above' (valid, but order-dependent)"),
    "missing_rationale": Rule("content", "reject", "no rationale where the source requires one"),
    # safety
    "pii_email": Rule("safety", "flag", "an e-mail address"),
    "pii_phone": Rule("safety", "flag", "a phone number"),
    "pii_id_number": Rule("safety", "flag", "an ID-like number (SSN, national ID)"),
}  # fmt: skip

# Weight of a hit in the entry's score, a product of (1 - weight) over its hits.
WEIGHTS = {"reject": 0.5, "flag": 0.1}

_MARKUP = (
    r"(?i)</?(?:p|div|br|span|img|a|table|tr|td|th|ul|ol|li|b|i|u|em|strong|sup|sub|font|h[1-6])(?-u:\b)[^<>]{0,200}>"
    r"|&(?:nbsp|amp|lt|gt|quot|apos|#\d{2,5}|#x[0-9a-f]{2,4});|\[/?(?:img|url|b|i)\]|!\[[^\]]*\]\("
)
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
# UTF-8 read as Latin-1: a lead byte shown as Â..ß then one continuation byte (U+0080..U+00BF),
# or à..ï then two; also the BOM read as text, and U+FFFD where bytes were lost.
_MOJIBAKE = r"[\u00c2-\u00df][\u0080-\u00bf]|[\u00e0-\u00ef][\u0080-\u00bf]{2}|\ufffd|ï»¿|â€"
_URL = r"(?i)(?-u:\b)https?://|(?-u:\b)www\.[a-z0-9-]+\."
# Figures that an entry refers to but does not carry, in the languages of the shared data.
_IMAGE_REF = (
    r"(?i)(?-u:\b)(?:see|shown in|refer to|in|on) the (?:accompanying |following |attached )?"
    r"(?:figure|image|picture|photo(?:graph)?|diagram|illustration)s?(?-u:\b)"
    r"|(?-u:\b)(?:figure|fig\.|image|picture|photograph)s? (?:below|above|shown)(?-u:\b)"
    r"|(?-u:\b)the (?:image|figure|picture|photograph)s? (?:below|above|shows?)(?-u:\b)"
    r"|(?-u:\b)(?:la|el|las|los) (?:figura|imagen|fotograf[ií]a)s? (?:adjunta|siguiente|que se muestra|de abajo)"
    r"|(?-u:\b)(?:ver|véase|observe) (?:la )?(?:figura|imagen|fotograf[ií]a)(?-u:\b)|(?-u:\b)se muestra en la (?:figura|imagen)"
    r"|(?-u:\b)(?:voir|cf\.?) (?:la |l')?(?:figure|image|photo)(?-u:\b)|(?-u:\b)(?:la figure|l'image|la photo) ci-(?:dessous|dessus)"
    r"|別冊|次の(?:写真|画像|図)|(?:写真|画像|図)を示す|(?:写真|画像|図)\s*[（(]?\s*[A-Z0-9０-９]\s*[）)]?\s*を"
    r"|如图|下图|见图|附图|图中所示|图\s*\d"
    r"|на рисунке|рисун(?:ок|ке) \d|(?:на )?изображени[еи] ниже|на фото"
)
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


def action_of(code: str, settings: QualitySettings) -> str:
    return settings.actions.get(code, RULES[code].action)


def settings_hash(settings: QualitySettings) -> str:
    return stable_hash("quality", RULES_VERSION, settings.model_dump_json())


def per_language(value: PerLanguage, language: pl.Expr) -> pl.Expr:
    if not isinstance(value, dict):
        return pl.lit(float(value))
    default = float(value["default"])
    mapping = {k: float(v) for k, v in value.items() if k != "default"}
    return language.replace_strict(mapping, default=default, return_dtype=pl.Float64)


def _main_text() -> pl.Expr:
    pair = pl.concat_str([pl.col("premise"), pl.col("hypothesis")], separator="\n", ignore_nulls=True)
    return pl.when(pl.col("task") == "nli").then(pair).otherwise(pl.col("question")).fill_null("")


def _script_share(languages: pl.Series, letters: np.ndarray, scripts: np.ndarray) -> pl.Series:
    """Letters of the question in the language's own script(s) over all its letters.

    Options are left out: they are often Latin names, units or formulas in any language. A CJK
    character weighs 3 letters (it carries about a short word), so a Japanese or Chinese
    question with English drug names and abbreviations still counts as mostly in its script.
    `scripts` holds each text's characters per script (text_metrics.char_counts).
    """
    column = {name: k + 1 for k, name in enumerate(SCRIPTS)}
    cjk = scripts[:, [column["Han"], column["Kana"], column["Hangul"]]].sum(axis=1)
    share = np.full(len(languages), np.nan)
    codes = languages.fill_null("").to_numpy()
    for lang in np.unique(codes):
        rows = codes == lang
        own = scripts_of(str(lang))
        native = scripts[rows][:, [column[s] for s in own]].sum(axis=1)
        weight = 3 if own[0] in ("Han", "Hangul") else 1  # a CJK language's own letters weigh 3
        share[rows] = (weight * native) / np.maximum(letters[rows] + 2 * cjk[rows], 1)
    return pl.Series("script_share", share, dtype=pl.Float64).fill_nan(None)


def _distinct_options(options: pl.Series, n_options: np.ndarray, maybe_same: np.ndarray) -> pl.Series:
    """Options distinct once lower-cased with spaces folded: the count of options, except in
    the few rows whose options may repeat, which are compared exactly."""
    distinct = pl.Series("distinct_options", n_options, dtype=pl.Int64)
    rows = np.flatnonzero(maybe_same)
    if len(rows):
        exact = (
            options.gather(rows).list.eval(
                pl.element().str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars(" ")
            )
            .list.n_unique()
            .cast(pl.Int64)
        )  # fmt: skip
        distinct = distinct.scatter(rows, exact)
    return distinct


def metrics(df: pl.DataFrame) -> pl.DataFrame:
    """Measurements the rules compare with thresholds (also kept per entry, for review)."""
    opts = pl.col("options")
    n_options, empty_options, maybe_same = option_counts(df.get_column("options"))
    df = df.with_columns(
        _main=_main_text(),
        _all=pl.concat_str(
            [_main_text(), pl.col("context"), opts.list.join("\n"), pl.col("rationale"), pl.col("answer")],
            separator="\n",
            ignore_nulls=True,
        ),
        n_options=pl.Series(n_options, dtype=pl.Int64),
        empty_options=pl.Series(empty_options, dtype=pl.Int64),
        distinct_options=_distinct_options(df.get_column("options"), n_options, maybe_same),
        _item=pl.concat_str([_main_text(), opts.list.join("\n")], separator="\n", ignore_nulls=True),
    )
    counts = char_counts(df.get_column("_main"))
    df = df.with_columns(
        main_chars=pl.Series(counts["chars"]),
        context_chars=pl.col("context").fill_null("").str.len_chars(),
        item_chars=pl.col("_item").str.len_chars(),
        _letters=pl.Series(counts["letters"]),
        _digits=pl.Series(counts["digits"]),
        # A run of blanks (____) or dots in a fill-in item is one symbol, not dozens.
        _symbols=pl.Series(counts["symbols"]),
        # Lines of table rules or single cells repeat legitimately; only real lines count.
        _lines=pl.col("_main")
        .str.split("\n")
        .list.eval(pl.element().filter(pl.element().str.len_chars() >= 20)),
    )
    words, distinct_words = word_counts(df.get_column("_main"))
    lines = pl.col("_lines").list.len()
    return df.with_columns(
        _script_share(df.get_column("language"), counts["letters"], counts["scripts"]),
        symbol_ratio=pl.col("_symbols") / pl.col("main_chars").clip(lower_bound=1),
        digit_ratio=pl.col("_digits") / pl.col("main_chars").clip(lower_bound=1),
        dup_line_fraction=pl.when(lines >= 3)
        .then(1 - pl.col("_lines").list.n_unique() / lines)
        .otherwise(0.0),
        _word_count=pl.Series(words),
        _unique_word_ratio=pl.Series(distinct_words / np.maximum(words, 1)),
    )


def dup_ngram_fraction(text: str, unspaced: bool) -> float:
    """Share of the text's tokens inside an n-gram that occurs more than once (Gopher-style).

    Word 5-grams where words are spaced; character 10-grams where they are not. Exam items are
    short and dense, and long vignettes repeat units and lab names, so the n-grams are longer
    than Gopher's shortest: what must stand out is a passage said twice.
    """
    tokens = [c for c in text if not c.isspace()] if unspaced else text.split()
    n = 10 if unspaced else 5
    if len(tokens) < 2 * n:
        return 0.0
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    seen = Counter(grams)
    covered = [False] * len(tokens)
    for i, g in enumerate(grams):
        if seen[g] > 1:
            for j in range(i, i + n):
                covered[j] = True
    weight = [1 if unspaced else len(t) for t in tokens]
    return sum(w for w, c in zip(weight, covered, strict=True) if c) / max(1, sum(weight))


def _repetition(df: pl.DataFrame) -> pl.Series:
    """dup n-gram fraction, computed only for texts with a low unique-token ratio."""
    unspaced = pl.col("language").is_in(list(UNSPACED_LANGUAGES))
    indexed = df.select(pl.int_range(pl.len()).alias("_row"), unspaced.alias("_u"), "_main", "main_chars",
                        "_word_count", "_unique_word_ratio")  # fmt: skip
    spaced = indexed.filter(
        ~pl.col("_u") & (pl.col("_word_count") >= 12) & (pl.col("_unique_word_ratio") < 0.6)
    )
    dense = indexed.filter(pl.col("_u") & (pl.col("main_chars") >= 40))
    dense = dense.filter(pl.col("_main").str.split("").list.n_unique() < 0.35 * pl.col("main_chars"))
    candidates = pl.concat([spaced, dense])
    values = np.zeros(len(df))
    found = dup_ngram_fractions(candidates.get_column("_main"), candidates.get_column("_u").to_numpy())
    values[candidates.get_column("_row").to_numpy()] = found
    return pl.Series("dup_ngram_fraction", values, dtype=pl.Float64)


def rule_hits(
    df: pl.DataFrame, settings: QualitySettings, require_rationale: list[str]
) -> dict[str, pl.Expr]:
    t = settings.thresholds
    lang = pl.col("language")
    task = pl.col("task")
    mcqa = task == "mcqa"
    answers = pl.col("answer_indices")
    label = pl.col("label").fill_null("")
    measurable = pl.col("_letters") >= 10
    return {
        "missing_text": pl.col("_main").str.strip_chars().str.len_chars() == 0,
        "too_few_options": mcqa & (pl.col("n_options") < t.min_options),
        "too_many_options": mcqa & (pl.col("n_options") > t.max_options),
        "empty_option": mcqa & (pl.col("empty_options") > 0),
        "duplicate_options": mcqa & (pl.col("distinct_options") < pl.col("n_options") - pl.col("empty_options").clip(upper_bound=1)),
        "invalid_answer": pl.when(mcqa)
        .then(
            answers.is_null()
            | (answers.list.len() == 0)
            | (answers.list.max() >= pl.col("n_options"))
            | (answers.list.min() < 0)
        )
        .when(task == "open_qa")
        .then(pl.col("answer").fill_null("").str.strip_chars() == "")
        .otherwise(False),
        "invalid_label": pl.when(task == "yes_no")
        .then(~label.is_in(["yes", "no", "maybe"]))
        .when(task == "nli")
        .then(~label.is_in(["entailment", "neutral", "contradiction"]))
        .otherwise(False),
        "too_short": (pl.col("main_chars") > 0) & (pl.col("item_chars") < per_language(t.min_chars, lang)),
        "too_long": (pl.col("main_chars") > per_language(t.max_chars, lang))
        | (pl.col("context_chars") > t.max_context_chars),
        "repetitive": (pl.col("dup_line_fraction") > t.max_dup_line_fraction)
        | (pl.col("dup_ngram_fraction") > t.max_dup_ngram_fraction),
        "symbol_ratio": (pl.col("main_chars") >= 20) & (pl.col("symbol_ratio") > per_language(t.max_symbol_ratio, lang)),
        "digit_ratio": (pl.col("main_chars") >= 20) & (pl.col("digit_ratio") > per_language(t.max_digit_ratio, lang)),
        "markup": pl.col("_hit_markup"),
        "control_chars": pl.col("_hit_control_chars"),
        "mojibake": pl.col("_hit_mojibake"),
        "url": pl.col("_hit_url"),
        "translation_artifact": pl.col("_hit_translation_artifact"),
        "language_mismatch": pl.col("langid_decision").is_in(["flag", "reject"]).fill_null(False),
        # A backstop for what language ID could not confirm: a question in the right language
        # may be mostly Latin drug or bacteria names.
        "script_mismatch": measurable
        & (pl.col("script_share") < per_language(t.min_script_share, lang))
        & ~pl.col("langid_agrees").fill_null(False),
        "missing_image": pl.concat_str([pl.col("_main"), pl.col("options").list.join("\n")], separator="\n", ignore_nulls=True).str.contains(_IMAGE_REF),
        "all_of_the_above": mcqa & pl.col("options").list.eval(pl.element().str.strip_chars().str.contains(_ALL_ABOVE)).list.any().fill_null(False),
        "missing_rationale": pl.col("source").is_in(require_rationale) & (pl.col("rationale").fill_null("").str.strip_chars() == ""),
        "pii_email": pl.col("_hit_pii_email"),
        "pii_phone": pl.col("_hit_pii_phone"),
        "pii_id_number": pl.col("_hit_pii_id_number"),
    }  # fmt: skip


METRIC_COLUMNS = (
    "main_chars", "item_chars", "n_options", "symbol_ratio", "digit_ratio", "script_share", "dup_line_fraction",
    "dup_ngram_fraction",
)  # fmt: skip


# Patterns searched in all of an entry's text. Few entries hold any of the characters or words
# they need, so one cheap pass over everything picks the entries worth searching (_SUSPECT).
_TEXT_PATTERNS = {
    "markup": _MARKUP, "control_chars": _CONTROL, "mojibake": _MOJIBAKE, "url": _URL,
    "translation_artifact": _ARTIFACT, "pii_email": _EMAIL, "pii_phone": _PHONE, "pii_id_number": _ID_NUMBER,
}  # fmt: skip
_SUSPECT = (
    r"[<&\[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd@+]|[\u00c2-\u00ef][\u0080-\u00bf]|â€|ï»¿"
    r"|\d{3}-\d|\(\d{3}\)|\d{17}"
    r"|(?i:sorry|translat|https?:|www\.)|AI"
)


def text_pattern_hits(df: pl.DataFrame) -> pl.DataFrame:
    """One boolean column per pattern in _TEXT_PATTERNS, searched only in suspect entries."""
    suspect = df.get_column("_all").str.contains(_SUSPECT).fill_null(False)
    rows = suspect.arg_true()
    found = df.filter(suspect).select(
        pl.col("_all").str.contains(p).fill_null(False).alias(f"_hit_{c}") for c, p in _TEXT_PATTERNS.items()
    )
    out = {}
    for column in found.columns:
        out[column] = pl.Series(column, [False] * len(df), dtype=pl.Boolean).scatter(rows, found[column])
    return df.with_columns(**out)


def evaluate(df: pl.DataFrame, settings: QualitySettings, threads: int | None = None) -> pl.DataFrame:
    """Decide a batch: entry_id, passed, score, reasons (rejecting), flags, metrics (JSON text).

    `df` has the entry columns plus `langid_decision` (the langid stage's decision, or null),
    and `language` is the entry's language after that stage (a relabel changes it). A large
    batch is cut into one part per core (`threads`, default the cores up to 8), decided side
    by side: polars and the compiled counts release the GIL, so two cores give about 1.3x.
    """
    threads = threads or min(os.cpu_count() or 1, 8)
    parts = max(1, min(threads, len(df) // _MIN_PART))
    if parts == 1:
        return _evaluate_part(df, settings)
    size = -(-len(df) // parts)
    with ThreadPoolExecutor(parts) as pool:
        done = pool.map(lambda k: _evaluate_part(df.slice(k, size), settings), range(0, len(df), size))
        return pl.concat(list(done))


_MIN_PART = 10_000  # smaller parts are not worth a thread


def _evaluate_part(df: pl.DataFrame, settings: QualitySettings) -> pl.DataFrame:
    df = text_pattern_hits(metrics(df))
    df = df.with_columns(_repetition(df))
    hits = rule_hits(df, settings, settings.require_rationale)
    # language_mismatch takes its action from the langid policy: reject only where it said so.
    actions = {code: action_of(code, settings) for code in RULES}
    reject_codes = [c for c, a in actions.items() if a == "reject" and c != "language_mismatch"]
    flag_codes = [c for c, a in actions.items() if a == "flag" and c != "language_mismatch"]
    mismatch_on = actions["language_mismatch"] != "off"
    rejected_mismatch = mismatch_on & (pl.col("langid_decision") == "reject").fill_null(False)
    flagged_mismatch = mismatch_on & (pl.col("langid_decision") == "flag").fill_null(False)
    relabelled = (pl.col("langid_decision") == "relabel").fill_null(False)
    # Each rule's hit as a column; the code lists are built only for rows with a hit (a few
    # percent), then joined back: building them for every row costs more than all the rules.
    listed_codes = {
        "_r": [*((c, hits[c]) for c in reject_codes), ("language_mismatch", rejected_mismatch)],
        "_f": [*((c, hits[c]) for c in flag_codes), ("language_mismatch", flagged_mismatch),
               ("language_relabelled", relabelled)],
    }  # fmt: skip
    columns = {
        f"{prefix}{k}": hit for prefix, pairs in listed_codes.items() for k, (_, hit) in enumerate(pairs)
    }
    out = df.select(
        "entry_id",
        metrics=pl.struct(
            [
                pl.col(c).round(4) if c.endswith(("ratio", "share", "fraction")) else pl.col(c)
                for c in METRIC_COLUMNS
            ]
        ).struct.json_encode(),
        **columns,
    ).with_row_index("_i")

    def codes(prefix: str) -> pl.Expr:
        return pl.concat_list(
            [
                pl.when(pl.col(f"{prefix}{k}")).then(pl.lit(code))
                for k, (code, _) in enumerate(listed_codes[prefix])
            ]
        ).list.drop_nulls()

    listed = out.filter(pl.any_horizontal(*columns)).select("_i", reasons=codes("_r"), flags=codes("_f"))
    none = pl.lit([], dtype=pl.List(pl.String))
    out = out.join(listed, on="_i", how="left", maintain_order="left").with_columns(
        reasons=pl.col("reasons").fill_null(none), flags=pl.col("flags").fill_null(none)
    )
    out = out.with_columns(
        passed=pl.col("reasons").list.len() == 0,
        score=(
            pl.lit(1 - WEIGHTS["reject"]).pow(pl.col("reasons").list.len())
            * pl.lit(1 - WEIGHTS["flag"]).pow(pl.col("flags").list.len())
        ),
    )
    return out.select("entry_id", "passed", "score", "reasons", "flags", "metrics")
