"""The labelled-question task: a question and one label from a declared set (patient questions
labelled with their intent), from the mapping through quality, dedup and export to the prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from globmed_data.bench.prompts import render, task_of
from globmed_data.config import load_config, parse_config
from globmed_data.dedup.stage import run_dedup
from globmed_data.export.stage import run_export
from globmed_data.quality.stage import run_quality
from globmed_data.settings import ConfigError
from globmed_data.train.examples import completion_for
from tests.helpers import collect_all, write_config

INTENTS = ["diagnosis", "treatment", "prevention", "side effects"]
ROWS = [
    {
        "id": 1,
        "text": "My child has had a fever and a rash for three days, what could it be?",
        "intent": "Diagnosis",
    },
    {"id": 2, "text": "Which cream should I put on a mild burn from the oven?", "intent": "treatment"},
    {"id": 3, "text": "How can I avoid catching the flu this winter at the office?", "intent": "prevention"},
    {
        "id": 4,
        "text": "Can metformin cause stomach upset in the first weeks of taking it?",
        "intent": "side effects",
    },
    {"id": 5, "text": "Is it normal to feel dizzy after donating blood at the clinic?", "intent": "billing"},
    {"id": 6, "text": "Which cream should I put on a mild burn from the oven?", "intent": "prevention"},
]


def _source(**label: object) -> dict:
    return {
        "name": "intents",
        "paths": ["d/intents.jsonl"],
        "language": "en",
        "mapping": {"task": "classification", "key": "id", "question": "text",
                    "label": {"field": "intent", **label}},
    }  # fmt: skip


def _loaded(tmp_path: Path, **top: object):
    (tmp_path / "d").mkdir(exist_ok=True)
    (tmp_path / "d" / "intents.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    source = _source(labels=INTENTS)
    return load_config(write_config(tmp_path, [source], langid={"enabled": False}, **top))


def test_a_classification_source_needs_its_label_set_and_only_it_may_declare_one() -> None:
    with pytest.raises(ConfigError, match=r"needs its label set in `label.labels`"):
        parse_config({"version": 1, "sources": [_source()]})
    label = {"field": "intent", "labels": ["a", "b"]}
    yes_no = {**_source(), "mapping": {"task": "yes_no", "question": "text", "label": label}}
    with pytest.raises(ConfigError, match=r"`label.labels` is for task 'classification'"):
        parse_config({"version": 1, "sources": [yes_no]})


def test_labelled_questions_flow_from_the_mapping_to_the_export(tmp_path: Path, warehouse) -> None:
    loaded = _loaded(tmp_path, export={"local": {"root": str(tmp_path / "repos")}})
    report = collect_all(warehouse, loaded)["intents"]
    assert report.quarantined == 1  # "billing" is not a declared intent
    reasons = warehouse.query("SELECT reason FROM quarantine")
    assert reasons == [("invalid_label",)]
    rows = dict(warehouse.query("SELECT record_key, (label, options, answer_indices) FROM entries"))
    assert rows["1"] == ("diagnosis", INTENTS, [0])  # the raw "Diagnosis" matched case-insensitively
    assert rows["4"] == ("side effects", INTENTS, [3])

    assert run_quality(warehouse, loaded, "r1")["rejected"] == 0
    # Ids 2 and 6 ask the same question with two different intents: two items, not duplicates.
    assert run_dedup(warehouse, loaded, "r1")["duplicates"] == 0

    result = run_export(warehouse, loaded, "r1", publish=False, log=lambda _m: None)
    table = pq.read_table(Path(result["folder"]) / "data/classification/en/train-00000-of-00001.parquet")
    assert {"question", "options", "label"} <= set(
        table.column_names
    ) and "answer_indices" not in table.column_names
    doc = next(r for r in table.to_pylist() if r["label"] == "treatment")
    assert task_of(doc) == "classification"
    shown = render(doc)
    assert shown.options == INTENTS and shown.gold == [1]
    assert "A. diagnosis\nB. treatment\nC. prevention\nD. side effects\nAnswer:" in shown.prompt
    assert completion_for(doc).strip() == "B"
