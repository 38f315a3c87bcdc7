import pytest

from globmed_data.config import parse_config
from globmed_data.ids import entry_id
from globmed_data.sources.mapping import MappingError, RecordMapper, field_getter, get_field


def mapper(mapping=None, **source) -> RecordMapper:
    spec = {"name": "src", "paths": ["x.jsonl"], "language": "en", **source}
    if mapping is not None:
        spec["mapping"] = mapping
    return RecordMapper(parse_config({"sources": [spec]}).sources[0])


def run(m: RecordMapper, record: dict, rel: str = "f.jsonl", extra: dict | None = None) -> dict:
    extra = {"_file": rel, **(extra or {})}
    key = m.record_key(record, extra, None)
    return m.map(record, extra, m.file_context(rel), key)


def reason(m: RecordMapper, record: dict) -> str:
    with pytest.raises(MappingError) as exc:
        run(m, record)
    return exc.value.reason


MCQA_LIST = {
    "task": "mcqa",
    "key": "id",
    "question": "q",
    "options": {"field": "o"},
    "answer": {"field": "a"},
}


def test_mcqa_list_with_labels_and_letter_answers() -> None:
    e = run(mapper(MCQA_LIST), {"id": 1, "q": " Which?  ", "o": ["(A) x", "(B) y", "(C) z"], "a": "(C)"})
    assert e["question"] == "Which?"
    assert e["options"] == ["x", "y", "z"]
    assert e["answer_indices"] == [2]
    assert e["entry_id"] == entry_id("src", "1")
    assert e["task"] == "mcqa" and e["language"] == "en" and e["split"] == "train"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("b", [1]), (["a", "c"], [0, 2]), ("A,C", [0, 2]), ("(ACD)", [0, 2, 3]), (["d", ",", "b"], [1, 3])],
)
def test_letter_answer_forms(answer, expected) -> None:
    e = run(mapper(MCQA_LIST), {"id": 1, "q": "Q", "o": ["1", "2", "3", "4"], "a": answer})
    assert e["answer_indices"] == expected


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ("", "missing_answer"),
        ([], "missing_answer"),
        ("NA", "missing_answer"),
        (None, "missing_answer"),
        ("F", "answer_out_of_range"),
        ("a or d", "invalid_answer"),
        ("1", "invalid_answer"),
    ],
)
def test_bad_answers_have_reasons(answer, code) -> None:
    assert reason(mapper(MCQA_LIST), {"id": 1, "q": "Q", "o": ["1", "2", "3", "4"], "a": answer}) == code


ANSWERS = [
    "a", "C", "(b)", "[D].", "d.", "(E)", "Z", "", " ", "A ", " b", "A,", "A .", "or", "NA", "-", "?", "AB",
    "(ACD)", "a or d", "ب", "Ｃ", "1", "0", 2, None, True, ["c"], ["(a)"], ["E"], [""], ["a", "b"], [1],
]  # fmt: skip


@pytest.mark.parametrize("style", ["letter", "id", "index"])
def test_the_single_answer_shortcut_decides_what_the_general_path_decides(style, monkeypatch) -> None:
    """The usual one-letter (or one-id) answer skips the token parsing: same indices, and the
    same reason for every answer the shortcut leaves to the general path."""
    options = {**MCQA_LIST["options"], "style": "objects", "id_field": "k", "text_field": "t"}
    spec = {**MCQA_LIST, "options": options, "answer": {"field": "a", "style": style}}
    record = {"id": 1, "q": "Q", "o": [{"k": k, "t": f"t{k}"} for k in ("A", "B", "1", "", "C", "or")]}

    def outcome(answer: object) -> object:
        try:
            return run(mapper(spec), {**record, "a": answer})["answer_indices"]
        except MappingError as exc:
            return exc.reason

    shortcut = [outcome(a) for a in ANSWERS]
    monkeypatch.setattr("globmed_data.sources.mapping._single_answer", lambda *args: None)
    assert shortcut == [outcome(a) for a in ANSWERS]


def test_options_problems() -> None:
    m = mapper(MCQA_LIST)
    assert reason(m, {"id": 1, "q": "Q", "o": [], "a": "a"}) == "missing_options"
    assert reason(m, {"id": 1, "q": "Q", "o": ["only", ""], "a": "a"}) == "too_few_options"
    assert reason(m, {"id": 1, "o": ["x", "y"], "a": "a"}) == "missing_field"
    assert reason(m, {"q": "Q", "o": ["x", "y"], "a": "a"}) == "missing_key"


@pytest.mark.parametrize(
    ("style", "value"),
    [
        ("list", '["x", "y", "z"]'),  # JSON in a CSV cell
        ("list", "['x', 'y', 'z']"),  # a Python literal
        ("list", "{'A': 'x', 'B': 'y', 'C': 'z'}"),  # letters: the same options in a list style
        ("letter_dict", "{'a': 'x', 'b': 'y', 'c': 'z'}"),
        ("letter_dict", '{"A": "x", "B": "y", "C": "z"}'),
        ("letter_dict", {"B": "y", "A": "x", "C": "z"}),
    ],
)
def test_options_stored_as_a_string_of_json_or_a_python_literal(style, value) -> None:
    m = mapper({**MCQA_LIST, "options": {"field": "o", "style": style}})
    e = run(m, {"id": 1, "q": "Q", "o": value, "a": "b"})
    assert e["options"] == ["x", "y", "z"] and e["answer_indices"] == [1]


