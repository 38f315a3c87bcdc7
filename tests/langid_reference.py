"""The regex definition of the text language ID reads (polars): what the compiled pass in
globmed_data/langid_text.py must give, row for row."""

from __future__ import annotations

import polars as pl

from globmed_data.kernels.scripts import SCRIPT_CLASS
from globmed_data.langid.text import SCRIPT_NAMES, SCRIPT_SAMPLE, SEPARATORS, URL_EMAIL

BEYOND_LATIN = "[^\x00-\u024f\u1e00-\u1eff]"
LATIN_WORD = r"[A-Za-z\u00c0-\u024f]+"


def reference_prepare(texts: pl.Series, max_chars: int) -> pl.DataFrame:
    df = pl.DataFrame({"text": texts}).select(
        pl.int_range(pl.len()).alias("_row"),
        pl.col("text")
        .fill_null("")
        .str.slice(0, max_chars + max_chars // 4 + 20)
        .str.replace_all(URL_EMAIL, " ")
        .str.replace_all(SEPARATORS + "+", " ")
        .str.strip_chars()
        .alias("clean"),
    )
    other = pl.col("clean").str.contains(BEYOND_LATIN)
    latin = df.filter(~other).with_columns(
        script=pl.when(pl.col("clean") != "").then(pl.lit("Latin")).otherwise(None)
    )
    mixed = _scripts_of(df.filter(other))
    return (
        pl.concat([latin, mixed])
        .sort("_row")
        .select(pl.col("clean").str.slice(0, max_chars).str.strip_chars(), "script")
        .with_columns(
            letters=(pl.col("clean").str.len_chars() - pl.col("clean").str.count_matches(" ", literal=True))
        )
    )


def _scripts_of(df: pl.DataFrame) -> pl.DataFrame:
    sample = pl.col("clean").str.slice(0, SCRIPT_SAMPLE)
    counts = {f"_{k}": sample.str.count_matches(SCRIPT_CLASS[k]).cast(pl.Int64) for k in SCRIPT_NAMES}
    df = df.with_columns(**counts)
    japanese = (pl.col("_Kana") > 0) & (pl.col("_Kana") * 20 >= pl.col("_Kana") + pl.col("_Han"))
    df = df.with_columns(
        _Kana=pl.when(japanese).then(pl.col("_Kana") + pl.col("_Han")).otherwise(pl.col("_Kana")),
        _Han=pl.when(japanese).then(0).otherwise(pl.col("_Han")),
    )
    columns = [pl.col(f"_{k}") * (3 if k in ("Han", "Kana", "Hangul") else 1) for k in SCRIPT_NAMES]
    names = dict(enumerate(SCRIPT_NAMES))
    script = (
        pl.when(pl.sum_horizontal(columns) > 0)
        .then(pl.concat_list(columns).list.arg_max().replace_strict(names, return_dtype=pl.String))
        .otherwise(None)
    )
    df = df.with_columns(script=script)
    drop_latin = pl.col("script").is_not_null() & (pl.col("script") != "Latin") & (pl.col("_Latin") > 0)
    clean = (
        pl.when(drop_latin)
        .then(pl.col("clean").str.replace_all(LATIN_WORD, " ").str.replace_all(r"\s+", " "))
        .otherwise(pl.col("clean"))
    )
    return df.select("_row", clean.alias("clean"), "script")
