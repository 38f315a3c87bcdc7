"""The dedup stage: exact and near-duplicate clusters, one kept entry each, decontamination.

Map steps (per batch, parallel-safe): normalise, shingle, sign (MinHash), band keys.
Reduce steps (whole index): candidate links from shared keys, verification, connected
components, keep policy, contamination. Signatures and verified links persist, so a run
signs only new or edited entries and searches links only from them; clustering is redone from
the stored links each run (cheap: a sparse graph).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import polars as pl
import pyarrow as pa

from globmed_data import faults
from globmed_data.config import LoadedConfig
from globmed_data.dedup.minhash import (
    SIGNATURE_VERSION,
    band_keys,
    candidate_pairs,
    components,
    optimal_bands,
    sign_entries,
    similarity,
    verified,
)
from globmed_data.dedup.settings import DedupSettings
from globmed_data.ids import stable_hash
from globmed_data.warehouse import Warehouse

CHUNK = 50_000
_PARTICIPANTS = """
    SELECT e.entry_id, e.content_hash, e.source, e.task, coalesce(l.language, e.language) AS language,
           e.split, e.origin, e.question, e.premise, e.hypothesis, e.options, e.answer_indices, e.label,
           e.rationale, e.context
    FROM entries e
    LEFT JOIN langid_results l ON l.entry_id = e.entry_id AND l.content_hash = e.content_hash
    LEFT JOIN quality_results q ON q.entry_id = e.entry_id AND q.content_hash = e.content_hash
    WHERE e.status = 'active' AND coalesce(q.passed, TRUE) AND coalesce(l.decision, '') <> 'reject'
