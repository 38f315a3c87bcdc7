"""A batch mapped column by column (RecordMapper.map_batch) gives each record what it gets when
it is mapped alone: the same entry, or the same first error, whatever its neighbours do."""

import pytest

from globmed_data.schema import ENTRY_COLUMNS
from globmed_data.sources.columns import UNDECIDED, Columns
from globmed_data.sources.mapping import MappingError
from tests.sources.test_mapping import MCQA_LIST, mapper


def _alone(m, record: dict, extra: dict, ctx, key: str) -> dict | tuple[str, str]:
    try:
        return m.map(record, extra, ctx, key)
    except MappingError as exc:
        return exc.reason, exc.detail
    except Exception as exc:
        return type(exc).__name__, str(exc)


def _batched(m, records: list[dict], ctx) -> list[dict | tuple[str, str]]:
    extras = [{"_file": "f.jsonl"} for _ in records]
    keys = [str(i) for i in range(len(records))]
    cols = m.map_batch(records, extras, ctx, keys)
    out: list[dict | tuple[str, str]] = []
    for i in range(len(records)):
        if i in cols.errors:
            exc = cols.errors[i]
            out.append(
                (exc.reason, exc.detail) if isinstance(exc, MappingError) else (type(exc).__name__, str(exc))
            )
        else:
            at = cols.index.index(i)
            out.append({name: cols.columns[name][at] for name in ENTRY_COLUMNS})
    return out


def test_a_batch_gives_each_record_its_outcome_alone() -> None:
    m = mapper({**MCQA_LIST, "rationale": "r", "context": "c", "metadata": {"m": "m"}}, split={"field": "s"})
    ctx = m.file_context("f.jsonl")
    good = {"q": "Which?", "o": ["x", "y", "z"], "a": "C"}
    records = [
        good,
        {**good, "q": ""},  # missing_field at the question
        {**good, "r": 3.5, "c": "  two  spaces &amp; an entity"},  # slow paths of the text columns
        {**good, "r": {"not": "text"}},  # fails at the rationale, before its empty question
        {**good, "o": ["only"]},  # too_few_options
        {**good, "a": "Z"},  # answer_out_of_range
        {**good, "s": "dev", "q": "Cafe\u0301 ?"},  # a split of its own, NFC
        {**good, "o": '["p", "q"]', "a": ["b"]},
        {**good, "q": ["two", "lines"]},
        good,
    ]
    alone = [_alone(m, r, {"_file": "f.jsonl"}, ctx, str(i)) for i, r in enumerate(records)]
    assert _batched(m, records, ctx) == alone
    assert [o[0] for o in alone if isinstance(o, tuple)] == [
        "missing_field", "missing_field", "too_few_options", "answer_out_of_range",
    ]  # fmt: skip
    assert alone[3][1].startswith("expected text")  # the rationale's error, the first in order
    assert alone[6]["split"] == "validation" and alone[6]["question"] == "Caf\u00e9 ?"


def test_every_record_failing_leaves_an_empty_batch() -> None:
    m = mapper(MCQA_LIST, language={"field": "lang"})
    ctx = m.file_context("f.jsonl")
    records = [
        {"q": "x", "o": ["a", "b"], "a": "A"},
        {"lang": "not a code!", "q": "x", "o": ["a", "b"], "a": "A"},
    ]
    cols = m.map_batch(records, [{}, {}], ctx, ["1", "2"])
    assert {i: e.reason for i, e in cols.errors.items()} == {0: "missing_language", 1: "invalid_language"}
    assert len(cols) == 0 and all(column == [] for column in cols.columns.values())


def test_only_the_undecided_records_go_to_the_rule() -> None:
    cols = Columns([{"v": v} for v in (1, 2, 3, 4)], [{}] * 4)
    asked: list[int] = []

    def rule(i: int) -> int:
        asked.append(cols.records[i]["v"])
        if cols.records[i]["v"] == 3:
            raise MappingError("bad", "three")
        return -cols.records[i]["v"]

    assert cols.add("x", lambda: [10, UNDECIDED, UNDECIDED, 40], rule) == [10, -2, 40]
    assert asked == [2, 3] and cols.index == [0, 1, 3] and cols.errors[2].reason == "bad"
    assert cols.add("y", lambda: 1 / 0, rule) == [-1, -2, -4]  # raised: every live record's rule
    assert asked == [2, 3, 1, 2, 4] and cols.columns == {"x": [10, -2, 40], "y": [-1, -2, -4]}


