"""Quality rules, one behaviour each, on items modelled on real exam questions; and the stage."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from globmed_data.config import parse_config
from globmed_data.langid.stage import run_langid
from globmed_data.quality.evaluate import evaluate
from globmed_data.quality.report import quality_report, render_markdown
from globmed_data.quality.rules import RULES
from globmed_data.quality.settings import QualitySettings
from globmed_data.quality.stage import run_quality
from globmed_data.settings import ConfigError
from tests.helpers import collect_all

GOOD = {
    "entry_id": "e",
    "source": "s",
    "task": "mcqa",
    "language": "en",
    "question": "Which drug is the first-line treatment of uncomplicated hypertension in adults?",
    "context": None,
    "options": ["Thiazide diuretic", "Digoxin", "Amiodarone", "Warfarin"],
    "answer_indices": [0],
    "label": None,
    "premise": None,
    "hypothesis": None,
    "answer": None,
    "rationale": None,
    "langid_decision": "agree",
    "langid_agrees": True,
}
SCHEMA = {
    "entry_id": pl.String, "source": pl.String, "task": pl.String, "language": pl.String,
    "question": pl.String, "context": pl.String, "options": pl.List(pl.String),
    "answer_indices": pl.List(pl.Int32), "label": pl.String, "premise": pl.String,
    "hypothesis": pl.String, "answer": pl.String, "rationale": pl.String,
    "langid_decision": pl.String, "langid_agrees": pl.Boolean,
}  # fmt: skip


def decide(settings: QualitySettings | None = None, **changes: Any) -> dict[str, Any]:
    frame = pl.DataFrame([{**GOOD, **changes}], schema=SCHEMA)
    return evaluate(frame, settings or QualitySettings()).row(0, named=True)


def reasons(**changes: Any) -> list[str]:
    return decide(**changes)["reasons"]


def flags(**changes: Any) -> list[str]:
    return decide(**changes)["flags"]


def test_a_good_item_passes_with_full_score() -> None:
    row = decide()
    assert (row["passed"], row["score"], row["reasons"], row["flags"]) == (True, 1.0, [], [])


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"question": "  "}, "missing_text"),
        ({"options": ["Thiazide diuretic"]}, "too_few_options"),
        ({"options": [f"Option {i}" for i in range(11)]}, "too_many_options"),
        ({"options": ["Thiazide diuretic", " ", "Amiodarone"]}, "empty_option"),
        ({"options": ["Thiazide diuretic", "thiazide  Diuretic", "Amiodarone"]}, "duplicate_options"),
        ({"answer_indices": []}, "invalid_answer"),
        ({"answer_indices": [4]}, "invalid_answer"),
        ({"task": "yes_no", "options": None, "answer_indices": None, "label": "perhaps"}, "invalid_label"),
        ({"task": "open_qa", "options": None, "answer_indices": None, "answer": ""}, "invalid_answer"),
        ({"question": "Dose?", "options": ["1", "2"]}, "too_short"),
        ({"question": "x " * 3100}, "too_long"),
        ({"question": GOOD["question"] + " " + GOOD["question"] + " " + GOOD["question"]}, "repetitive"),
        ({"question": "Which of these &&& ### @@@ $$$ %%% ^^^ *** !!! ??? ~~~ drug?"}, "symbol_ratio"),
        ({"question": "<p>Which drug is first-line&nbsp;for hypertension?</p>"}, "markup"),
        ({"question": GOOD["question"] + "\x07"}, "control_chars"),
        ({"question": "Quel est le traitement de premiÃ¨re intention de lâ€™hypertension ?"}, "mojibake"),
        ({"options": ["I'm sorry, but there is no text to translate.", "Digoxin"]}, "translation_artifact"),
        ({"question": "As shown in the figure, which structure is marked by the arrow?"}, "missing_image"),
        (
            {"language": "ja", "question": "口腔内写真(別冊No. 18A)を別に示す。診断はどれか。"},
            "missing_image",
        ),
        ({"language": "zh", "question": "患者男，50岁，胸痛如图所示，最可能的诊断是"}, "missing_image"),
        ({"language": "ru", "question": GOOD["question"], "langid_agrees": False}, "script_mismatch"),
        ({"langid_decision": "reject", "langid_agrees": False}, "language_mismatch"),
    ],
)
def test_each_rule_rejects_its_defect(changes, code) -> None:
    assert code in reasons(**changes)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"options": ["Thiazide diuretic", "Digoxin", "All of the above"]}, "all_of_the_above"),
        ({"options": ["Thiazide", "Digoxin", "Todas las anteriores son correctas"]}, "all_of_the_above"),
        ({"question": GOOD["question"] + " See https://example.org/guideline"}, "url"),
        ({"question": GOOD["question"] + " Contact dr.smith@example.org."}, "pii_email"),
        ({"question": GOOD["question"] + " Call +1 415 555 0134."}, "pii_phone"),
        ({"question": GOOD["question"] + " SSN 123-45-6789."}, "pii_id_number"),
        ({"question": "Compute 12345678 + 98765432 = 1111111110 ?"}, "digit_ratio"),
        ({"langid_decision": "flag", "langid_agrees": False}, "language_mismatch"),
        ({"langid_decision": "relabel", "langid_agrees": False}, "language_relabelled"),
    ],
)
def test_flags_keep_the_entry(changes, code) -> None:
    row = decide(**changes)
    assert code in row["flags"] and row["passed"], row


@pytest.mark.parametrize(
    "changes",
    [
        # Real exam formats that early rules wrongly rejected (see docs/quality.md).
        {
            "language": "zh",
            "question": "窦房结",
            "options": ["由平滑肌纤维构成", "为心的正常起搏点", "与房室结无联系"],
        },
        {
            "language": "es",
            "question": "La PCR:",
            "options": ["Requiere polimerasas termoresistentes.", "Usa ARN."],
        },
        {
            "language": "zh",
            "question": "男，47岁。心电图示窦性心律，HBsAg（+），抗-HBc（－），ALT 460U/L。最可能的诊断是",
        },
        {"language": "zh", "question": "3．Hippocrates法复位（　　）。", "langid_agrees": True},
        {
            "language": "ja",
            "question": "ウレアーゼ試験で検出されるのはどれか。 1つ選べ。",
            "options": ["Helicobacter pylori", "Treponema pallidum", "Streptococcus pyogenes"],
        },
        {
            "language": "ru",
            "question": "Peptostreptococcus spp. и Peptococcus spp. анаэробы?",
            "langid_agrees": True,
        },
        {"question": "Tay-Sachs disease is caused by deficiency of _________________?"},
        {"options": ["To aid swallowing.", "As an aid to weaning patients from a ventilator."]},
        {"question": "His laboratory studies are shown below.\nHemoglobin: 8 g/dL\nPlatelets: 400,000/mm3"},
    ],
)
def test_valid_exam_items_pass(changes) -> None:
    row = decide(**changes)
    assert row["passed"], row


def test_actions_can_be_changed_per_rule() -> None:
    markup = {"question": "<b>Which</b> drug is first-line for uncomplicated hypertension?"}
    as_flag = decide(QualitySettings(actions={"markup": "flag"}), **markup)
    assert as_flag["passed"] and as_flag["flags"] == ["markup"] and as_flag["score"] == pytest.approx(0.9)
    off = decide(QualitySettings(actions={"markup": "off"}), **markup)
    assert off["passed"] and off["flags"] == [] and off["score"] == 1.0
    rejected = decide(**markup)
    assert rejected["reasons"] == ["markup"] and rejected["score"] == pytest.approx(0.5)


def test_per_language_thresholds_and_required_rationale() -> None:
    short_zh = {"language": "zh", "question": "何为", "options": ["甲", "乙"]}
    assert "too_short" in reasons(**short_zh)
    loose = QualitySettings(thresholds={"min_chars": {"default": 20, "zh": 4}})
    assert decide(loose, **short_zh)["passed"]
    strict = QualitySettings(require_rationale=["s"])
    assert decide(strict)["reasons"] == ["missing_rationale"]
    assert decide(strict, rationale="Thiazides lower mortality.")["passed"]


def test_invalid_quality_settings_are_refused() -> None:
    base = {"sources": [{"name": "a", "paths": ["x.jsonl"], "preset": "problem_choices", "language": "en"}]}
    with pytest.raises(ConfigError, match="unknown rule"):
        parse_config({**base, "quality": {"actions": {"no_such_rule": "flag"}}})
    with pytest.raises(ConfigError, match="needs a `default` entry"):
        parse_config({**base, "quality": {"thresholds": {"min_chars": {"zh": 4}}}})
    with pytest.raises(ConfigError, match="not in this config"):
        parse_config({**base, "quality": {"require_rationale": ["b"]}})


def test_every_rule_is_documented() -> None:
    from tests.helpers import ROOT

    doc = (ROOT / "docs" / "quality.md").read_text()
    assert [code for code in RULES if f"`{code}`" not in doc] == []


def test_stage_stores_decisions_and_reruns_only_what_changed(warehouse, demo) -> None:
    collect_all(warehouse, demo)
    run_langid(warehouse, demo, "r1")
    first = run_quality(warehouse, demo, "r1")
    assert first["checked"] == 315
    assert first["reasons"] == {
        "duplicate_options": 1, "missing_image": 1, "markup": 1, "mojibake": 1, "translation_artifact": 1,
    }  # fmt: skip
    assert run_quality(warehouse, demo, "r2")["checked"] == 0
    # A langid decision made later (here: a new langid run after an edit) re-checks that entry.
    warehouse.con.execute(
        "UPDATE entries SET content_hash = 'edited' WHERE entry_id = (SELECT min(entry_id) FROM entries)"
    )
    run_langid(warehouse, demo, "r3")
    assert run_quality(warehouse, demo, "r3")["checked"] == 1
    # Its decision replaced the one stored; the first run's were inserted (stage.py: `stored`).
    rows = warehouse.query("SELECT count(*), count(*) FILTER (WHERE run_id = 'r3') FROM quality_results")
    assert rows == [(315, 1)]

    report = quality_report(warehouse)
    assert report["entries"] == 315 and report["rejected"] == 5
    assert {r["reason"] for r in report["by_reason"] if r["kind"] == "reject"} == set(first["reasons"])
    markdown = render_markdown(report)
    assert "| demo_dosing |" in markdown and "| missing_image | content | reject | 1 |" in markdown


def test_a_batch_decided_in_threads_matches_one_part(monkeypatch) -> None:
    import globmed_data.quality.evaluate as rules

    variants = [
        {}, {"options": ["A", "A", "B"]}, {"question": "see the figure below <br>"},
        {"language": "zh", "question": "患儿4岁，体重16kg，应给予多少剂量？"}, {"answer_indices": [9]},
    ]  # fmt: skip
    frame = pl.DataFrame(
        [{**GOOD, **variants[k % len(variants)], "entry_id": f"e{k}"} for k in range(50)], schema=SCHEMA
    )
    one = evaluate(frame, QualitySettings(), threads=1)
    monkeypatch.setattr(rules, "_MIN_PART", 8)
    threaded = evaluate(frame, QualitySettings(), threads=3)
    assert threaded.equals(one) and threaded["passed"].sum() == 20  # the good item and the zh one
