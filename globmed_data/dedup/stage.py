"""The dedup stage: exact and near-duplicate clusters, one kept entry each, decontamination.

The map (signing.py, per batch): normalise, shingle, sign (MinHash). The reduce (linking.py,
over every signed entry): candidates from shared keys, verification, connected components;
then the keep policy and contamination (policy.py). This module adds the warehouse: signatures
and verified links persist, so a run signs only new or edited entries and searches links only
from them; clustering is redone from the stored links each run (cheap: a sparse graph).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import polars as pl
import pyarrow as pa

from globmed_data import faults
from globmed_data.config import LoadedConfig, PipelineConfig
from globmed_data.dedup.external import benchmark_entries
from globmed_data.dedup.linking import BATCH, LINK_VERSION, components, link, lsh_shape
from globmed_data.dedup.policy import decide_clusters, policy_columns
from globmed_data.dedup.settings import DedupSettings
from globmed_data.dedup.signing import ANSWER_PERM, SIGNATURE_VERSION, Signed, sign_batch
from globmed_data.ids import stable_hash
from globmed_data.pipeline.executor import BatchMap, Executor
from globmed_data.pipeline.stage import Context, Report
from globmed_data.warehouse import Warehouse

# Dedup links the eligible entries (warehouse/views/v_eligible_entries.sql). The view gives
# their ids only, and the texts are joined to them after: read through the view's own joins,
# DuckDB built its hash table on the side with the texts (~1.2 GB of working memory at 500k
# entries for 250 MB of result, against ~0.7 GB this way).
_PARTICIPANTS = """
    SELECT e.entry_id, e.content_hash, e.source, e.task, v.curated_language AS language, e.split,
           e.origin, e.question, e.premise, e.hypothesis, e.options, e.answer_indices, e.label,
           e.answer, e.rationale, e.context
    FROM entries e JOIN (SELECT entry_id, curated_language FROM v_eligible_entries) v
         ON v.entry_id = e.entry_id
