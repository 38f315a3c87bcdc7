"""The compiled character counts and repetition measure give what their plain definitions give."""

from __future__ import annotations

import numpy as np
import polars as pl

from globmed_data.kernels.scripts import SCRIPT_CLASS
from globmed_data.kernels.text_metrics import SCRIPTS, char_counts, dup_ngram_fractions
from globmed_data.quality.metrics import dup_ngram_fraction

AWKWARD = [
    "", "Quel est le traitement? 5 mg, 10%.", "A ____ B ___ C", "Wait... what...? …… ok -- no - yes",
    "_a_b_", "患儿4岁，体重16kg，心电图示：ST段抬高。", "高血圧の第一選択薬はどれか。1つ選べ。",
    "Какой препарат — выбор при АГ?", "ما هو العلاج؟ ١٢٣", "रोगी को बुखार है। ५",
    "한국어 질문입니다 (Hanja 韓國)",
    "tab\there\nnew\u00a0nbsp\u3000ideo\x1cfs", "µg ½ x² ™ € ①", "e\u0301 combining",
    "\U0001f600 emoji \U00020000 ext",
    "ǅ İ ß ﬁ", "\ufeffbom \u200b zwsp", "variation\U000e0100 selector", "×÷ in Latin-1",
]  # fmt: skip


def reference_counts(values: list[str]) -> pl.DataFrame:
    """The regex definitions the quality rules used before the compiled pass."""
    text = pl.col("t")
    rest = text.str.replace_all(r"[\p{L}\p{M}]+", "")
    exprs = {
        "chars": text.str.len_chars(),
        "letters": text.str.len_chars() - rest.str.len_chars(),
        "digits": rest.str.len_chars() - rest.str.replace_all(r"\p{N}+", "").str.len_chars(),
        "symbols": rest.str.replace_all(r"[\p{N}\s]+", "")
        .str.replace_all(r"_{2,}|\.{2,}|…+|-{2,}", "_")
        .str.len_chars(),
        **{name: kept(text, SCRIPT_CLASS[name]) for name in SCRIPTS},
    }  # fmt: skip
    return pl.DataFrame({"t": values}, schema={"t": pl.String}).select(**exprs)


def kept(text: pl.Expr, cls: str) -> pl.Expr:
    return text.str.replace_all(f"[^{cls[1:-1]}]+", "").str.len_chars()


def assert_counts_match(values: list[str]) -> None:
    got = char_counts(pl.Series(values, dtype=pl.String))
    want = reference_counts(values)
    for name in ("chars", "letters", "digits", "symbols"):
        assert got[name].tolist() == want[name].to_list(), name
    for k, name in enumerate(SCRIPTS):
        assert got["scripts"][:, k + 1].tolist() == want[name].to_list(), name


def test_character_counts_match_the_regex_definitions() -> None:
    assert_counts_match(AWKWARD)


def test_runs_of_blanks_dots_and_dashes_count_once() -> None:
    got = char_counts(pl.Series(["A ____ B", "x..y", "…… …", "a-b", "a--b", "?!"]))
    assert got["symbols"].tolist() == [1, 1, 1, 1, 1, 2]


def test_compiled_repetition_matches_the_python_definition() -> None:
    rng = np.random.default_rng(5)
    words = ["fever", "patient", "dose", "mg", "day", "the", "of", "blood", "rate", "résumé"]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(5, 60)))) for _ in range(200)]
    passage = "The patient was given ten milligrams twice a day for fever. "
    texts += [passage * 3, passage + "then something else entirely different here ok", "a\x1cb " * 20]
    texts += ["患儿发热三天伴咳嗽" * 4, "患儿发热三天伴咳嗽，体重十六千克，心率一百二十次每分", "短い"]
    unspaced = np.array([False] * 203 + [True] * 3)
    got = dup_ngram_fractions(pl.Series(texts, dtype=pl.String), unspaced)
    want = [dup_ngram_fraction(t, bool(u)) for t, u in zip(texts, unspaced, strict=True)]
    assert np.allclose(got, want)
    assert got[200] > 0.6 and got[201] == 0.0 and got[203] > 0.6 and got[204] == 0.0


def test_option_counts_find_every_repeat_and_empty_option() -> None:
    from globmed_data.kernels.text_metrics import option_counts
    from globmed_data.quality.metrics import _distinct_options

    rows = [
        ["Aspirin", "aspirin ", "Heparin"], ["A  b", "a b", "a\tb"], ["ΟΔΟΣ", "οδος", "οδοσ"],
        ["İ", "i̇", "I"], ["", "x", "\u3000 "], ["one", "two"], [], None, ["same", "same"], ["x y", "xy"],
    ]  # fmt: skip
    series = pl.Series(rows, dtype=pl.List(pl.String))
    n, empty, maybe_same = option_counts(series)
    # The definition: lower case, white space runs as one space, no space at the ends.
    norm = [[" ".join(o.lower().split()) for o in r or []] for r in rows]
    assert n.tolist() == [len(r) for r in norm]
    assert empty.tolist() == [sum(o == "" for o in r) for r in norm]
    distinct = _distinct_options(series, n, maybe_same).to_list()
    assert distinct == [len(set(r)) for r in norm]
    # "x y" and "xy" read alike without their spaces: that row is compared exactly.
    assert maybe_same.tolist()[5] is False and maybe_same.tolist()[9] is True


def test_word_counts_split_on_single_spaces() -> None:
    from globmed_data.kernels.text_metrics import word_counts

    texts = ["", "a b a", "a  b", " lead", "日本 日本 語", "x" * 50]
    words, distinct = word_counts(pl.Series(texts))
    split = [t.split(" ") for t in texts]
    assert words.tolist() == [len(s) for s in split] and distinct.tolist() == [len(set(s)) for s in split]
