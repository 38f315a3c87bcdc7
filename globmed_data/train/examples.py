"""Training examples from a dataset version: the train split only, rendered as chat prompt and
completion through the benchmark's own prompt module (bench/prompts.py), so a model is trained on
exactly the format its generative benchmark asks in.

    prompt      the benchmark's prompt for the item (instruction, question, lettered options,
                "Answer:"), as the user turn
    completion  the answer letter(s) ("B", "A, C"), yes/no/maybe and NLI as their letters, or
                open QA's reference answer; with `rationale: true`, the rationale on the next line
                (the benchmark's parser reads the letters on the first line only)

No entry of the validation or test splits, and no entry linked to one, reaches training: see
leakage.py. Languages are then mixed as the recipe says.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from globmed_data.bench.dataset import DatasetVersion, Shard
from globmed_data.bench.prompts import LETTERS, render, task_of
from globmed_data.train.leakage import HeldOut, assert_no_leak
from globmed_data.train.recipe import MixingRecipe, Recipe


@dataclass(frozen=True)
class Example:
    entry_id: str
    config: str
    task: str
    language: str
    prompt: str
    completion: str

    def as_chat(self) -> dict[str, Any]:
        """TRL's conversational prompt-completion row: the loss covers the completion only."""
        return {
            "prompt": [{"role": "user", "content": self.prompt}],
            "completion": [{"role": "assistant", "content": self.completion}],
        }


@dataclass
class ExampleSet:
    examples: list[Example]
    available: dict[str, int]  # train entries per language before mixing
    mixed: dict[str, int]  # examples per language after mixing (and max_examples)
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> train entries left out


def completion_for(doc: dict[str, Any], *, rationale: bool = False) -> str:
    """What the model should answer: the gold letters (as the parser reads them) or the answer."""
    rendered = render(doc)
    text = rendered.reference if task_of(doc) == "open_qa" else ", ".join(LETTERS[i] for i in rendered.gold)
    if rationale and doc.get("rationale"):
        text += "\n" + str(doc["rationale"]).strip()
    return text


def build_examples(version: DatasetVersion, recipe: Recipe, held_out: HeldOut) -> ExampleSet:
    excluded: Counter[str] = Counter()
    by_language: dict[str, list[Example]] = defaultdict(list)
    for shard in _train_shards(version, recipe):
        for doc in pq.read_table(shard.path).to_pylist():
            reason = held_out.reason(doc["entry_id"])
            if reason:
                excluded[reason] += 1
                continue
            if task_of(doc) == "open_qa" and not doc.get("answer"):
                excluded["no_answer"] += 1
                continue
            prompt = render(doc, recipe.instruction).prompt
            completion = completion_for(doc, rationale=recipe.rationale)
            by_language[shard.language].append(
                Example(doc["entry_id"], shard.config, shard.task, shard.language, prompt, completion)
            )
    available = {lang: len(rows) for lang, rows in sorted(by_language.items())}
    examples = mix_languages(by_language, recipe.mixing, recipe.seed)
    if recipe.max_examples is not None:
        examples = examples[: recipe.max_examples]
    assert_no_leak((e.entry_id for e in examples), held_out)
    mixed = dict(sorted(Counter(e.language for e in examples).items()))
    return ExampleSet(examples, available, mixed, dict(excluded))


def _train_shards(version: DatasetVersion, recipe: Recipe) -> Iterable[Shard]:
    for shard in version.shards():
        if shard.split != "train":
            continue
        if recipe.tasks and shard.task not in recipe.tasks:
            continue
        if recipe.languages and shard.language not in recipe.languages:
            continue
        yield shard


def target_counts(available: dict[str, int], mixing: MixingRecipe) -> dict[str, int]:
    """Examples per language after mixing (see MixingRecipe)."""
    if mixing.strategy == "natural" or not available:
        return dict(available)
    if mixing.strategy == "weights":
        return {lang: round(n * mixing.weights.get(lang, 1.0)) for lang, n in available.items()}
    total = sum(available.values())
    powered = {lang: n ** (1.0 / mixing.temperature) for lang, n in available.items()}
    norm = sum(powered.values())
    return {lang: max(1, round(total * p / norm)) for lang, p in powered.items()}


def mix_languages(by_language: dict[str, list[Example]], mixing: MixingRecipe, seed: int) -> list[Example]:
    """Each language's examples repeated whole as often as its target allows, the rest a seeded
    sample; then one seeded shuffle of everything (so max_examples keeps the mix)."""
    rng = random.Random(seed)
    targets = target_counts({lang: len(rows) for lang, rows in by_language.items()}, mixing)
    out: list[Example] = []
    for lang in sorted(by_language):
        rows = sorted(by_language[lang], key=lambda e: (e.entry_id, e.config))
        whole, rest = divmod(targets[lang], len(rows))
        out += rows * whole + rng.sample(rows, rest)
    rng.shuffle(out)
    return out
