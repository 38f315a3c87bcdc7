"""Dedup's keep policy: in each cluster, which entry stays (the config's `keep` order), which are
duplicates, and which train entries are contaminated by a test item (of any source, or of an
external benchmark)."""

from __future__ import annotations

import numpy as np
import polars as pl

from globmed_data.dedup.kernels import similarity
from globmed_data.dedup.settings import DedupSettings

KEEP_ORDER = {
    "eval_split": lambda s: pl.when(pl.col("split").is_in(s.eval_splits)).then(0).otherwise(1),
    "native": lambda s: pl.when(pl.col("origin") == "native").then(0).otherwise(1),
    "source_priority": lambda s: pl.col("source").replace_strict(
        {name: i for i, name in enumerate(s.source_priority)},
        default=len(s.source_priority),
        return_dtype=pl.Int64,
    ),
    # More complete first: more options, a rationale, a context (policy_columns counts them).
    "complete": lambda s: -pl.col("completeness"),
    "entry_id": lambda s: pl.col("entry_id"),
}


def policy_columns(entries: pl.DataFrame) -> pl.DataFrame:
    """What the keep policy and the linking read of each entry, without the texts signing needed
    (at 500k entries they are most of the stage's memory)."""
    completeness = (
        pl.col("options").list.len().fill_null(0)
        + pl.col("rationale").is_not_null().cast(pl.Int64)
        + pl.col("context").is_not_null().cast(pl.Int64)
    )
    return entries.select(
        "entry_id", "source", "split", "origin", "question", completeness.cast(pl.Int64).alias("completeness")
    )


def decide_clusters(
    members: pl.DataFrame, s: DedupSettings, sig: np.ndarray, exact: np.ndarray, run_id: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep policy and contamination. `members`: one row per node in a cluster of 2+, with
    `i` (index into sig), `cluster`, policy_columns, and `bench` (an external test item)."""
    order = [KEEP_ORDER[rule](s).alias(f"_k{n}") for n, rule in enumerate(s.keep)]
    ranked = members.with_columns(order).sort(["cluster", "bench", *[f"_k{n}" for n in range(len(s.keep))]])
    real = ranked.filter(~pl.col("bench"))
    kept = (
        real.group_by("cluster", maintain_order=True)
        .first()
        .select("cluster", pl.col("i").alias("kept_i"), pl.col("entry_id").alias("kept_id"))
    )
    evals = (
        ranked.filter(pl.col("bench") | pl.col("split").is_in(s.eval_splits))
        .group_by("cluster", maintain_order=True)
        .first()
        .select("cluster", pl.col("i").alias("test_i"), pl.col("entry_id").alias("test_item"),
                pl.col("source").alias("test_source"))
    )  # fmt: skip
    out = real.join(kept, on="cluster", how="left").join(evals, on="cluster", how="left")
    # `auto` entries get their split at export time, most of them train: they count as train here.
    contaminated = pl.col("split").is_in(["train", "auto"]) & pl.col("test_i").is_not_null()
    out = out.with_columns(
        decision=pl.when(contaminated)
        .then(pl.lit("contaminated"))
        .when(pl.col("i") == pl.col("kept_i"))
        .then(pl.lit("kept"))
        .otherwise(pl.lit("duplicate")),
        size=pl.len().over("cluster"),
        cluster_id=pl.col("entry_id").min().over("cluster"),
    )
    i = out["i"].to_numpy()
    k = out["kept_i"].to_numpy()
    t = out["test_i"].fill_null(-1).to_numpy()
    sim_kept = similarity(sig, i, k)
    sim_test = similarity(sig, i, np.where(t >= 0, t, i))
    same_kept = exact[i] == exact[k]
    same_test = exact[i] == exact[np.where(t >= 0, t, i)]
    # An exact copy of any other member (not only of the kept one) is an exact duplicate: the
    # method says how the entry repeats its cluster; `similarity` stays its distance to the kept.
    key = pl.Series("key", exact[i])
    copied = out.select(c=pl.len().over("cluster", key) > 1).to_series().to_numpy()
    out = out.with_columns(
        sim_kept=pl.Series(np.where(same_kept, 1.0, sim_kept)),
        method_kept=pl.Series(np.where(same_kept | copied, "exact", "near")),
        sim_test=pl.Series(np.where(same_test, 1.0, sim_test)),
        method_test=pl.Series(np.where(same_test, "exact", "near")),
    )
    rows = out.select(
        "entry_id",
        "cluster_id",
        pl.col("size").cast(pl.Int32).alias("cluster_size"),
        "decision",
        pl.col("kept_id").alias("kept_entry_id"),
        pl.col("method_kept").alias("method"),
        pl.col("sim_kept").alias("similarity"),
        pl.lit(run_id).alias("run_id"),
    )
    contamination = out.filter(pl.col("decision") == "contaminated").select(
        "entry_id",
        "test_item",
        "test_source",
        pl.col("method_test").alias("method"),
        pl.col("sim_test").alias("similarity"),
        pl.lit(run_id).alias("run_id"),
    )
    return rows, contamination