def test_option_objects_stored_as_a_string() -> None:
    m = mapper(
        {**MCQA_LIST, "options": {"field": "o", "style": "objects", "id_field": "k", "text_field": "t"}}
    )
    e = run(m, {"id": 1, "q": "Q", "o": "[{'k': 'A', 't': 'x'}, {'k': 'B', 't': 'y'}]", "a": "a"})
    assert e["options"] == ["x", "y"]


@pytest.mark.parametrize(
    ("style", "value", "said"),
    [
        ("list", "{'A': 'x', 'B'", "neither JSON nor a Python literal"),
        ("list", "A. x B. y", "use style: text"),
        ("letter_dict", ["x", "y"], "expected an object of letters, got list"),
        ("objects", "[1, 2]", "expected a list of objects, got list"),
        ("text", ["x"], "expected option text"),
    ],
)
def test_options_of_another_shape_have_their_own_reason(style, value, said) -> None:
    m = mapper({**MCQA_LIST, "options": {"field": "o", "style": style}})
    with pytest.raises(MappingError) as exc:
        run(m, {"id": 1, "q": "Q", "o": value, "a": "a"})
    assert exc.value.reason == "unparseable_options" and said in exc.value.detail


def test_inline_options_leave_the_stem_as_the_question() -> None:
    m = mapper({**MCQA_LIST, "options": {"style": "inline"}})
    e = run(m, {"id": 1, "q": "ما هو العلاج الأول؟\nأ- الأسبرين\nب- الهيبارين\nج- الوارفارين", "a": "ب"})
    assert e["question"] == "ما هو العلاج الأول؟"
    assert e["options"] == ["الأسبرين", "الهيبارين", "الوارفارين"] and e["answer_indices"] == [1]
    ko = run(m, {"id": 2, "q": "옳은 것은? ① 가 ② 나 ③ 다", "a": "③"})
    assert ko["question"] == "옳은 것은?" and ko["answer_indices"] == [2]
    assert reason(m, {"id": 3, "q": "A question with no options at all?", "a": "a"}) == "unparseable_options"


def test_text_style_reads_labels_of_other_scripts() -> None:
    m = mapper({**MCQA_LIST, "options": {"field": "o", "style": "text"}})
    assert run(m, {"id": 1, "q": "Q", "o": "(A) x\n(B) y", "a": "b"})["options"] == ["x", "y"]
    e = run(m, {"id": 2, "q": "Q", "o": "א. אספירין ב. הפרין ג. וורפרין", "a": "ג"})
    assert e["options"] == ["אספירין", "הפרין", "וורפרין"] and e["answer_indices"] == [2]


def test_labels_apply_only_where_options_are_text() -> None:
    from globmed_data.settings import ConfigError

    with pytest.raises(ConfigError, match="`labels` applies to the styles"):
        mapper({**MCQA_LIST, "options": {"field": "o", "labels": ["a", "b"]}})


def test_misspelt_field_via_alias_candidates() -> None:
    m = mapper(preset="problem_choices", language="ja")
    e = run(m, {"problem_id": "116A1", "problem_text": "問題", "choices": ["甲", "乙"], "asnwer": ["b"]})
    assert e["answer_indices"] == [1]


def test_letter_dict_text_objects_and_columns() -> None:
    e = run(
        mapper(preset="letter_dict", language="fr"),
        {"id": "x", "question": "Q ?", "answers": {"b": "deux", "a": "un"}, "correct_answers": ["b"]},
    )
    assert e["options"] == ["un", "deux"] and e["answer_indices"] == [1]

    e = run(
        mapper(preset="options_text"), {"question": "Q", "options": "(A) one.\n(B) two.", "answer": "(B)"}
    )
    assert e["options"] == ["one.", "two."] and e["answer_indices"] == [1]
    assert e["record_key"].startswith("h:")

    e = run(
        mapper(preset="head_qa", language="es"),
        {
            "qid": "7",
            "qtext": "¿Q?",
            "ra": "2",
            "answers": [{"aid": 1, "atext": "a"}, {"aid": 2, "atext": "b"}],
        },
        extra={"_path": "Cuaderno_1"},
    )
    assert e["answer_indices"] == [1] and e["record_key"] == "Cuaderno_1:7"
    assert reason(
        mapper(preset="head_qa", language="es"),
        {
            "qid": "8",
            "qtext": "Q",
            "ra": "9",
            "answers": [{"aid": 1, "atext": "a"}, {"aid": 2, "atext": "b"}],
        },
    ) in ("missing_key", "answer_out_of_range")

    cols = {
        "task": "mcqa",
        "question": "q",
        "options": {"style": "columns", "fields": ["a1", "a2", "a3"]},
        "answer": {"field": "k", "style": "index", "index_base": 1},
    }
    e = run(mapper(cols), {"q": "Q", "a1": "x", "a2": "y", "a3": "", "k": "2"})
    assert e["options"] == ["x", "y"] and e["answer_indices"] == [1]