"""


def signature_hash(s: DedupSettings) -> str:
    return stable_hash(
        "dedup-signature", SIGNATURE_VERSION, str(s.num_perm), str(s.word_ngram), str(s.char_ngram)
    )


def _store_signatures(
    write: Callable[..., None], frame: pl.DataFrame, signed: Signed, shash: str, run_id: str
) -> None:
    """Store a batch's signatures through `write` (Warehouse.background_upserts'); `frame` has
    the content_hash they were made from, and `stored`: a row of the entry is there already."""
    keys, sig = signed.keys, signed.sig
    flat = pa.array(sig.reshape(-1), pa.uint32())
    offsets = pa.array(np.arange(0, sig.size + 1, sig.shape[1], dtype=np.int32))
    answers = signed.answer_sig
    answer_offsets = pa.array(np.arange(0, answers.size + 1, answers.shape[1], dtype=np.int32))
    table = pa.table(
        {
            "entry_id": keys["entry_id"].to_arrow(),
            "content_hash": frame["content_hash"].to_arrow(),
            "settings_hash": pa.array([shash] * len(keys), pa.string()),
            "exact_key": keys["exact_key"].to_arrow(),
            "item_key": keys["item_key"].to_arrow(),
            "numbers": keys["numbers"].to_arrow(),
            "signature": pa.ListArray.from_arrays(offsets, flat),
            "answer_signature": pa.ListArray.from_arrays(
                answer_offsets, pa.array(answers.reshape(-1), pa.uint32())
            ),
            "run_id": pa.array([run_id] * len(keys), pa.string()),
            # Not linked yet: an upsert keeps columns it does not name, so this one is named.
            "linked_index": pa.nulls(len(keys), pa.string()),
        }
    )
    # Entries signed before (edited, or other settings) replace their row; the others are
    # appended (alone, an insert of 496k signatures took half the time of the upsert).
    write("dedup_signatures", table, stored=frame["stored"].to_arrow())


def _read_signatures(wh: Warehouse, ids: list[str], num_perm: int) -> Signed:
    """The stored keys and signatures of these entries, in the given order."""
    if not ids:
        empty = pl.DataFrame(schema={"entry_id": pl.String, "exact_key": pl.UInt64, "item_key": pl.UInt64,
                                     "numbers": pl.String})  # fmt: skip
        return Signed(empty, np.zeros((0, num_perm), np.uint32), np.zeros((0, ANSWER_PERM), np.uint32))
    table = wh.arrow_for_ids(
        ids,
        "SELECT s.entry_id, s.exact_key, s.item_key, s.numbers, s.signature, s.answer_signature "
        "FROM dedup_signatures s SEMI JOIN b_ids USING (entry_id)",
    )
    position = {e: i for i, e in enumerate(ids)}
    found = np.fromiter((position[e] for e in table.column("entry_id").to_pylist()), np.int64, len(ids))
    order = np.argsort(found)
    keys = cast(pl.DataFrame, pl.from_arrow(table.select(["entry_id", "exact_key", "item_key", "numbers"])))
    keys = keys.with_columns(pl.col("exact_key", "item_key").cast(pl.UInt64))[order]

    def matrix(column: str, width: int) -> np.ndarray:
        """The column's lists as a rows × width array in the order of `ids`: one copy, made by
        the reordering (at 500k entries each extra copy of the signatures is 250 MB)."""
        flat = table.column(column).combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return np.take(flat.astype(np.uint32, copy=False).reshape(-1, width), order, axis=0)

    return Signed(keys, matrix("signature", num_perm), matrix("answer_signature", ANSWER_PERM))


class _Made:
    """The signatures of every participant, gathered batch by batch as they are made, in the
    participants' order (rows preallocated: no copy when the reduce takes them)."""

    def __init__(self, rows: int, num_perm: int) -> None:
        self.keys: list[pl.DataFrame] = []
        self.sig = np.empty((rows, num_perm), dtype=np.uint32)
        self.answer_sig = np.empty((rows, ANSWER_PERM), dtype=np.uint32)
        self.filled = 0

    def add(self, signed: Signed) -> None:
        end = self.filled + len(signed.sig)
        self.keys.append(signed.keys)
        self.sig[self.filled : end] = signed.sig
        self.answer_sig[self.filled : end] = signed.answer_sig
        self.filled = end

    def take(self) -> Signed:
        """The signatures, handed over: this object keeps none of them (the reduce frees them)."""
        signed = Signed(pl.concat(self.keys), self.sig, self.answer_sig)
        self.keys, self.sig, self.answer_sig = [], self.sig[:0].copy(), self.answer_sig[:0].copy()
        return signed


def index_hash(s: DedupSettings) -> str:
    """The LSH index links are searched under: links made under another one no longer hold."""
    bands, rows = lsh_shape(s)
    return stable_hash(
        signature_hash(s),
        LINK_VERSION,
        str(bands),
        str(rows),
        str(s.threshold),
        str(s.verify_margin),
        str(s.answer_threshold),
    )


# The participants `p` as a count and an order-free digest of their ids and contents.
_MEMBERS_DIGEST = "count(*), coalesce(bit_xor(hash(p.entry_id || ':' || p.content_hash)), 0)"
# The participants `p` with their signature `s` (at most one an entry), and which of them are not
# linked under the index hash given as the parameter.
_SIGNED_PARTICIPANTS = (
    f"FROM ({_PARTICIPANTS}) p LEFT JOIN dedup_signatures s "
    "ON s.entry_id = p.entry_id AND s.content_hash = p.content_hash"
)
_UNLINKED = "s.linked_index IS DISTINCT FROM ?"


def members_key(wh: Warehouse, s: DedupSettings) -> str:
    """What the stored clusters were decided from: the participants (id and content, as a
    count and an order-free digest) and every dedup setting. A change means dedup has work."""
    count, digest = wh.query(f"SELECT {_MEMBERS_DIGEST} FROM ({_PARTICIPANTS}) p")[0]
    return _members_key(s, count, digest)


def _members_key(s: DedupSettings, count: int, digest: int) -> str:
    return stable_hash("dedup-members", s.model_dump_json(), str(count), str(digest))


