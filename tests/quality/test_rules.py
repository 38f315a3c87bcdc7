"""The rule registry is the one place a rule lives: what is derived from it (the prefilter, the
rules hash, the docs table) follows it, and every record is complete."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import polars as pl
import pytest

from globmed_data.quality import evaluate as evaluate_module
from globmed_data.quality import rules as rules_module
from globmed_data.quality.docs import render_docs
from globmed_data.quality.evaluate import rules_hash
from globmed_data.quality.rules import ACTIONS, GROUPS, PREFILTER, RULES
from globmed_data.quality.settings import QualityThresholds
from tests.helpers import ROOT


def test_every_record_is_complete() -> None:
    for code, rule in RULES.items():
        assert rule.code == code and rule.group in GROUPS and rule.action in ACTIONS, code
        assert (rule.hit is None) != (rule.pattern is None), f"{code}: an expression or a pattern"
        if rule.pattern is not None:
            assert rule.prefilter and rule.examples, f"{code}: a pattern rule needs a prefilter and examples"


def test_every_threshold_belongs_to_a_rule_and_every_rule_threshold_exists() -> None:
    used = {t for rule in RULES.values() for t in rule.thresholds}
    assert used == set(QualityThresholds.model_fields)


@pytest.mark.parametrize("code", [c for c, r in RULES.items() if r.pattern is not None])
def test_each_example_fires_its_pattern_and_passes_the_prefilter(code: str) -> None:
    rule = RULES[code]
    texts = pl.Series(list(rule.examples))
    assert texts.str.contains(rule.pattern).all(), f"{code}: an example its pattern misses"
    assert texts.str.contains(rule.prefilter).all(), f"{code}: an example its prefilter misses"
    assert texts.str.contains(PREFILTER).all()


def test_the_prefilter_lets_through_every_text_a_pattern_matches(warehouse, demo) -> None:
    """On every collected demo text plus the examples: a pattern hit implies a prefilter hit."""
    from tests.helpers import collect_all

    collect_all(warehouse, demo)
    texts = [t for (t,) in warehouse.query("SELECT question FROM entries WHERE question IS NOT NULL")]
    texts += [e for r in RULES.values() for e in r.examples]
    series = pl.Series(texts)
    passes = series.str.contains(PREFILTER)
    for code, rule in RULES.items():
        if rule.pattern is not None:
            assert not (series.str.contains(rule.pattern) & ~passes).any(), code


def test_the_prefilter_is_no_longer_blind_to_a_refusal_without_sorry() -> None:
    """The hand-kept prefilter had no word of 'There is no text provided.': the rule never saw it."""
    frame = pl.DataFrame({"_all": ["There is no text provided."]})
    hits = evaluate_module.text_pattern_hits(frame)
    assert hits["_hit_translation_artifact"].to_list() == [True]


def test_the_rules_hash_follows_the_rules_not_a_version_number(monkeypatch) -> None:
    before = rules_hash()
    assert rules_hash() == before
    changed = dict(RULES)
    t = changed["too_long"]
    changed["too_long"] = replace(t, hit=lambda c: pl.col("main_chars") > c.per_language(c.t.max_chars) + 1)
    monkeypatch.setattr(rules_module, "RULES", changed)
    monkeypatch.setattr(evaluate_module, "RULES", changed)
    assert rules_hash() != before
    monkeypatch.setattr(evaluate_module, "RULES", {**changed, "too_long": replace(t, action="flag")})
    assert rules_hash() != before


def test_the_rules_hash_is_the_same_in_another_process() -> None:
    code = "from globmed_data.quality.evaluate import rules_hash; print(rules_hash())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == rules_hash()


def test_the_docs_table_is_generated_from_the_registry() -> None:
    doc = (ROOT / "docs" / "quality.md").read_text(encoding="utf-8")
    assert render_docs(doc) == doc, "run: python -m globmed_data.quality.docs --write"