def test_answer_by_text() -> None:
    spec = {**MCQA_LIST, "answer": {"field": "a", "style": "text"}}
    assert run(mapper(spec), {"id": 1, "q": "Q", "o": ["Heart", "Lung"], "a": "lung"})["answer_indices"] == [
        1
    ]
    assert (
        reason(mapper(spec), {"id": 1, "q": "Q", "o": ["Heart", "Lung"], "a": "Liver"})
        == "answer_out_of_range"
    )


def test_yes_no_nli_open_qa() -> None:
    e = run(
        mapper(preset="rumed_danet", language="ru"),
        {"pairID": "p", "context": "C", "question": "Q?", "answer": "да"},
    )
    assert (e["task"], e["label"], e["context"]) == ("yes_no", "yes", "C")
    assert (
        reason(
            mapper(preset="rumed_danet", language="ru"),
            {"pairID": "p", "context": "C", "question": "Q?", "answer": "может"},
        )
        == "invalid_label"
    )

    e = run(
        mapper(preset="pubmedqa_choices"),
        {
            "problem_id": 3,
            "problem_text": "Q?",
            "context": "C",
            "choices": ["yes", "no", "maybe"],
            "answer": ["c"],
        },
    )
    assert e["label"] == "maybe"

    e = run(
        mapper(preset="rumed_nli", language="ru"),
        {"pairID": "p", "ru_sentence1": "A", "ru_sentence2": "B", "gold_label": "neutral"},
    )
    assert (e["premise"], e["hypothesis"], e["label"]) == ("A", "B", "neutral")

    e = run(mapper(preset="open_qa"), {"question": "Q?", "answer": "Because."})
    assert (e["question"], e["answer"]) == ("Q?", "Because.")
    assert reason(mapper(preset="open_qa"), {"question": "Q?", "answer": ""}) == "missing_field"


def test_language_and_split_from_fields_and_paths() -> None:
    m = mapper(MCQA_LIST, language={"pattern": r"/([a-z]{2})\.json$"}, split={"pattern": "^(dev|test)/"})
    e = run(m, {"id": 1, "q": "Q", "o": ["x", "y"], "a": "a"}, rel="dev/zh.json")
    assert (e["language"], e["split"]) == ("zh", "validation")
    m = mapper(MCQA_LIST, language={"field": "lang"})
    assert run(m, {"id": 1, "q": "Q", "o": ["x", "y"], "a": "a", "lang": "es_la"})["language"] == "es-LA"
    assert reason(m, {"id": 1, "q": "Q", "o": ["x", "y"], "a": "a"}) == "missing_language"
    assert reason(m, {"id": 1, "q": "Q", "o": ["x", "y"], "a": "a", "lang": "12"}) == "invalid_language"


def test_translation_parent_and_content_hash() -> None:
    parent = {"name": "parent", "paths": ["p.jsonl"], "language": "ja", "preset": "problem_choices"}
    child = {
        "name": "src",
        "paths": ["x.jsonl"],
        "language": "en",
        "preset": "problem_choices_en",
        "origin": "translated",
        "translation_of": {"source": "parent", "key": "problem_id"},
    }
    m = RecordMapper(parse_config({"sources": [parent, child]}).sources[1])
    record = {"problem_id": "112A1", "problem_text_en": "Which?", "choices_en": ["a", "b"], "answer": ["a"]}
    e = run(m, record)
    assert e["origin"] == "translated"
    assert e["parent_entry_id"] == entry_id("parent", "112A1")
    changed = run(m, {**record, "problem_text_en": "Which one?"})
    assert changed["entry_id"] == e["entry_id"] and changed["content_hash"] != e["content_hash"]


def test_a_field_lookup_decided_once_gives_what_get_field_gives() -> None:
    """RecordMapper decides each field's lookup once per source (field_getter); every kind of
    reference must read the same value as the general get_field."""
    records = [
        {"q": "plain", "a": None, "b": "second", "n": {"x": [10, {"y": "deep"}]}, "_file": "in record"},
        {"b": "only b", "n": {"x": []}, "q.x": "a dotted key"},
        {},
    ]
    extra = {"_file": "f.jsonl", "_locator": "L3", "_path": "exam/1"}
    refs = [None, "q", "missing", ["a", "b"], ["missing", "b"], ["missing", "other"], "n.x.0", "n.x.1.y",
            "n.x.5", "q.x", "_file", "_path", ["_locator", "q"], ["q", "n.x.0"]]  # fmt: skip
    for record in records:
        for ref in refs:
            assert field_getter(ref)(record, extra) == get_field(record, ref, extra), (record, ref)
    # A candidate that is present but null wins over the next one, as in get_field.
    assert field_getter(["a", "b"])(records[0], extra) is None
