"""Decide a batch of entries: measure, search the patterns where the prefilter says so, apply
every rule of the registry as a whole-column expression, and list each entry's reasons and flags."""

from __future__ import annotations

import inspect
import os
import re
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
import polars as pl

from globmed_data.ids import stable_hash
from globmed_data.kernels import text_metrics
from globmed_data.quality import metrics as metrics_module
from globmed_data.quality import phrases
from globmed_data.quality.metrics import METRIC_COLUMNS, item_text, metrics, repetition
from globmed_data.quality.phrases import language_patterns
from globmed_data.quality.rules import PREFILTER, RULES, WEIGHTS, Inputs
from globmed_data.quality.settings import QualitySettings, QualityThresholds
from globmed_data.settings import PerLanguage


def action_of(code: str, settings: QualitySettings) -> str:
    return settings.actions.get(code, RULES[code].action)


def rules_hash() -> str:
    """What the rules are, derived: every record (its expression as polars serialises it under
    the default thresholds, its pattern and prefilter), and the measuring code. Any change to a
    rule or a measurement makes stored decisions stale; nothing is bumped by hand."""
    inputs = Inputs(QualityThresholds(), ["<source>"], lambda v: per_language(v, pl.col("language")))
    parts = [
        f"{r.code}|{r.group}|{r.action}|{r.pattern}|{r.prefilter}|{r.thresholds}|"
        f"{r.expression(inputs).meta.serialize(format='json')}"
        for r in RULES.values()
    ]
    code = inspect.getsource(metrics_module) + inspect.getsource(text_metrics) + inspect.getsource(phrases)
    return stable_hash("quality-rules", *parts, code)


def settings_hash(settings: QualitySettings) -> str:
    return stable_hash("quality", _RULES_HASH, settings.model_dump_json())


def per_language(value: PerLanguage, language: pl.Expr) -> pl.Expr:
    if not isinstance(value, dict):
        return pl.lit(float(value))
    default = float(value["default"])
    mapping = {k: float(v) for k, v in value.items() if k != "default"}
    return language.replace_strict(mapping, default=default, return_dtype=pl.Float64)


_PATTERNS = {code: rule.pattern for code, rule in RULES.items() if rule.pattern is not None}


def text_pattern_hits(df: pl.DataFrame) -> pl.DataFrame:
    """One boolean column per pattern rule, searched only in the entries the prefilter picks."""
    suspect = df.get_column("_all").str.contains(PREFILTER).fill_null(False)
    rows = suspect.arg_true()
    found = df.filter(suspect).select(
        pl.col("_all").str.contains(p).fill_null(False).alias(f"_hit_{c}") for c, p in _PATTERNS.items()
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


def image_refs(df: pl.DataFrame, settings: QualitySettings) -> pl.Series:
    """True where the item (question and options) refers to an image by a phrase of English or
    of its language, or where the entry it was translated from does (`parent_*` columns, when
    the batch has them): a translation cannot carry the image its parent lacked."""
    search, remove = language_patterns(settings.image_phrases)
    hits = _phrase_hits(df["_item"], df["language"], search, remove)
    if "parent_task" in df.columns:
        parent = df.select(item_text("parent_")).to_series()
        hits |= _phrase_hits(parent, df["parent_language"], search, remove) & df["parent_task"].is_not_null()
    return hits


def _phrase_hits(
    text: pl.Series, language: pl.Series, search: dict[str, str], remove: dict[str, str]
) -> pl.Series:
    """Each language's rows searched with that language's pattern (after removing its non-image
    senses): one regex pass per language in the batch, not one per language per row."""
    found = np.zeros(len(text), dtype=bool)
    languages = language.fill_null("default")
    for lang in languages.unique().to_list():
        rows = (languages == lang).arg_true()
        key = lang if lang in search else "default"
        part = text.gather(rows).fill_null("").str.replace_all(remove[key], " ")
        found[rows.to_numpy()] = contains(part, search[key])
    return pl.Series("_image_ref", found)


def contains(texts: pl.Series, pattern: str) -> np.ndarray:
    """texts.str.contains(pattern), the same answer sooner for a pattern with word boundaries.

    A Unicode `\\b` sends Rust's regex to its slowest engine on any non-ASCII text (a Spanish
    entry took ~35x an English one's time). The pattern without its boundaries matches wherever the
    pattern does (an assertion removed only allows more), and runs on the fast engine: it is
    searched first, and the exact pattern then reads only the few texts it found.
    """
    loose = without_word_boundaries(pattern)
    if loose is None:
        return texts.str.contains(pattern).to_numpy()
    found = texts.str.contains(loose)
    rows = found.arg_true()
    hits = np.zeros(len(texts), dtype=bool)
    hits[rows.to_numpy()] = texts.gather(rows).str.contains(pattern).to_numpy()
    return hits


# An escape (`\b`, `\B` and `\b{start}` are assertions), or one plain character.
_TOKEN = re.compile(r"\\(?:[bB](?:\{[a-z-]+\})?|.)|.", re.DOTALL)


@cache
def without_word_boundaries(pattern: str) -> str | None:
    """The pattern with its word-boundary assertions removed; None: it has none, or what is
    left does not compile (the exact pattern is then searched alone)."""
    tokens = _TOKEN.findall(pattern)
    kept = [t for t in tokens if not (t.startswith(("\\b", "\\B")))]
    if len(kept) == len(tokens):
        return None
    loose = "".join(kept)
    try:
        pl.Series([""]).str.contains(loose)
    except pl.exceptions.ComputeError:
        return None
    return loose


_MIN_PART = 10_000  # smaller parts are not worth a thread


def _evaluate_part(df: pl.DataFrame, settings: QualitySettings) -> pl.DataFrame:
    df = text_pattern_hits(metrics(df))
    df = df.with_columns(_image_ref=image_refs(df, settings))
    df = df.with_columns(repetition(df))
    inputs = Inputs(
        settings.thresholds, settings.require_rationale, lambda v: per_language(v, pl.col("language"))
    )
    hits = {code: rule.expression(inputs) for code, rule in RULES.items()}
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


_RULES_HASH = rules_hash()
