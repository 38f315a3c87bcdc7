"""What the quality rules measure: one pass over a batch adds the columns they compare with
thresholds (character, script, option and repetition counts, from the compiled kernels)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl

from globmed_data.kernels.scripts import UNSPACED_LANGUAGES, scripts_of
from globmed_data.kernels.text_metrics import (
    SCRIPTS,
    char_counts,
    dup_ngram_fractions,
    option_counts,
    word_counts,
)

METRIC_COLUMNS = (
    "main_chars", "item_chars", "n_options", "symbol_ratio", "digit_ratio", "script_share",
    "dup_line_fraction", "dup_ngram_fraction",
)  # fmt: skip


def _main_text(prefix: str = "") -> pl.Expr:
    """The question, or premise + hypothesis (`prefix`: the same columns of another entry)."""
    col = lambda name: pl.col(prefix + name)  # noqa: E731
    pair = pl.concat_str([col("premise"), col("hypothesis")], separator="\n", ignore_nulls=True)
    return pl.when(col("task") == "nli").then(pair).otherwise(col("question")).fill_null("")


def item_text(prefix: str = "") -> pl.Expr:
    """The main text and the options, one per line: what the item shows."""
    options = pl.col(prefix + "options").list.join("\n")
    return pl.concat_str([_main_text(prefix), options], separator="\n", ignore_nulls=True)


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
        _item=item_text(),
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


def repetition(df: pl.DataFrame) -> pl.Series:
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
