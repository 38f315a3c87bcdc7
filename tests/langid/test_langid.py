"""Language identification: text preparation, detection, the policy verdict, and the stage."""

from __future__ import annotations

import uuid

import duckdb
import pytest

from globmed_data.config import parse_config
from globmed_data.langid.identify import (
    Detection,
    LangIdError,
    LanguageIdentifier,
    entry_text,
    judge,
    prepare,
)
from globmed_data.langid.stage import run_langid
from globmed_data.settings import ConfigError
from tests.helpers import collect_all


@pytest.fixture(scope="module")
def ident() -> LanguageIdentifier:
    return LanguageIdentifier()


def test_prepare_drops_digits_punctuation_and_latin_words_in_cjk_text() -> None:
    assert prepare("Quel est le  traitement? 5 mg, voir https://x.org/a", 120) == (
        "Quel est le traitement mg voir",
        "Latin",
        25,
    )
    clean, script, letters = prepare("高血压的首选治疗药物是什么？ ACE inhibitors 10 mg", 120)
    assert (clean, script, letters) == ("高血压的首选治疗药物是什么", "Han", 13)
    # Kana makes Kanji text Japanese; a few Kana among many Kanji still do (5% rule).
    assert prepare("患者の血圧は 180/100 mmHg であり", 120)[1] == "Kana"
    assert prepare("", 120) == ("", None, 0)
    # Devanagari vowel signs are combining marks: they must stay inside their words.
    assert prepare("रोगी को बुखार है", 120)[0] == "रोगी को बुखार है"


@pytest.mark.parametrize(
    ("text", "declared", "expected"),
    [
        ("Quel est le traitement de première intention de l'hypertension artérielle ?", "fr", "fr"),
        ("¿Cuál es el tratamiento de primera elección de la hipertensión arterial?", "es", "es"),
        ("Какой препарат является препаратом выбора при артериальной гипертензии?", "ru", "ru"),
        ("उच्च रक्तचाप के लिए पहली पसंद की दवा कौन सी है?", "hi", "hi"),
        ("ما هو العلاج الأول لارتفاع ضغط الدم الشرياني؟", "ar", "ar"),
        ("高血压的首选治疗药物是什么？", "zh", "zh"),
        ("高血圧の第一選択薬はどれか。1つ選べ。", "ja", "ja"),
        ("Mgonjwa ana homa kali na maumivu makali ya kichwa tangu jana usiku", "sw", "sw"),
        # lid.176 has no Zulu: the coverage detector (py3langid) answers for it.
        ("cishe seziqhubeke isikhathi eside kanganani lezi zimpawu?", "zu", "zu"),
    ],
)
def test_detects_the_language_of_real_medical_text(ident, text, declared, expected) -> None:
    assert ident.detect(text, declared).language == expected


def test_short_text_is_decided_by_script_or_not_at_all(ident) -> None:
    assert ident.detect("はい", "ja") == Detection("ja", 1.0, "script", None, 0.0, "Kana", 2)
    too_short = ident.detect("Oui", "fr")
    assert too_short.language is None and too_short.detector == "none"
    assert judge("fr", too_short, supported=True, min_confidence=0.5, policy="reject").decision == "too_short"


def test_verdicts_follow_the_policy(ident) -> None:
    english = ident.detect("Which of the following drugs is first-line therapy for hypertension in adults?")
    assert english.language == "en" and english.confidence > 0.9
    for policy, language_out in (("flag", "fr"), ("reject", "fr"), ("relabel", "en")):
        verdict = judge("fr", english, supported=True, min_confidence=0.5, policy=policy)
        assert (verdict.agrees, verdict.decision, verdict.language_out) == (False, policy, language_out)
    assert judge("en", english, supported=True, min_confidence=0.5, policy="reject").decision == "agree"
    # A weak disagreement is only "unsure", whatever the policy.
    weak = english._replace(confidence=0.3)
    assert judge("fr", weak, supported=True, min_confidence=0.5, policy="reject").decision == "unsure"


def test_unsupported_language_is_left_alone_unless_clearly_another(ident) -> None:
    other = Detection("id", 0.7, "x", None, 0.0, "Latin", 40)
    assert judge("xx", other, supported=False, min_confidence=0.5, policy="reject").decision == "unsupported"
    english = Detection("en", 0.97, "x", None, 0.0, "Latin", 40)
    assert judge("xx", english, supported=False, min_confidence=0.5, policy="reject").decision == "reject"
    # Kanji-only text may be Japanese: never a mismatch for ja.
    han = Detection("zh", 1.0, "script", None, 0.0, "Han", 6)
    assert judge("ja", han, supported=True, min_confidence=0.5, policy="reject").decision == "unsure"


