"""The harness tasks of a benchmark: one YAML per (config, language, split) of the version,
reading its Parquet shards (`dataset_path: parquet`), written into a folder that a TaskManager
then indexes. The YAML names the hooks in bench/hooks.py; nothing else is ours.

Loglik mode: `multiple_choice` over the option letters (continuations " A", " B", ...).
Generate mode: `generate_until` with the reply parsed by prompts.parse_letters.
Open QA has no choices: it is scored in generate mode only (skipped, and said, in loglik mode).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from globmed_data.bench.dataset import DatasetVersion, Shard
from globmed_data.bench.prompts import PROMPT_VERSION
from globmed_data.bench.settings import BenchSettings

HOOKS = "globmed_data.bench.hooks"


@dataclass(frozen=True)
class HarnessTask:
    name: str
    config: str
    task: str
    language: str
    split: str
    rows: int


@dataclass(frozen=True)
class Selection:
    tasks: list[str]
    languages: list[str]
    splits: list[str]


def select(version: DatasetVersion, selection: Selection) -> dict[tuple[str, str, str, str], list[Shard]]:
    """The version's shards grouped by (config, task, language, split), filtered."""
    groups: dict[tuple[str, str, str, str], list[Shard]] = defaultdict(list)
    for s in version.shards():
        if selection.tasks and s.task not in selection.tasks:
            continue
        if selection.languages and s.language not in selection.languages:
            continue
        if s.split not in selection.splits:
            continue
        groups[(s.config, s.task, s.language, s.split)].append(s)
    return dict(sorted(groups.items()))


def task_name(config: str, language: str, split: str) -> str:
    return "globmed__" + "__".join(re.sub(r"[^A-Za-z0-9_-]", "_", p) for p in (config, language, split))


def write_tasks(
    version: DatasetVersion, selection: Selection, mode: str, settings: BenchSettings, folder: Path
) -> tuple[list[HarnessTask], list[str]]:
    """Write the YAML files; returns the tasks and what was skipped (with why)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    tasks: list[HarnessTask] = []
    skipped: list[str] = []
    for (config, task, language, split), shards in select(version, selection).items():
        if task == "open_qa" and mode == "loglik":
            skipped.append(f"{config}/{language}/{split}: open QA is scored in generate mode only")
            continue
        name = task_name(config, language, split)
        spec = task_yaml(name, task, split, [s.path for s in shards], mode, settings, folder / "hf-cache")
        (folder / f"{name}.yaml").write_text(dump_yaml(spec), encoding="utf-8")
        tasks.append(HarnessTask(name, config, task, language, split, sum(s.rows for s in shards)))
    return tasks, skipped


def task_yaml(
    name: str, task: str, split: str, files: list[Path], mode: str, settings: BenchSettings, cache: Path
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "task": name,
        "dataset_path": "parquet",
        "dataset_kwargs": {"data_files": {split: [str(f) for f in files]}, "cache_dir": str(cache)},
        "test_split": split,
        "process_docs": Function(f"{HOOKS}.process_docs_{settings.instruction}"),
        "doc_to_text": "prompt",
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "invalid", "aggregation": "mean", "higher_is_better": False},
        ],
        "metadata": {"version": PROMPT_VERSION},
    }
    if mode == "loglik":
        spec |= {
            "output_type": "multiple_choice",
            "doc_to_choice": "choices",
            "doc_to_target": "gold",
            "process_results": Function(f"{HOOKS}.results_loglik"),
        }
    else:
        tokens = settings.max_gen_tokens_open_qa if task == "open_qa" else settings.max_gen_tokens
        spec |= {
            "output_type": "generate_until",
            "doc_to_target": "reference",
            "generation_kwargs": {"until": ["\n\n"], "max_gen_toks": tokens, "do_sample": False},
            "process_results": Function(
                f"{HOOKS}.results_open_qa" if task == "open_qa" else f"{HOOKS}.results_generate"
            ),
        }
    return spec


class Function(str):
    """A `!function` reference in the YAML (the harness's tag for a Python callable)."""


def _represent_function(dumper: yaml.SafeDumper, value: Function) -> yaml.Node:
    return dumper.represent_scalar("!function", str(value))


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Function, _represent_function)


def dump_yaml(spec: dict[str, Any]) -> str:
    return yaml.dump(spec, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
