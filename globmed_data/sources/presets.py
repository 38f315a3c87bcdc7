"""Named field-mapping presets for layouts that many medical QA datasets share.

A source names a preset and may override any mapping key. Each preset documents the
record layout it expects; see docs/configuration.md for the full list.
"""

from __future__ import annotations

from typing import Any

YES_NO_VALUES = {"yes": "yes", "no": "no", "maybe": "maybe"}
NLI_VALUES = {"entailment": "entailment", "neutral": "neutral", "contradiction": "contradiction"}

PRESETS: dict[str, dict[str, Any]] = {
    # {problem_id, problem_text, choices: [..], answer: ["a"]}: medLLM_QA_benchmark, IgakuQA.
    "problem_choices": {
        "mapping": {
            "task": "mcqa",
            "key": ["problem_id"],
            "question": "problem_text",
            "options": {"style": "list", "field": "choices"},
            "answer": {"style": "letter", "field": ["answer", "asnwer"]},
            "metadata": {"points": "points", "text_only": "text_only"},
        }
    },
    # IgakuQA *_translate.jsonl: English machine translations of the Japanese questions.
    "problem_choices_en": {
        "mapping": {
            "task": "mcqa",
            "key": ["problem_id"],
            "question": "problem_text_en",
            "options": {"style": "list", "field": "choices_en"},
            "answer": {"style": "letter", "field": ["answer", "asnwer"]},
        }
    },
    # PubMedQA in the medLLM layout: choices ["yes", "no", "maybe"], answer ["a"], context.
    "pubmedqa_choices": {
        "mapping": {
            "task": "yes_no",
            "key": ["problem_id"],
            "question": "problem_text",
            "context": "context",
            "label": {"field": "answer", "choices_field": "choices", "values": YES_NO_VALUES},
        }
    },
    # {id, question, answers: {a..e}, correct_answers: [letters]}: FrenchMedMCQA.
    "letter_dict": {
        "mapping": {
            "task": "mcqa",
            "key": ["id"],
            "question": "question",
            "options": {"style": "letter_dict", "field": "answers"},
            "answer": {"style": "letter", "field": "correct_answers"},
            "metadata": {"subject": "subject_name", "type": "type"},
        }
    },
    # HEAD-QA: {exams: {NAME: {data: [{qid, qtext, ra, answers: [{aid, atext}], image}]}}}.
    "head_qa": {
        "record_path": "exams.*.data",
        "mapping": {
            "task": "mcqa",
            "key": ["_path", "qid"],
            "question": "qtext",
            "options": {"style": "objects", "field": "answers", "id_field": "aid", "text_field": "atext"},
            "answer": {"style": "id", "field": "ra"},
            "metadata": {"exam": "_path", "image": "image"},
        },
    },
    # {question, options: "(A) ..\n(B) ..", answer: "(C)", source}: Apollo XMedBench.
    "options_text": {
        "mapping": {
            "task": "mcqa",
            "question": "question",
            "context": "context",
            "options": {"style": "text", "field": "options"},
            "answer": {"style": "letter", "field": "answer"},
            "metadata": {"origin_benchmark": "source"},
        }
    },
    # {context, question, answer: "да"/"нет", pairID}: RuMedDaNet.
    "rumed_danet": {
        "mapping": {
            "task": "yes_no",
            "key": ["pairID"],
            "question": "question",
            "context": "context",
            "label": {"field": "answer", "values": {"да": "yes", "нет": "no", **YES_NO_VALUES}},
        }
    },
    # {ru_sentence1, ru_sentence2, gold_label, pairID}: RuMedNLI.
    "rumed_nli": {
        "mapping": {
            "task": "nli",
            "key": ["pairID"],
            "premise": "ru_sentence1",
            "hypothesis": "ru_sentence2",
            "label": {"field": "gold_label", "values": NLI_VALUES},
        }
    },
    # Generic NLI {premise, hypothesis, label}.
    "nli": {
        "mapping": {
            "task": "nli",
            "premise": "premise",
            "hypothesis": "hypothesis",
            "label": {"field": "label", "values": NLI_VALUES},
        }
    },
    # Generic open QA {question, answer}.
    "open_qa": {"mapping": {"task": "open_qa", "question": "question", "answer_text": "answer"}},
}