def test_entry_text_joins_question_options_and_borrows_short_context() -> None:
    assert entry_text({"task": "mcqa", "question": "Q?", "options": ["a", "b"]}) == "Q? a b"
    assert entry_text({"task": "nli", "premise": "P.", "hypothesis": "H."}) == "P. H."
    assert entry_text({"task": "yes_no", "question": "Q?", "context": "C" * 700}) == "Q? " + "C" * 600


def test_missing_model_and_bad_settings_fail_clearly(tmp_path) -> None:
    with pytest.raises(LangIdError, match="model not found"):
        LanguageIdentifier(tmp_path / "nope.bin")
    with pytest.raises(LangIdError, match="unknown language detector"):
        LanguageIdentifier(second_opinion=("cld9",))
    base = {"sources": [{"name": "a", "paths": ["x.jsonl"], "preset": "problem_choices", "language": "en"}]}
    with pytest.raises(ConfigError, match=r"langid\.per_source names source"):
        parse_config({**base, "langid": {"per_source": {"b": "reject"}}})
    with pytest.raises(ConfigError, match=r"langid\.on_mismatch"):
        parse_config({**base, "langid": {"on_mismatch": "delete"}})


def _langid_rows(wh) -> dict[str, tuple]:
    return {
        r[0]: r[1:]
        for r in wh.query(
            "SELECT entry_id, decision, language, detected_language, run_id FROM langid_results"
        )
    }


def test_stage_decides_each_entry_once_and_again_only_when_needed(warehouse, demo) -> None:
    collect_all(warehouse, demo)
    first = run_langid(warehouse, demo, "r1")
    assert first["checked"] == 315
    assert first["totals"] == {"agree": 314, "flag": 1}
    flagged = warehouse.query_dicts("SELECT * FROM v_langid WHERE decision = 'flag'")
    assert [(r["source"], r["declared_language"], r["detected_language"]) for r in flagged] == [
        ("demo_dosing", "yo", "sw")  # the planted Swahili text labelled Yoruba
    ]
    assert run_langid(warehouse, demo, "r2")["checked"] == 0

    # An edited entry is decided again, alone.
    warehouse.con.execute(
        "UPDATE entries SET content_hash = 'edited' WHERE entry_id = (SELECT min(entry_id) FROM entries)"
    )
    assert run_langid(warehouse, demo, "r3")["checked"] == 1

    # A new policy re-decides everything; relabel moves the entry to the detected language.
    relabel = with_langid(demo, per_source={"demo_dosing": "relabel"})
    assert run_langid(warehouse, relabel, "r4")["checked"] == 315
    row = warehouse.query_dicts("SELECT decision, language FROM v_langid WHERE declared_language <> language")
    assert row == [{"decision": "relabel", "language": "sw"}]


def with_langid(loaded, **changes):
    langid = loaded.config.langid.model_copy(update=changes)
    return loaded.model_copy(update={"config": loaded.config.model_copy(update={"langid": langid})})


def test_threads_give_the_same_decisions(warehouse, demo, monkeypatch) -> None:
    import globmed_data.langid.fasttext_model as fasttext_model

    collect_all(warehouse, demo)
    run_langid(warehouse, with_langid(demo, workers=1), "single")
    single = {k: v[:3] for k, v in _langid_rows(warehouse).items()}
    warehouse.con.execute("DELETE FROM langid_results")
    monkeypatch.setattr(fasttext_model, "MIN_PER_THREAD", 10)  # the demo is small: share it anyway
    run_langid(warehouse, with_langid(demo, workers=2), "threads")
    assert {k: v[:3] for k, v in _langid_rows(warehouse).items()} == single


def test_langid_results_survive_reopening(tmp_path, demo) -> None:
    from globmed_data.warehouse import Warehouse

    path = tmp_path / "wh.duckdb"
    with Warehouse(path) as wh:
        collect_all(wh, demo, uuid.uuid4().hex)
        run_langid(wh, demo, "r1")
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT count(*) FROM v_langid").fetchone() == (315,)
    con.close()


def test_detecting_whole_columns_matches_one_by_one(ident) -> None:
    """The stage's column path (routes and fastText over arrays, second opinions row by row)
    decides as single calls do: by script, too short, by the coverage detector, fastText sure,
    and unsure with second opinions."""
    import polars as pl

    from globmed_data.langid.identify import prepare_frame

    cases = [
        ("高血压的首选治疗药物是什么？", "zh"),
        ("高血圧の第一選択薬はどれか。1つ選べ。", "ja"),
        ("Oui", "fr"),
        ("안녕", "ko"),
        ("cishe seziqhubeke isikhathi eside kanganani lezi zimpawu?", "zu"),
        ("Quel est le traitement de première intention de l'hypertension artérielle ?", "fr"),
        ("Mgonjwa ana homa kali na maumivu makali ya kichwa tangu jana usiku", "yo"),
        ("Patient mit Fieber und Kopfschmerzen seit gestern Abend", "en"),
        ("The concentration of a negative ion is 100 mMoUL extracellular", "en"),
        ("", "en"),
    ]
    texts = pl.Series([text for text, _ in cases], dtype=pl.String)
    declared = pl.Series([lang for _, lang in cases], dtype=pl.String)
    prepared = prepare_frame(texts, ident.max_chars)
    rows = zip(prepared.iter_rows(), declared, strict=True)
    one_by_one = [ident.detect_prepared(*row, lang) for row, lang in rows]
    columns = ident.detect_frame(prepared, declared)
    assert [Detection(*row) for row in columns.iter_rows()] == one_by_one
    detectors = {d.detector for d in one_by_one}
    assert detectors >= {"script", "none", "py3langid", "fasttext:lid.176"}
    assert any("+" in d for d in detectors)  # an unsure text that asked second opinions