"""


def lsh_shape(s: DedupSettings) -> tuple[int, int]:
    return (s.bands, s.rows) if s.bands and s.rows else optimal_bands(s.threshold, s.num_perm)


def signature_hash(s: DedupSettings) -> str:
    return stable_hash(
        "dedup-signature", SIGNATURE_VERSION, str(s.num_perm), str(s.word_ngram), str(s.char_ngram)
    )


def sign(frame: pl.DataFrame, s: DedupSettings) -> tuple[pl.DataFrame, np.ndarray]:
    """Map step: (entry_id, exact_key) and the signature matrix for a batch of entries."""
    texts, sig = sign_entries(frame, s.word_ngram, s.char_ngram, s.num_perm)
    return texts.select("entry_id", "exact_key", "item_key", "numbers"), sig


def _store_signatures(wh: Warehouse, frame: pl.DataFrame, keys: pl.DataFrame, sig: np.ndarray, shash: str,
                      run_id: str) -> None:  # fmt: skip
    flat = pa.array(sig.reshape(-1), pa.uint32())
    offsets = pa.array(np.arange(0, sig.size + 1, sig.shape[1], dtype=np.int32))
    table = pa.table(
        {
            "entry_id": keys["entry_id"].to_arrow(),
            "content_hash": frame["content_hash"].to_arrow(),
            "settings_hash": pa.array([shash] * len(keys), pa.string()),
            "exact_key": keys["exact_key"].to_arrow(),
            "item_key": keys["item_key"].to_arrow(),
            "numbers": keys["numbers"].to_arrow(),
            "signature": pa.ListArray.from_arrays(offsets, flat),
            "run_id": pa.array([run_id] * len(keys), pa.string()),
            # Not linked yet: an upsert keeps columns it does not name, so this one is named.
            "linked_index": pa.nulls(len(keys), pa.string()),
        }
    )
    wh.upsert("dedup_signatures", table)


KEEP_ORDER = {
    "eval_split": lambda s: pl.when(pl.col("split").is_in(s.eval_splits)).then(0).otherwise(1),
    "native": lambda s: pl.when(pl.col("origin") == "native").then(0).otherwise(1),
    "source_priority": lambda s: pl.col("source").replace_strict(
        {name: i for i, name in enumerate(s.source_priority)},
        default=len(s.source_priority),
        return_dtype=pl.Int64,
    ),
    # More complete first: more options, a rationale, a context.
    "complete": lambda s: (
        -(
            pl.col("options").list.len().fill_null(0)
            + pl.col("rationale").is_not_null().cast(pl.Int64)
            + pl.col("context").is_not_null().cast(pl.Int64)
        )
    ),
    "entry_id": lambda s: pl.col("entry_id"),
}


def decide_clusters(
    members: pl.DataFrame, s: DedupSettings, sig: np.ndarray, exact: np.ndarray, run_id: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep policy and contamination. `members`: one row per node in a cluster of 2+, with
    `i` (index into sig), `cluster`, entry columns, and `bench` (an external test item)."""
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
    out = out.with_columns(
        sim_kept=pl.Series(np.where(same_kept, 1.0, sim_kept)),
        method_kept=pl.Series(np.where(same_kept, "exact", "near")),
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


def benchmark_entries(loaded: LoadedConfig) -> pl.DataFrame:
    """External test sets from `dedup.benchmarks`, read and mapped like sources (not stored).

    Records that do not map are skipped: a benchmark list only has to give the item's text.
    """
    from globmed_data.sources.locate import locate_files
    from globmed_data.sources.mapping import MappingError, RecordMapper
    from globmed_data.sources.readers import detect_format, read_file

    rows: list[dict[str, Any]] = []
    for spec in loaded.config.dedup.benchmarks:
        mapper = RecordMapper(spec)
        for f in locate_files(spec, loaded).files:
            ctx = mapper.file_context(f.rel)
            items = read_file(f.path, detect_format(f.path, spec.format), encoding=spec.encoding,
                              record_path=spec.resolved_record_path(), max_record_bytes=1 << 24)  # fmt: skip
            for item in items:
                if item.record is None:
                    continue
                extra = {"_file": f.rel, "_locator": item.locator, **item.extra}
                try:
                    key = mapper.record_key(item.record, extra, item.raw_text)
                    entry = mapper.map(item.record, extra, ctx, key)
                except MappingError:
                    continue
                rows.append({**entry, "entry_id": f"benchmark:{spec.name}:{key}", "split": "test",
                             "source": f"benchmark:{spec.name}", "content_hash": ""})  # fmt: skip
    columns = [
        "entry_id",
        "content_hash",
        "source",
        "task",
        "language",
        "split",
        "origin",
        "question",
        "premise",
        "hypothesis",
        "options",
        "answer_indices",
        "label",
        "rationale",
        "context",
    ]
    schema = {c: pl.String for c in columns} | {
        "options": pl.List(pl.String),
        "answer_indices": pl.List(pl.Int32),
    }
    return pl.DataFrame([{c: r.get(c) for c in columns} for r in rows], schema=schema)


def _read_signatures(
    wh: Warehouse, ids: list[str], num_perm: int
) -> tuple[np.ndarray, np.ndarray, pl.Series, np.ndarray]:
    """exact keys, item keys, numbers and signatures of these entries, in the given order."""
    table = wh.arrow_for_ids(
        ids,
        "SELECT s.entry_id, s.exact_key, s.item_key, s.numbers, s.signature "
        "FROM dedup_signatures s SEMI JOIN b_ids USING (entry_id)",
    )
    position = {e: i for i, e in enumerate(ids)}
    found = np.fromiter((position[e] for e in table.column("entry_id").to_pylist()), np.int64, len(ids))
    order = np.argsort(found)
    flat = table.column("signature").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    numbers = pl.Series("numbers", table.column("numbers"), dtype=pl.String)
    return (
        table.column("exact_key").to_numpy().astype(np.uint64)[order],
        table.column("item_key").to_numpy().astype(np.uint64)[order],
        numbers.gather(order),
        flat.astype(np.uint32).reshape(-1, num_perm)[order],
    )


def index_hash(s: DedupSettings) -> str:
    """The LSH index links are searched under: links made under another one no longer hold."""
    bands, rows = lsh_shape(s)
    return stable_hash(signature_hash(s), str(bands), str(rows), str(s.threshold), str(s.verify_margin))


def members_key(wh: Warehouse, s: DedupSettings) -> str:
    """What the stored clusters were decided from: the participants (id and content, as a
    count and an order-free digest) and every dedup setting. A change means dedup has work."""
    count, digest = wh.query(
        f"SELECT count(*), coalesce(bit_xor(hash(entry_id || ':' || content_hash)), 0) FROM ({_PARTICIPANTS})"
    )[0]
    return stable_hash("dedup-members", s.model_dump_json(), str(count), str(digest))


def pending(wh: Warehouse, s: DedupSettings) -> int:
    """Participants not yet signed and linked under the current index."""
    return unlinked(wh, index_hash(s))


def unlinked(wh: Warehouse, index: str) -> int:
    """Participants not signed and linked under the LSH index with this hash."""
    return int(
        wh.query(
            f"SELECT count(*) FROM ({_PARTICIPANTS}) p LEFT JOIN dedup_signatures s "
            "ON s.entry_id = p.entry_id AND s.content_hash = p.content_hash "
            "WHERE s.linked_index IS DISTINCT FROM ?",
            [index],
        )[0][0]
    )


def clusters_stale(wh: Warehouse, s: DedupSettings) -> bool:
    """The participants or the settings changed since the clusters were decided (an entry
    vanished or was rejected, say: it may have been the one its cluster kept)."""
    return dict(wh.query("SELECT key, value FROM dedup_state")).get("members") != members_key(wh, s)


def run_dedup(
    wh: Warehouse, loaded: LoadedConfig, run_id: str, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Sign, link and cluster. Resumable by construction: signatures are committed per chunk,
    but an entry counts as done only once its links are stored, and its links, that mark and
    the clusters are committed together. A run killed anywhere leaves its entries pending."""
    started = time.perf_counter()
    say = log or (lambda _: None)
    s = loaded.config.dedup
    bands, rows = lsh_shape(s)
    shash, ihash = signature_hash(s), index_hash(s)

    decided_from = members_key(wh, s)
    part = pl.from_arrow(wh.arrow(_PARTICIPANTS + " ORDER BY e.entry_id"))
    assert isinstance(part, pl.DataFrame)
    current = pl.from_arrow(
        wh.arrow("SELECT entry_id, content_hash, settings_hash, linked_index FROM dedup_signatures")
    )
    assert isinstance(current, pl.DataFrame)
    known = part.join(current, on=["entry_id", "content_hash"], how="left")
    unsigned = pl.col("settings_hash").is_null() | (pl.col("settings_hash") != shash)
    fresh = known.filter(unsigned)
    # Signed but not linked under this index: a killed run's, or every entry after new LSH settings.
    unlinked = known.filter(unsigned | pl.col("linked_index").is_null() | (pl.col("linked_index") != ihash))
    # Map: sign new and edited entries (their rows come back with no links searched).
    for start in range(0, len(fresh), CHUNK):
        batch = fresh.slice(start, CHUNK)
        keys, sig = sign(batch, s)
        _store_signatures(wh, batch, keys, sig, shash, run_id)
        say(f"dedup: signed {min(start + CHUNK, len(fresh))}/{len(fresh)} entries")
        faults.point("dedup.signed")
    unlinked_ids = unlinked["entry_id"].to_list()

    # Reduce: the whole index, plus external benchmark items (signed each run, never stored).
    ids = part["entry_id"].to_list()
    empty = np.zeros(0, np.uint64)
    no_sig = np.zeros((0, s.num_perm), np.uint32)
    no_numbers = pl.Series("numbers", [], dtype=pl.String)
    exact, item, numbers, sig = (
        _read_signatures(wh, ids, s.num_perm) if ids else (empty, empty, no_numbers, no_sig)
    )
    bench = benchmark_entries(loaded) if s.benchmarks else part.clear()
    if len(bench):
        bkeys, bsig = sign(bench, s)
        exact = np.concatenate([exact, bkeys["exact_key"].to_numpy().astype(np.uint64)])
        item = np.concatenate([item, bkeys["item_key"].to_numpy().astype(np.uint64)])
        numbers = pl.concat([numbers, bkeys["numbers"]])
        sig = np.concatenate([sig, bsig])
    nodes = pl.concat(
        [part.with_columns(bench=pl.lit(False)), bench.with_columns(bench=pl.lit(True))],
        how="vertical_relaxed",
    )
    node_ids = nodes["entry_id"].to_list()
    gone = pl.Series(unlinked_ids, dtype=pl.String)  # their stored links are searched again
    is_new = nodes["entry_id"].is_in(gone).to_numpy(writable=True)
    is_new[len(part) :] = True  # benchmark items are linked every run
    i, j = candidate_pairs(exact, band_keys(sig, bands, rows), is_new)
    links = pl.DataFrame({"i": [], "j": [], "method": [], "similarity": []},
                         schema={"i": pl.Int64, "j": pl.Int64, "method": pl.String,
                                 "similarity": pl.Float64})  # fmt: skip
    if len(i):
        same = exact[i] == exact[j]
        sim = np.where(same, 1.0, similarity(sig, i, j))
        keep = verified(exact, item, numbers, sig, i, j, s.threshold - s.verify_margin)
        links = pl.DataFrame({"i": i[keep], "j": j[keep], "method": np.where(same, "exact", "near")[keep],
                              "similarity": sim[keep].astype(np.float64)})  # fmt: skip
    id_series = pl.Series(node_ids, dtype=pl.String)
    named = links.with_columns(x=id_series.gather(links["i"]), y=id_series.gather(links["j"])).select(
        pl.when(pl.col("x") < pl.col("y")).then("x").otherwise("y").alias("a"),
        pl.when(pl.col("x") < pl.col("y")).then("y").otherwise("x").alias("b"),
        "method",
        "similarity",
    )
    stored = named.filter(
        ~pl.col("a").str.starts_with("benchmark:") & ~pl.col("b").str.starts_with("benchmark:")
    )
    new_edges = stored.select("a", "b", "method", "similarity", pl.lit(run_id).alias("run_id")).unique(
        ["a", "b"]
    )

    # Components over the links as they will stand (the stored ones, less those of the entries
    # linked again now, plus the new ones) and this run's benchmark links, between participants.
    bench_links = named.filter(
        pl.col("a").str.starts_with("benchmark:") | pl.col("b").str.starts_with("benchmark:")
    )
    kept_edges = cast(pl.DataFrame, pl.from_arrow(wh.arrow("SELECT a, b FROM dedup_edges")))
    if unlinked_ids:
        kept_edges = kept_edges.filter(~pl.col("a").is_in(gone) & ~pl.col("b").is_in(gone))
    position = pl.DataFrame({"id": id_series, "at": np.arange(len(node_ids), dtype=np.int64)})
    ends = (
        pl.concat([kept_edges, new_edges.select("a", "b"), bench_links.select("a", "b")])
        .join(position.rename({"id": "a", "at": "left"}), on="a")
        .join(position.rename({"id": "b", "at": "right"}), on="b")
    )
    left, right = ends["left"].to_numpy(), ends["right"].to_numpy()
    labels = components(len(nodes), left, right)
    sizes = np.bincount(labels)
    in_cluster = sizes[labels] > 1
    members = nodes.with_columns(i=pl.Series(np.arange(len(nodes))), cluster=pl.Series(labels)).filter(
        pl.Series(in_cluster)
    )
    decided, contamination = decide_clusters(members, s, sig, exact, run_id)
    faults.point("dedup.decided")
    # One transaction: the links, the mark that they were searched, and the clusters.
    with wh.transaction() as con:
        con.register("b_ids", pa.table({"entry_id": pa.array(unlinked_ids, pa.string())}))
        con.execute("DELETE FROM dedup_edges WHERE a IN (SELECT entry_id FROM b_ids) "
                    "OR b IN (SELECT entry_id FROM b_ids)")  # fmt: skip
        con.execute("UPDATE dedup_signatures SET linked_index = ? "
                    "WHERE entry_id IN (SELECT entry_id FROM b_ids)", [ihash])  # fmt: skip
        con.unregister("b_ids")
        con.execute("DELETE FROM dedup_members")
        con.execute("DELETE FROM contamination")
        # Edges of entries linked before stay (OR REPLACE); members and contamination are new rows.
        writes = (("INSERT OR REPLACE", "dedup_edges", new_edges), ("INSERT", "dedup_members", decided),
                  ("INSERT", "contamination", contamination))  # fmt: skip
        for verb, table, frame in writes:
            if len(frame):
                con.register("b_rows", frame.to_arrow())
                con.execute(f"{verb} INTO {table} SELECT * FROM b_rows")
                con.unregister("b_rows")
        con.execute("INSERT OR REPLACE INTO dedup_state VALUES ('members', ?)", [decided_from])
    counts = dict(wh.query("SELECT decision, count(*) FROM dedup_members GROUP BY 1"))
    by_method = dict(
        wh.query("SELECT method, count(*) FROM dedup_members WHERE decision = 'duplicate' GROUP BY 1")
    )
    return {
        "checked": len(fresh),
        "linked": len(unlinked_ids),
        "entries": len(part),
        "benchmark_items": len(bench),
        "bands": bands,
        "rows": rows,
        "clusters": decided["cluster_id"].n_unique() if len(decided) else 0,
        "kept": int(counts.get("kept", 0)),
        "duplicates": int(counts.get("duplicate", 0)),
        "exact_duplicates": int(by_method.get("exact", 0)),
        "near_duplicates": int(by_method.get("near", 0)),
        "contaminated": int(counts.get("contaminated", 0)),
        "seconds": round(time.perf_counter() - started, 3),
    }