def _flags(part: pl.DataFrame, current: pl.DataFrame, shash: str, ihash: str) -> pl.DataFrame:
    """Per participant, in the frame's order (a join or filter of the participants themselves
    would copy every entry's text): `unsigned` (no signature for this content under these
    settings), `unlinked` (links not searched under this index: unsigned, a killed run's, or every
    entry after new LSH settings) and `stored` (a signature row exists, to be replaced)."""
    known = part.select("entry_id", "content_hash").join(
        current, on=["entry_id", "content_hash"], how="left", maintain_order="left"
    )
    unsigned = pl.col("settings_hash").is_null() | (pl.col("settings_hash") != shash)
    unlinked = unsigned | pl.col("linked_index").is_null() | (pl.col("linked_index") != ihash)
    return known.select(
        unsigned=unsigned, unlinked=unlinked, stored=pl.col("entry_id").is_in(current["entry_id"])
    )


def unlinked(wh: Warehouse, index: str) -> int:
    """Participants not signed and linked under the LSH index with this hash."""
    return int(wh.query(f"SELECT count(*) {_SIGNED_PARTICIPANTS} WHERE {_UNLINKED}", [index])[0][0])


def stored_members(wh: Warehouse) -> str | None:
    """The members_key the stored clusters were decided from (None before the first dedup)."""
    return dict(wh.query("SELECT key, value FROM dedup_state")).get("members")


def work_left(wh: Warehouse, s: DedupSettings) -> tuple[int, bool]:
    """What dedup has left, from one pass over the participants (the eligible view: ~0.4-0.5 s
    at 8x, read once, not twice): the participants not yet signed and linked under the current
    index (`unlinked`), and whether the clusters are stale, that is the participants or the
    settings changed since they were decided (an entry vanished or was rejected, say: it may
    have been the one its cluster kept; `stored_members` against `members_key`)."""
    unlinked_now, count, digest = wh.query(
        f"SELECT count(*) FILTER (WHERE {_UNLINKED}), {_MEMBERS_DIGEST} {_SIGNED_PARTICIPANTS}",
        [index_hash(s)],
    )[0]
    return int(unlinked_now), stored_members(wh) != _members_key(s, count, digest)


