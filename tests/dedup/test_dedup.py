"""Dedup: normalisation, MinHash agreement with datasketch, clusters, keep policy,
decontamination (within sources and against an external benchmark file), incremental runs."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import polars as pl
import pytest

from globmed_data.config import load_config, parse_config
from globmed_data.dedup.linking import KNOWN_SHAPES, optimal_bands, search_bands
from globmed_data.dedup.policy import decide_clusters, policy_columns
from globmed_data.dedup.settings import DedupSettings
from globmed_data.dedup.signing import dedup_texts, permutations, permute, signatures
from globmed_data.dedup.stage import run_dedup
from globmed_data.settings import ConfigError
from globmed_data.warehouse import Warehouse
from tests.helpers import collect_all, write_config

Q = "A 4-year-old child weighing 16 kg needs amoxicillin at 25 mg/kg. Which single dose is correct?"
OPTS = ["400 mg", "800 mg", "200 mg", "100 mg"]
EPILEPSY = "Name the first-line drug for status epilepticus in an adult patient at home"


def frame(rows: list[dict]) -> pl.DataFrame:
    base = {
        "entry_id": "x",
        "task": "mcqa",
        "language": "en",
        "question": "",
        "options": [],
        "premise": None,
        "hypothesis": None,
    }
    schema = {
        "entry_id": pl.String,
        "task": pl.String,
        "language": pl.String,
        "question": pl.String,
        "options": pl.List(pl.String),
        "premise": pl.String,
        "hypothesis": pl.String,
    }
    return pl.DataFrame([{**base, "entry_id": str(i), **r} for i, r in enumerate(rows)], schema=schema)


def test_exact_key_ignores_case_spacing_punctuation_and_option_order() -> None:
    keys = dedup_texts(
        frame(
            [
                {"question": Q, "options": OPTS},
                {"question": Q.upper().replace(" ", "  ").replace("?", " ?!"), "options": OPTS[::-1]},
                {"question": Q.replace("16 kg", "18 kg"), "options": OPTS},
            ]
        )
    )["exact_key"].to_list()
    assert keys[0] == keys[1] != keys[2]


def test_signatures_are_datasketch_minhash() -> None:
    from datasketch import MinHash

    shingle_values = [b"amoxicillin at 25", b"at 25 mg", b"25 mg kg"]
    reference = MinHash(num_perm=128)
    reference.update_batch(shingle_values)
    hv = np.array([struct.unpack("<I", hashlib.sha1(v).digest()[:4])[0] for v in shingle_values], np.uint32)
    a, b = permutations(128)
    assert np.array_equal(permute(hv, a, b).min(axis=0), reference.hashvalues)


def test_near_duplicates_score_high_and_look_alikes_low() -> None:
    texts = dedup_texts(
        frame(
            [
                {"question": Q, "options": OPTS},
                {
                    "question": Q.replace("amoxicillin", "amoxicilin"),
                    "options": OPTS[::-1],
                },  # typo, reordered
                {"question": Q.replace("amoxicillin at 25 mg/kg", "ibuprofen at 10 mg/kg"), "options": OPTS},
                {
                    "language": "zh",
                    "question": "患儿4岁，体重16kg，阿莫西林每次25mg/kg，单次剂量是多少？",
                    "options": OPTS,
                },
                {
                    "language": "zh",
                    "question": "患儿4岁，体重16kg，阿莫西林每次25mg/kg，单次剂量应为多少？",
                    "options": OPTS,
                },
            ]
        )
    )
    sig = signatures(texts, 3, 3, 128)
    sim = (sig[:, None, :] == sig[None, :, :]).mean(axis=2)
    # The estimates track the true Jaccard similarity of the shingle sets (128 permutations:
    # a standard error of about 0.04).
    sets = [shingle_set(" ".join([r["near_text"], *r["near_options"]]), r["language"] == "zh", 3)
            for r in texts.iter_rows(named=True)]  # fmt: skip
    true = np.array([[len(a & b) / len(a | b) for b in sets] for a in sets])
    assert np.abs(sim - true).max() < 0.1
    assert true[0, 1] > 0.7 and true[3, 4] > 0.7  # word and character shingles
    assert true[0, 2] < 0.7 and sim[0, 2] < sim[0, 1] and sim[0, 3] < 0.1  # the look-alike


def shingle_set(text: str, unspaced: bool, n: int) -> set[str]:
    """The shingles the signing kernel reads: word or character n-grams, or the whole text when
    it is shorter than one n-gram."""
    tokens = list(text.replace(" ", "")) if unspaced else text.split()
    if 0 < len(tokens) < n:
        return {text}
    return {" ".join(tokens[k : k + n]) for k in range(len(tokens) - n + 1)}


def test_a_text_longer_than_a_signing_chunk_is_signed_whole() -> None:
    long_text = " ".join(f"word{k}" for k in range(10_000))  # more shingles than one chunk
    texts = dedup_texts(frame([{"question": "short question here"}, {"question": long_text}]))
    sig = signatures(texts, 2, 2, 128)
    from datasketch import MinHash

    assert (sig[1] < 0xFFFFFFFF).all() and not np.array_equal(sig[0], sig[1])
    assert MinHash(num_perm=128).hashvalues.dtype == sig.dtype


def test_items_differing_in_numbers_or_answer_stay_apart() -> None:
    from globmed_data.dedup.linking import cluster_labels

    rate = "Is a resting heart rate of {} beats per minute normal for a healthy adult at rest?"
    rows = [
        {"question": Q, "options": OPTS, "answer_indices": [0]},
        {"question": Q.replace("16 kg", "18 kg"), "options": OPTS, "answer_indices": [0]},  # another dose
        {
            "question": Q.replace("Which single", "Which one"),
            "options": OPTS,
            "answer_indices": [0],
        },  # same item
        {
            "question": Q.replace("Which single", "What single"),
            "options": OPTS,
            "answer_indices": [1],
        },  # other answer
        {"task": "yes_no", "question": rate.format(40), "label": "no"},
        {"task": "yes_no", "question": rate.format(88), "label": "yes"},
        {"task": "yes_no", "question": rate.format(75), "label": "yes"},
        {"task": "yes_no", "question": rate.format(75) + " ", "label": "yes"},  # same item
    ]
    schema_rows = [{"label": None, "answer_indices": None, **r} for r in rows]
    f = frame(schema_rows).with_columns(
        pl.Series("answer_indices", [r["answer_indices"] for r in schema_rows], dtype=pl.List(pl.Int32)),
        pl.Series("label", [r["label"] for r in schema_rows], dtype=pl.String),
    )
    s = DedupSettings(
        num_perm=128, bands=14, rows=9, threshold=0.7, verify_margin=0.05, word_ngram=2, char_ngram=2
    )
    labels = cluster_labels(f, s)
    assert labels[0] == labels[2] and labels[6] == labels[7]
    assert len({labels[0], labels[1], labels[3]}) == 3 and len({labels[4], labels[5], labels[6]}) == 3


def test_bands_follow_the_threshold() -> None:
    assert optimal_bands(0.7, 128) == (14, 9)
    for (threshold, num_perm), shape in KNOWN_SHAPES.items():  # the table equals the search
        assert search_bands(threshold, num_perm) == shape
    base = {"sources": [{"name": "a", "paths": ["x.jsonl"], "preset": "problem_choices", "language": "en"}]}
    with pytest.raises(ConfigError, match="set both `bands` and `rows`"):
        parse_config({**base, "dedup": {"bands": 8}})
    with pytest.raises(ConfigError, match="exceeds num_perm"):
        parse_config({**base, "dedup": {"bands": 20, "rows": 8}})
    with pytest.raises(ConfigError, match="must end with `entry_id`"):
        parse_config({**base, "dedup": {"keep": ["native"]}})


def _write(path, rows) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _item(key: str, question: str, split: str = "train", options: list[str] | None = None) -> dict:
    options = options or OPTS
    return {
        "problem_id": key,
        "problem_text": question,
        "choices": options,
        "answer": "ABCD"[options.index(OPTS[0])] if OPTS[0] in options else "A",  # the same correct text
        "split": split,
    }


@pytest.fixture
def corpus(tmp_path):
    """Two sources with planted duplicates, contamination and an external benchmark list."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    other = "Which vitamin deficiency causes scurvy in adults who eat no fresh fruit or vegetables?"
    _write(
        tmp_path / "a" / "items.jsonl",
        [
            _item("a1", Q, "test"),
            _item("a2", Q.replace("Which single dose", "What single dose"), "train"),  # near dup of a1 (test)
            _item("a3", other, "train"),
            _item("a4", EPILEPSY + ".", "train"),
        ],
    )
    _write(
        tmp_path / "b" / "items.jsonl",
        [
            _item("b1", Q.upper(), "train", OPTS[::-1]),  # exact dup of a1
            _item("b2", other.replace("vegetables", "vegetable"), "train"),  # near dup of a3
            _item("b3", "Which nerve is injured in a fracture of the surgical neck of the humerus?", "train"),
        ],
    )
    _write(
        tmp_path / "bench.jsonl",
        [
            {"problem_id": "m1", "problem_text": EPILEPSY + "!", "choices": OPTS, "answer": "A"},
        ],
    )
    spec = {"preset": "problem_choices", "language": "en", "split": {"field": "split"}}
    config = write_config(
        tmp_path,
        [
            {"name": "src_a", "paths": ["a/*.jsonl"], **spec},
            {"name": "src_b", "paths": ["b/*.jsonl"], **spec},
        ],
        dedup={
            "benchmarks": [
                {"name": "medbench", "paths": ["bench.jsonl"], "preset": "problem_choices", "language": "en"}
            ]
        },
        langid={"enabled": False},
        quality={"enabled": False},
    )
    return load_config(config)


