"""Small dataset versions for the benchmark tests, written by the export's own writer (so they
verify like any published version): MCQA in a high- and a low-resource language with known gold
letters, a multi-answer item, yes/no, NLI and open QA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from globmed_data.export.layout import write_version_folder
from globmed_data.export.snapshot import (
    EXPORT_SCHEMA_VERSION,
    TASK_COLUMNS,
    Snapshot,
    arrow_schema,
    fingerprint,
    row_hash,
)

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
    rows: dict[tuple[str, str], list[dict[str, Any]]],
    split: str = "test",
    repo_id: str = "test/bench",
    version: str = "1.0.0",
) -> Path:
    """rows: (task, language) -> rows. Every row goes to `split` (train rows too, with split='train')."""
    tables, tasks, index = {}, {}, []
    for (task, language), items in sorted(rows.items()):
        full = [
            {c: r.get(c) for c in TASK_COLUMNS[task]} | {"origin": "native", "license": "CC0-1.0"}
            for r in sorted(items, key=lambda r: r["entry_id"])
        ]
        table = pl.DataFrame(full).to_arrow().cast(arrow_schema(task)) if full else None
        tables[(task, language, split)] = table
        tasks[task] = task
        index += [(r["entry_id"], task, split, row_hash(list(r.values()))) for r in table.to_pylist()]
    snapshot = Snapshot(
        tables=tables,
        tasks=tasks,
        index=pl.DataFrame({"entry_id": [i[0] for i in index]}),
        new_splits=pl.DataFrame(),
        fingerprint=fingerprint(EXPORT_SCHEMA_VERSION, sorted(index)),
        schema_version=EXPORT_SCHEMA_VERSION,
    )
    write_version_folder(
        snapshot,
        folder,
        repo_id=repo_id,
        version=version,
        render_card=lambda _f: "# test\n",
        max_shard_mb=64,
        row_group_rows=1000,
        zstd_level=3,
    )
    return folder