def test_judging_whole_columns_matches_one_by_one() -> None:
    import itertools

    import polars as pl

    from globmed_data.langid.identify import judge_frame

    detections = [
        Detection(None, 0.0, "none", None, 0.0, None, 3),
        Detection("fr", 0.95, "fasttext:lid.176", "en", 0.02, "Latin", 40),
        Detection("wuu", 0.7, "fasttext:lid.176", "zh", 0.2, "Han", 40),
        Detection("zh", 1.0, "script", None, 0.0, "Han", 12),
        Detection("en", 0.95, "fasttext:lid.176", "fr", 0.01, "Latin", 40),
        Detection("en", 0.4, "fasttext:lid.176+py3langid", "sw", 0.3, "Latin", 40),
        Detection("xh", 0.6, "py3langid", "zu", 0.3, "Latin", 40),
    ]
    cases = list(
        itertools.product(
            detections, ["fr", "zh", "ja", "zu", "sw"], [True, False], ["flag", "relabel", "reject"]
        )
    )
    want = [judge(lang, det, supported=sup, min_confidence=0.5, policy=pol) for det, lang, sup, pol in cases]
    frame = pl.DataFrame(
        [
            {**det._asdict(), "declared": lang, "supported": sup, "policy": pol}
            for det, lang, sup, pol in cases
        ]
    )
    got = judge_frame(frame, 0.5)
    assert [tuple(row) for row in got.iter_rows()] == [tuple(v) for v in want]
    assert {v.decision for v in want} == {
        "too_short",
        "agree",
        "unsure",
        "unsupported",
        "flag",
        "relabel",
        "reject",
    }


PREPARE_CASES = [
    "Quel est le  traitement? 5 mg, voir https://x.org/a",
    "高血压的首选治疗药物是什么？ ACE inhibitors 10 mg",
    "患者の血圧は 180/100 mmHg であり", "", None, "mail me@x.org now", "www.who.int/x and http: no",
    "ABC 高血压 DEF", "  ___  ", "Ελληνικά ABC", "रोगी को बुखार है। ५", "한국어 질문 (Hanja 韓國) test",
    "tab\there\nnew\u00a0nbsp\u3000ideo\x1cfs", "\ufeffbom \u200b zwsp", "e\u0301 combining \U00020000",
    "x" * 300, "Латинские слова Aspirin и ibuprofen 200 mg " * 3,
]  # fmt: skip


@pytest.mark.parametrize("max_chars", [120, 12])
def test_compiled_preparation_matches_the_regex_definition(max_chars) -> None:
    import polars as pl

    from globmed_data.langid.identify import prepare_frame
    from tests.langid_reference import reference_prepare

    texts = pl.Series(PREPARE_CASES, dtype=pl.String)
    assert prepare_frame(texts, max_chars).equals(reference_prepare(texts, max_chars))


def test_a_run_that_fails_midway_is_finished_by_the_next(warehouse, demo, monkeypatch) -> None:
    import globmed_data.langid.stage as stage

    collect_all(warehouse, demo)
    run_langid(warehouse, demo, "first")
    before = {k: v[:3] for k, v in _langid_rows(warehouse).items()}
    changed = with_langid(demo, per_source={"demo_dosing": "relabel"})  # every entry is pending
    monkeypatch.setattr(stage, "CHUNK", 100)
    real, calls = stage.decide_batch, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(stage, "decide_batch", failing)
    with pytest.raises(RuntimeError, match="killed"):
        run_langid(warehouse, changed, "crashed")
    written = len(_langid_rows(warehouse))
    assert 0 < written < 315  # the stale rows went; the batches before the failure were written
    monkeypatch.setattr(stage, "decide_batch", real)
    assert run_langid(warehouse, changed, "again")["checked"] == 315 - written
    after = _langid_rows(warehouse)
    assert len(after) == 315 == warehouse.query("SELECT count(DISTINCT entry_id) FROM langid_results")[0][0]
    assert {k: v[:2] for k, v in after.items() if k in before} == {
        k: ("relabel", "sw") if v[0] == "flag" else v[:2] for k, v in before.items()
    }