def _members(wh: Warehouse) -> dict[str, tuple]:
    rows = wh.query(
        "SELECT e.record_key, m.decision, k.record_key, m.method FROM dedup_members m "
        "JOIN entries e USING (entry_id) LEFT JOIN entries k ON k.entry_id = m.kept_entry_id"
    )
    return {r[0]: r[1:] for r in rows}


def test_clusters_keep_policy_and_decontamination(warehouse, corpus) -> None:
    collect_all(warehouse, corpus)
    counts = run_dedup(warehouse, corpus, "r1")
    assert counts["entries"] == 7 and counts["checked"] == 7 and counts["benchmark_items"] == 1
    members = _members(warehouse)
    # a1 (test) is kept over its train copies; both train copies are contaminated by it.
    assert members["a1"] == ("kept", "a1", "exact")
    assert members["b1"][0] == "contaminated" and members["b1"][2] == "exact"
    assert members["a2"][:2] == ("contaminated", "a1") and members["a2"][2] == "near"
    # Plain near duplicates: one kept (the stable-id order decides between equals).
    assert {members["a3"][0], members["b2"][0]} == {"kept", "duplicate"}
    # A train entry that matches an external benchmark item is excluded, with the item named.
    assert members["a4"][0] == "contaminated"
    links = dict(
        warehouse.query(
            "SELECT e.record_key, c.test_item FROM contamination c JOIN entries e USING (entry_id)"
        )
    )
    assert links["a4"] == "benchmark:medbench:m1"
    linked = warehouse.query(
        "SELECT k.record_key FROM contamination c JOIN entries e USING (entry_id) "
        "JOIN entries k ON k.entry_id = c.test_item WHERE e.record_key = 'a2'"
    )
    assert linked == [("a1",)]
    curated = {r[0] for r in warehouse.query("SELECT record_key FROM v_curated_entries")}
    assert curated == {"a1", "b3", min(("a3", "b2"), key=lambda k: _id(warehouse, k))}


