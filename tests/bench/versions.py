"""Small dataset versions for the benchmark tests, written by the export's own writer (so they
verify like any published version): MCQA in a high- and a low-resource language with known gold
letters, a multi-answer item, yes/no, NLI and open QA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from globmed_data.export.handmade import write_rows_version

OPTIONS = ["fever", "cough", "rash", "headache"]


def mcqa(language: str, golds: list[list[int]], rotate: int = 0) -> list[dict[str, Any]]:
    """One item per gold set; `rotate` shifts every option list (and its gold) by that many places."""
    rows = []
    for i, gold in enumerate(golds):
        options = [f"{o} {i}" for o in OPTIONS]
        shifted = options[rotate:] + options[:rotate]
        new_gold = sorted(shifted.index(options[g]) for g in gold)
        rows.append(
            {
                "entry_id": f"{language}-m{i:03d}",
                "source": "s",
                "language": language,
                "question": f"Which sign is {language} item {i} about?",
                "context": None,
                "options": shifted,
                "answer_indices": new_gold,
                "rationale": None,
            }
        )
    return rows


def yes_no(language: str, labels: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "entry_id": f"{language}-y{i:03d}",
            "source": "s",
            "language": language,
            "question": f"Is sign {i} normal?",
            "context": "Some context.",
            "label": label,
            "rationale": None,
        }
        for i, label in enumerate(labels)
    ]


def nli(language: str, labels: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "entry_id": f"{language}-n{i:03d}",
            "source": "s",
            "language": language,
            "premise": f"The patient has sign {i}.",
            "hypothesis": "The patient is ill.",
            "label": label,
        }
        for i, label in enumerate(labels)
    ]


def open_qa(language: str, answers: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "entry_id": f"{language}-o{i:03d}",
            "source": "s",
            "language": language,
            "question": f"What treats sign {i}?",
            "context": None,
            "answer": a,
            "rationale": None,
        }
        for i, a in enumerate(answers)
    ]


def write_version(
    folder: Path,
    rows: dict[tuple[str, ...], list[dict[str, Any]]],
    split: str = "test",
    repo_id: str = "test/bench",
    version: str = "1.0.0",
) -> Path:
    """rows: (task, language) or (task, language, split) -> rows; a key without a split puts its
    rows in `split`."""
    keyed = {(*key, split) if len(key) == 2 else key: items for key, items in rows.items()}
    return write_rows_version(folder, keyed, repo_id=repo_id, version=version, card="# test\n")