ODD = [
    None, "", " ", 3, True, [], {}, ["x"], "C", "(c)", "z", "a or d", " yes ", "YES", "да", "1", "&amp; y",
    "é\u0301", ["(A) p", "(B) q"], {"b": "two", "a": "one", "C": "three"},
    [{"id": 1, "text": "t"}, {"id": 2, "text": "u"}],
    [{"id": "x", "text": None}, {"id": "y", "text": "v"}, {"id": "z", "text": "  w  "}], '["p", "q"]',
    "(A) p\n(b) q  &amp; r\n(C) s", ["  p ", "q  &amp; r", "s"], "(A) \n(B) q", "(A) only",
    "أ- p\nب- q", "A. p\nB. q", "x\n(A) p\n(A) q",
]  # fmt: skip
MCQA = {"q": "Which?", "o": ["x", "y", "z"], "a": "C"}
LABELLED = {"q": "Which?", "o": "hyp", "a": "yes"}
MAPPINGS = [  # (mapping, a good record)
    ({**MCQA_LIST, "options": {"style": "text", "field": "o"}}, {**MCQA, "o": "(A) x\n(B) y\n (C)  z"}),
    (
        {**MCQA_LIST, "options": {"style": "text", "field": "o", "labels": ["A", "B", "C"]}},
        {**MCQA, "o": "A. x\nB. y\nC. z"},
    ),
    ({**MCQA_LIST, "options": {"style": "list", "field": "o"}}, MCQA),
    (
        {**MCQA_LIST, "options": {"style": "letter_dict", "field": "o"}},
        {**MCQA, "o": {"b": "y", "a": "x", "C": "z"}},
    ),
    (
        {**MCQA_LIST, "options": {"style": "objects", "field": "o"}, "answer": {"style": "id", "field": "a"}},
        {**MCQA, "o": [{"id": 1, "text": "x"}, {"id": 2, "text": "y"}], "a": "2"},
    ),
    ({**MCQA_LIST, "answer": {"style": "index", "field": "a", "index_base": 1}}, {**MCQA, "a": 2}),
    (
        {"task": "yes_no", "question": "q", "label": {"field": "a", "values": {"": "no", "да": "yes"}}},
        LABELLED,
    ),
    ({"task": "nli", "premise": "q", "hypothesis": "o", "label": {"field": "a"}}, {**LABELLED, "a": "e"}),
    (
        {"task": "classification", "question": "q", "label": {"field": "a", "labels": ["yes", "C", "z"]}},
        LABELLED,
    ),
]


@pytest.mark.parametrize(("mapping", "good"), MAPPINGS)
def test_the_option_answer_and_label_columns_equal_their_rules(mapping, good, monkeypatch) -> None:
    """Each odd value, alone and among good records, gets from the columns' expressions exactly
    what the per-record rules give it (the expressions made to fail, so that only rules run)."""
    m = mapper(mapping)
    ctx = m.file_context("f.jsonl")
    records = [good] + [{**good, field: v} for v in ODD for field in ("o", "a")] + [good]
    batches = [[r] for r in records] + [records[i : i + 3] for i in range(0, len(records), 3)]
    columns = [_batched(m, batch, ctx) for batch in batches]

    def rules_only(self, name, column, one):
        return add(self, name, lambda: (_ for _ in ()).throw(RuntimeError("undecided")), one)

    add = Columns.add
    monkeypatch.setattr(Columns, "add", rules_only)
    assert [_batched(m, batch, ctx) for batch in batches] == columns
    outcomes = {o if isinstance(o, tuple) else "entry" for batch in columns for o in batch}
    assert "entry" in outcomes and len(outcomes) > 2  # the odd values reach several outcomes