def test_keep_policy_prefers_the_more_complete_entry_from_its_policy_columns() -> None:
    """The reduce keeps only policy_columns of each entry (the texts are dropped after signing):
    completeness still counts options, a rationale and a context."""
    base = {"source": "s", "split": "train", "origin": "native", "question": "q", "premise": None,
            "hypothesis": None, "answer": None}  # fmt: skip
    entries = pl.DataFrame(
        [
            {**base, "entry_id": "a", "options": ["x", "y"], "rationale": None, "context": None},
            {**base, "entry_id": "b", "options": ["x", "y", "z"], "rationale": None, "context": None},
            {**base, "entry_id": "c", "options": ["x", "y"], "rationale": "why", "context": "ctx"},
            {**base, "entry_id": "d", "options": None, "rationale": None, "context": None},
        ]
    )
    slim = policy_columns(entries)
    assert slim.columns == ["entry_id", "source", "split", "origin", "question", "completeness"]
    assert slim["completeness"].to_list() == [2, 3, 4, 0]
    members = slim.drop("question").with_columns(
        i=pl.Series(range(4)), cluster=pl.lit(0), bench=pl.lit(False)
    )
    sig = np.zeros((4, 8), np.uint32)
    decided, _ = decide_clusters(members, DedupSettings(), sig, np.zeros(4, np.uint64), "r")
    kept = decided.filter(pl.col("decision") == "kept")["entry_id"].to_list()
    assert kept == ["c"] and set(decided["kept_entry_id"]) == {"c"}