class _Laps:
    """Seconds per phase, for the report: where the stage spends its time inside a run."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.seconds: dict[str, float] = {}

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = round(now - self.last, 3)
        self.last = now


def _named_links(links: pl.DataFrame, ids: pl.Series, participants: int, run_id: str) -> pl.DataFrame:
    """The links to store (dedup_edges' rows): those between participants, named by entry id,
    the smaller first. Links to benchmark items (positions from `participants` on) are not kept."""
    between = links.filter((pl.col("i") < participants) & (pl.col("j") < participants))
    named = between.with_columns(x=ids.gather(between["i"]), y=ids.gather(between["j"]))
    return named.select(
        pl.when(pl.col("x") < pl.col("y")).then("x").otherwise("y").alias("a"),
        pl.when(pl.col("x") < pl.col("y")).then("y").otherwise("x").alias("b"),
        "method",
        "similarity",
        pl.lit(run_id).alias("run_id"),
    ).unique(["a", "b"])


def _kept_edges(wh: Warehouse, ids: pl.Series, gone: pl.Series | None) -> tuple[np.ndarray, np.ndarray]:
    """The stored links that stand (less those of the entries linked again now, `gone`), as
    positions in `ids`; a link to an entry that no longer takes part is left out."""
    kept = cast(pl.DataFrame, pl.from_arrow(wh.arrow("SELECT a, b FROM dedup_edges")))
    if gone is not None:
        kept = kept.filter(~pl.col("a").is_in(gone) & ~pl.col("b").is_in(gone))
    if not len(kept):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    position = pl.DataFrame({"id": ids, "at": np.arange(len(ids), dtype=np.int64)})
    ends = kept.join(position.rename({"id": "a", "at": "left"}), on="a").join(
        position.rename({"id": "b", "at": "right"}), on="b"
    )
    return ends["left"].to_numpy(), ends["right"].to_numpy()


@dataclass
class _Decided:
    """What the reduce decided, all the write stores."""

    new_edges: pl.DataFrame
    members: pl.DataFrame
    contamination: pl.DataFrame
    benchmark_items: int


def _reduce(
    wh: Warehouse,
    loaded: LoadedConfig,
    part: pl.DataFrame,
    made: _Made | None,
    unlinked_ids: list[str],
    run_id: str,
    lap: _Laps,
) -> _Decided:
    """The whole index (the signatures as made, else as stored) plus external benchmark items
    (signed each run, never stored): links, clusters, the keep policy and contamination."""
    s = loaded.config.dedup
    ids = part["entry_id"]
    signed = made.take() if made is not None else _read_signatures(wh, ids.to_list(), s.num_perm)
    bench = benchmark_entries(loaded) if s.benchmarks else None
    if bench is not None and len(bench):
        signed = Signed.concat([signed, sign_batch(bench, s)])
    bench = policy_columns(bench) if bench is not None else part.clear()
    nodes = pl.concat(
        [part.with_columns(bench=pl.lit(False)), bench.with_columns(bench=pl.lit(True))],
        how="vertical_relaxed",
    )
    node_ids = nodes["entry_id"].to_list()
    gone = pl.Series(unlinked_ids, dtype=pl.String)  # their stored links are searched again
    is_new = nodes["entry_id"].is_in(gone).to_numpy(writable=True)
    is_new[len(part) :] = True  # benchmark items are linked every run
    lap("read signatures")
    links = link(signed, is_new, s, nodes["question"])
    nodes = nodes.drop("question")  # what linking alone reads
    lap("link")
    id_series = pl.Series(node_ids, dtype=pl.String)
    new_edges = _named_links(links, id_series, len(part), run_id)
    # The clusters: over the stored links that stand, the new ones and this run's benchmark
    # links, by position (naming every link first cost a copy of ~1M id pairs per step).
    kept_left, kept_right = _kept_edges(wh, id_series, gone if unlinked_ids else None)
    left = np.concatenate([kept_left, links["i"].to_numpy()])
    right = np.concatenate([kept_right, links["j"].to_numpy()])
    labels = components(len(nodes), left, right)
    sizes = np.bincount(labels)
    in_cluster = sizes[labels] > 1
    members = nodes.with_columns(i=pl.Series(np.arange(len(nodes))), cluster=pl.Series(labels)).filter(
        pl.Series(in_cluster)
    )
    exact = signed.keys["exact_key"].to_numpy().astype(np.uint64)
    decided, contamination = decide_clusters(members, s, signed.sig, exact, run_id)
    lap("cluster and keep")
    return _Decided(new_edges, decided, contamination, len(bench))


def run_dedup(
    wh: Warehouse,
    loaded: LoadedConfig,
    run_id: str,
    log: Callable[[str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Sign, link and cluster. Resumable by construction: signatures are committed per chunk,
    but an entry counts as done only once its links are stored, and its links, that mark and
    the clusters are committed together. A run killed anywhere leaves its entries pending."""
    started = time.perf_counter()
    say = log or (lambda _: None)
    s = loaded.config.dedup
    bands, rows = lsh_shape(s)
    shash, ihash = signature_hash(s), index_hash(s)
    lap = _Laps()

    decided_from = members_key(wh, s)
    # Sorted here, not by DuckDB: its sort holds every text in its own memory a second time.
    part = cast(pl.DataFrame, pl.from_arrow(wh.arrow(_PARTICIPANTS))).sort("entry_id")
    current = pl.from_arrow(
        wh.arrow("SELECT entry_id, content_hash, settings_hash, linked_index FROM dedup_signatures")
    )
    assert isinstance(current, pl.DataFrame)
    flags = _flags(part, current, shash, ihash)
    fresh = np.flatnonzero(flags["unsigned"].to_numpy())
    unlinked_ids = part["entry_id"].filter(flags["unlinked"]).to_list()
    del current
    lap("read entries")
    tick = progress or (lambda done, total: None)
    tick(0, len(fresh))
    # Map: sign new and edited entries, batch by batch, here or by the executor's workers (their
    # rows come back with no links searched).
    batches = BatchMap(executor, len(fresh), loaded.config.executor.min_task_entries)
    size = batches.rows(BATCH, BATCH // 5)
    cuts = [pl.Series(fresh[start : start + size]) for start in range(0, len(fresh), size)]
    signed_batches = batches.map(sign_batch, (part[at] for at in cuts), s)
    # Every participant signed now (a first run, new settings): the reduce takes the
    # signatures as made, instead of reading back what was just stored.
    made = _Made(len(fresh), s.num_perm) if 0 < len(fresh) == len(part) else None
    done = 0
    # DuckDB stores one batch in the background while the next is signed (it releases the GIL).
    with wh.background_upserts() as write:
        for at, signed in zip(cuts, signed_batches, strict=True):
            stored = part.select("content_hash")[at].with_columns(stored=flags["stored"].gather(at))
            _store_signatures(write, stored, signed, shash, run_id)
            if made is not None:
                made.add(signed)
            done += len(at)
            say(f"dedup: signed {done}/{len(fresh)} entries")
            tick(done, len(fresh))
            faults.point("dedup.signed")
    part = policy_columns(part)  # the texts were for signing: the reduce reads a few columns
    lap("sign and store")
    entries = len(part)
    decided = _reduce(wh, loaded, part, made, unlinked_ids, run_id, lap)
    # The reduce's frames (signatures, links, the graph: ~0.3 GB at 500k entries) went with it;
    # these go too, so that the write's own memory does not stack on them.
    del part, made
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
        # Each new link has an end among b_ids, whose stored links went just above: no pair is
        # stored twice, so dedup_edges needs no key (migration 0014). Members and contamination
        # are new rows.
        writes = (("dedup_edges", decided.new_edges), ("dedup_members", decided.members),
                  ("contamination", decided.contamination))  # fmt: skip
        for table, frame in writes:
            if len(frame):
                con.register("b_rows", frame.to_arrow())
                con.execute(f"INSERT INTO {table} SELECT * FROM b_rows")
                con.unregister("b_rows")
        con.execute("INSERT OR REPLACE INTO dedup_state VALUES ('members', ?)", [decided_from])
    lap("write")
    counts = dict(wh.query("SELECT decision, count(*) FROM dedup_members GROUP BY 1"))
    by_method = dict(
        wh.query("SELECT method, count(*) FROM dedup_members WHERE decision = 'duplicate' GROUP BY 1")
    )
    return {
        "checked": len(fresh),
        "linked": len(unlinked_ids),
        "entries": entries,
        "benchmark_items": decided.benchmark_items,
        "bands": bands,
        "rows": rows,
        "clusters": decided.members["cluster_id"].n_unique() if len(decided.members) else 0,
        "kept": int(counts.get("kept", 0)),
        "duplicates": int(counts.get("duplicate", 0)),
        "exact_duplicates": int(by_method.get("exact", 0)),
        "near_duplicates": int(by_method.get("near", 0)),
        "contaminated": int(counts.get("contaminated", 0)),
        "seconds": round(time.perf_counter() - started, 3),
        "phases": lap.seconds,
    }


class DedupStage:
    name = "dedup"
    reads = ("v_eligible_entries", "dedup_signatures", "dedup_edges")
    writes = ("dedup_signatures", "dedup_edges", "dedup_members", "contamination", "dedup_state")
    decides_entries = True
    adds_entries = None

    def settings(self, config: PipelineConfig) -> DedupSettings:
        return config.dedup

    def settings_hash(self, loaded: LoadedConfig) -> str:
        return index_hash(loaded.config.dedup)

    def pending(self, wh: Warehouse, loaded: LoadedConfig) -> dict[str, int]:
        n, stale = work_left(wh, loaded.config.dedup)
        return {self.name: n} if n else {"dedup:clusters": int(stale)}

    def undecided(self, wh: Warehouse, settings_hash: str) -> int | None:
        return unlinked(wh, settings_hash)

    def run(self, context: Context) -> Report:
        d = run_dedup(
            context.wh, context.loaded, context.run_id, context.log, context.progress, context.executor
        )
        return Report(
            self.name,
            d,
            f"{d['checked']} entries signed in {d['seconds']:.1f}s; {d['clusters']} clusters, "
            f"{d['duplicates']} duplicates excluded ({d['exact_duplicates']} exact, "
            f"{d['near_duplicates']} near), {d['contaminated']} train entries contaminated",
        )