def _id(wh: Warehouse, key: str) -> str:
    return wh.query("SELECT entry_id FROM entries WHERE record_key = ?", [key])[0][0]


def test_links_from_signatures_as_made_equal_links_from_signatures_read_back(warehouse, corpus) -> None:
    """A first run links the signatures it has just made; a run that signs nothing reads them
    back from dedup_signatures (here: every link mark cleared, as a killed run leaves them)."""
    collect_all(warehouse, corpus)
    first = run_dedup(warehouse, corpus, "r1")
    assert first["checked"] == first["entries"] == 7
    edges = warehouse.query("SELECT a, b, method, similarity FROM dedup_edges ORDER BY ALL")
    members = _members(warehouse)
    with warehouse.transaction() as con:
        con.execute("UPDATE dedup_signatures SET linked_index = NULL")
    again = run_dedup(warehouse, corpus, "r2")
    assert (again["checked"], again["linked"]) == (0, 7)
    assert warehouse.query("SELECT count(*) FROM dedup_signatures WHERE run_id = 'r2'") == [(0,)]
    assert warehouse.query("SELECT a, b, method, similarity FROM dedup_edges ORDER BY ALL") == edges
    assert _members(warehouse) == members


def test_incremental_run_signs_only_new_entries(warehouse, corpus, tmp_path) -> None:
    collect_all(warehouse, corpus)
    run_dedup(warehouse, corpus, "r1")
    before = warehouse.query("SELECT a, b, run_id FROM dedup_edges ORDER BY ALL")
    assert run_dedup(warehouse, corpus, "r2")["checked"] == 0
    with (tmp_path / "b" / "items.jsonl").open("a") as fh:
        fh.write(json.dumps(_item("b4", Q.replace("Which single dose", "Which one dose"), "train")) + "\n")
    collect_all(warehouse, corpus)
    third = run_dedup(warehouse, corpus, "r3")
    assert third["checked"] == 1
    after = warehouse.query("SELECT a, b, run_id FROM dedup_edges ORDER BY ALL")
    assert set(before) <= set(after) and {r[2] for r in set(after) - set(before)} == {"r3"}
    assert _members(warehouse)["b4"][:2] == ("contaminated", "a1")
    sigs = dict(warehouse.query("SELECT run_id, count(*) FROM dedup_signatures GROUP BY 1"))
    assert sigs == {"r1": 7, "r3": 1}
    assert _pairs_stored_twice(warehouse) == 0


def test_another_link_version_searches_every_stored_link_again(warehouse, corpus, monkeypatch) -> None:
    """A change to how links are searched (linking.LINK_VERSION) is a change of the index: the
    next run keeps the signatures but links every entry again, with the same clusters."""
    import globmed_data.dedup.stage as stage

    collect_all(warehouse, corpus)
    run_dedup(warehouse, corpus, "r1")
    members = _members(warehouse)
    assert stage.DedupStage().pending(warehouse, corpus) == {"dedup:clusters": 0}
    monkeypatch.setattr(stage, "LINK_VERSION", "test")
    assert stage.DedupStage().pending(warehouse, corpus) == {"dedup": 7}
    again = run_dedup(warehouse, corpus, "r2")
    assert (again["checked"], again["linked"]) == (0, 7)
    assert _members(warehouse) == members and _pairs_stored_twice(warehouse) == 0


def test_work_left_in_one_pass_says_what_its_two_checks_say(warehouse, corpus, tmp_path, monkeypatch) -> None:
    """The pending check export and the no-change check run reads the participants once for
    both answers: entries left to link, and clusters decided from other participants. Each
    answer is checked against its own query (unlinked; the stored members key against
    members_key)."""
    import globmed_data.dedup.stage as stage

    s = corpus.config.dedup

    def answers() -> tuple[tuple[int, bool], tuple[int, bool]]:
        return stage.work_left(warehouse, s), (
            stage.unlinked(warehouse, stage.index_hash(s)),
            stage.stored_members(warehouse) != stage.members_key(warehouse, s),
        )

    seen = []
    collect_all(warehouse, corpus)
    seen.append(answers())  # nothing linked, no clusters yet
    run_dedup(warehouse, corpus, "r1")
    seen.append(answers())  # all done
    path = tmp_path / "b" / "items.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    _write(path, [r for r in rows if r["problem_id"] != "b3"])
    collect_all(warehouse, corpus)
    seen.append(answers())  # b3 vanished: nothing to link, but its clusters are stale
    _write(
        path,
        [{**r, "problem_text": r["problem_text"].upper()} if r["problem_id"] == "b2" else r for r in rows],
    )
    collect_all(warehouse, corpus)
    seen.append(answers())  # b3 back (unchanged, still linked) and b2 edited: one to link
    run_dedup(warehouse, corpus, "r2")
    monkeypatch.setattr(stage, "LINK_VERSION", "test")
    seen.append(answers())  # another index: every entry to link again (the members are the same)
    assert all(one == two for one, two in seen)
    assert [one for one, _ in seen] == [(7, True), (0, False), (0, True), (1, True), (7, False)]


def _pairs_stored_twice(wh: Warehouse) -> int:
    return wh.query("SELECT count(*) - count(DISTINCT (a, b)) FROM dedup_edges")[0][0]


def test_an_edited_entry_is_linked_again_and_no_pair_is_stored_twice(warehouse, corpus, tmp_path) -> None:
    """dedup_edges has no key (migration 0014): an entry linked again finds the same partners,
    and its stored links must have gone first, or each pair would be stored twice."""
    collect_all(warehouse, corpus)
    run_dedup(warehouse, corpus, "r1")
    before = warehouse.query("SELECT a, b, method, similarity FROM dedup_edges ORDER BY ALL")
    members = _members(warehouse)
    a2 = _id(warehouse, "a2")
    assert any(a2 in (a, b) for a, b, _, _ in before)
    path = tmp_path / "a" / "items.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for row in rows:  # the same text to dedup (case is normalised away), a new content hash
        if row["problem_id"] == "a2":
            row["problem_text"] = row["problem_text"].upper()
    _write(path, rows)
    collect_all(warehouse, corpus)
    again = run_dedup(warehouse, corpus, "r2")
    assert (again["checked"], again["linked"]) == (1, 1)
    assert _pairs_stored_twice(warehouse) == 0
    after = warehouse.query("SELECT a, b, method, similarity FROM dedup_edges ORDER BY ALL")
    # Linked alone, a2 meets the group's first two partners only: maybe fewer links, one cluster.
    assert set(after) <= set(before) and any(a2 in (a, b) for a, b, _, _ in after)
    assert _members(warehouse) == members
    assert warehouse.query("SELECT count(*) - count(DISTINCT entry_id) FROM dedup_members") == [(0,)]


def test_nli_pairs_on_one_premise_are_not_duplicates() -> None:
    premise = "A 60-year-old man has had crushing chest pain for two hours with ST elevation in V1-V4."
    mi = "The patient has an anterior myocardial infarction"
    texts = dedup_texts(
        frame(
            [
                {"task": "nli", "premise": premise, "hypothesis": mi + "."},
                {"task": "nli", "premise": premise, "hypothesis": "The patient is pain free."},
                {"task": "nli", "premise": premise, "hypothesis": mi + "!"},
            ]
        )
    )
    sig = signatures(texts, 3, 3, 128)
    keys = texts["exact_key"].to_list()
    assert keys[0] == keys[2] and (sig[0] == sig[1]).mean() < 0.5


def reference_normalised(values: list[str | None]) -> list[str]:
    """The definition the compiled normaliser implements, in polars' Unicode routines."""
    expr = (
        pl.col("t").fill_null("").str.normalize("NFKC").str.to_lowercase()
        .str.replace_all(r"[\p{P}\p{S}\s]+", " ").str.strip_chars()
    )  # fmt: skip
    return pl.DataFrame({"t": values}, schema={"t": pl.String}).select(expr).to_series().to_list()


def test_compiled_normalisation_matches_the_unicode_definition() -> None:
    from globmed_data.dedup.signing import normalised

    values = [
        "  Héllo,  WORLD!! ①  ﬁne℃ ", None, "", "a\x1fb", "ǅx", "ＡＢＣ（１２３）：テスト。",
        "患儿4岁，体重16kg？",
        "Ελληνικά ΣΟΦΙΑ", "مرحبا، كيف حالك؟ ١٢٣", "नमस्ते दुनिया। ५", "tab\tnew\nline\u00a0nbsp\u3000ideo",
        "µg ½ x² ™ …", "İstanbul ǈ ß", "\U0001f600 emoji 😀 end", "\ufeffbom",
        # Characters that compose: a base and a combining mark, conjoining Hangul jamo.
        "Cafe\u0301 A\u030a", "\u1100\u1161\u11a8 한", "\u0928\u093c",
    ]  # fmt: skip
    assert normalised(pl.Series(values)).to_list() == reference_normalised(values)


def test_option_order_never_changes_the_signature() -> None:
    reordered = [OPTS[2], OPTS[0], OPTS[3], OPTS[1]]
    rows = [{"question": Q, "options": OPTS}, {"question": Q, "options": reordered},
            {"question": "", "options": []}]  # fmt: skip
    texts = dedup_texts(frame(rows))
    sig = signatures(texts, 2, 2, 128)
    assert texts["exact_key"][0] == texts["exact_key"][1] and np.array_equal(sig[0], sig[1])
    assert (sig[2] == 0xFFFFFFFF).all()  # nothing to shingle: datasketch's empty MinHash


def test_candidate_pairs_give_the_components_of_all_shared_keys() -> None:
    from globmed_data.dedup.linking import candidate_pairs, components

    rng = np.random.default_rng(7)
    n = 3000
    exact = rng.integers(0, 2500, n).astype(np.uint64)
    bands = rng.integers(0, 2800, (6, n)).astype(np.uint64)
    everyone = np.ones(n, dtype=bool)
    i, j = candidate_pairs(exact, bands, everyone)
    assert (i < j).all() and len(set(zip(i.tolist(), j.tolist(), strict=True))) == len(i)
    # Reference: every pair of entries that share a key, grouped by key.
    left, right = [], []
    for column in [exact, *bands]:
        first: dict[int, int] = {}
        for k, key in enumerate(column.tolist()):
            left.append(first.setdefault(key, k))
            right.append(k)
    expected = components(n, np.array(left), np.array(right))
    got = components(n, i, j)
    assert len(set(zip(expected.tolist(), got.tolist(), strict=True))) == len(set(expected.tolist()))
    assert len(set(got.tolist())) == len(set(expected.tolist()))
    # Only new entries search: every pair touches one.
    new = rng.random(n) < 0.1
    i, j = candidate_pairs(exact, bands, new)
    assert (new[i] | new[j]).all() and len(i) > 0


def test_exact_copies_never_take_both_partner_places_in_a_group() -> None:
    """Entries 0 and 1 are exact copies; 2 and 3 share a band with them. Were 3 linked to the
    group's two smallest, it would meet only the copies and, failing to verify with them, never
    meet 2: its second partner is the smallest of another exact key."""
    from globmed_data.dedup.linking import candidate_pairs

    exact = np.array([1, 1, 2, 3], dtype=np.uint64)
    band = np.array([[7, 7, 7, 7]], dtype=np.uint64)
    i, j = candidate_pairs(exact, band, np.ones(4, dtype=bool))
    pairs = set(zip(i.tolist(), j.tolist(), strict=True))
    assert pairs == {(0, 1), (0, 2), (0, 3), (1, 2), (2, 3)}  # two smallest: no (2, 3)


def test_a_column_of_nulls_normalises_to_empty_texts() -> None:
    from globmed_data.dedup.signing import normalised

    assert normalised(pl.Series("p", [None, None])).to_list() == ["", ""]


def _open(question: str, answer: str) -> dict:
    return {"task": "open_qa", "question": question, "answer": answer}


def test_open_questions_are_one_item_only_with_similar_answers() -> None:
    """A forum question answered by two professionals is two items; a copy of one answer is not."""
    from globmed_data.dedup.linking import cluster_labels

    q = "I have had a dry cough for three weeks after a cold, should I be worried about pneumonia?"
    first = ("A cough that lingers after a viral infection is common and usually settles within eight "
             "weeks; see a doctor if you have fever, breathlessness or blood in the sputum.")  # fmt: skip
    second = ("Three weeks of cough needs a chest examination and possibly an X-ray, especially if you "
              "smoke; asthma and reflux are other frequent causes worth ruling out.")  # fmt: skip
    rows = [
        _open(q, first),
        _open(q, second),
        _open(q, first.upper() + "  "),
        _open(q, first.replace("eight", "8")),
    ]
    f = frame(rows).with_columns(pl.Series("answer", [r["answer"] for r in rows], dtype=pl.String))
    keys = dedup_texts(f)["exact_key"].to_list()
    assert keys[0] == keys[2] != keys[1]  # the answer is part of an open question's exact key
    labels = cluster_labels(f, DedupSettings())
    assert labels[0] == labels[2] == labels[3] != labels[1]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is the first-line treatment for uncomplicated malaria in adults and children?",
         "What is the first-line treatment for uncomplicated cystitis in adults and children?"),
        ("Which artery supplies most of the ascending colon in the typical human anatomy?",
         "Which artery supplies most of the descending colon in the typical human anatomy?"),
    ],
)  # fmt: skip
def test_templated_look_alikes_that_swap_a_key_word_stay_apart(a: str, b: str) -> None:
    """Same template, same options and answer letter: two items, as numeric variants are."""
    from globmed_data.dedup.linking import cluster_labels

    rows = [
        {"question": a, "options": OPTS, "answer_indices": [0]},
        {"question": b, "options": OPTS, "answer_indices": [0]},
        {"question": a.upper() + " ", "options": OPTS[::-1], "answer_indices": [3]},  # a's copy, reordered
    ]
    f = frame(rows).with_columns(
        pl.Series("answer_indices", [r["answer_indices"] for r in rows], dtype=pl.List(pl.Int32))
    )
    labels = cluster_labels(f, DedupSettings())
    assert labels[0] != labels[1] and labels[0] == labels[2]


def test_each_distinct_pair_of_near_questions_is_compared_once(monkeypatch) -> None:
    """Copies of one question near copies of another repeat the same pair of texts: the key-word
    check reads each distinct pair once and gives every link its pair's verdict, in order."""
    import globmed_data.dedup.linking as linking

    real = linking.swapped_key_word
    read: list[tuple[str, str]] = []
    monkeypatch.setattr(linking, "swapped_key_word", lambda a, b: read.append((a, b)) or real(a, b))
    malaria = "what is the first line treatment for uncomplicated malaria in adults"
    cystitis = malaria.replace("malaria", "cystitis")
    typo = malaria.replace("treatment", "treatmant")
    left = [malaria, malaria, typo, malaria, cystitis]
    right = [cystitis, cystitis, malaria, cystitis, malaria]
    assert linking._swapped(left, right) == [True, True, False, True, True]
    assert read == [(malaria, cystitis), (typo, malaria), (cystitis, malaria)]


def test_spelling_variants_and_inserted_words_still_link() -> None:
    from globmed_data.dedup.linking import swapped_key_word

    assert not swapped_key_word(
        "low haemoglobin in anaemia of chronic disease", "low hemoglobin in anemia of chronic disease"
    )
    assert not swapped_key_word(
        "a 45 year old man presents with pain", "a 45 year old man with fever presents with pain"
    )
    assert not swapped_key_word("which single dose is correct", "which one dose is correct")
    assert swapped_key_word("the patient has hypertension", "the patient has hypotension")


def test_a_member_that_copies_another_member_exactly_is_an_exact_duplicate(
    warehouse, corpus, tmp_path
) -> None:
    """b5 repeats a2 (a near duplicate of the kept a1) word for word: it is 'exact', not 'near'."""
    with (tmp_path / "b" / "items.jsonl").open("a") as fh:
        fh.write(
            json.dumps(_item("b5", Q.replace("Which single dose", "What single dose").upper(), "train"))
            + "\n"
        )
    collect_all(warehouse, corpus)
    run_dedup(warehouse, corpus, "r1")
    members = _members(warehouse)
    assert members["a2"][2] == "exact" and members["b5"][2] == "exact"
    links = warehouse.query("SELECT method, count(*) FROM v_dedup_links GROUP BY 1 ORDER BY 1")
    assert dict(links)["exact"] >= 2 and dict(links)["near"] >= 1
