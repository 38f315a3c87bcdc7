"""The dataset card: README.md with the Hub's YAML front matter, then statistics and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl
import yaml

from globmed_data.export.layout import ShardFile
from globmed_data.export.settings import ExportSettings
from globmed_data.export.snapshot import Snapshot

# Hub task categories and ids per task (https://huggingface.co/tasks).
_TASK_CATEGORIES = {
    "mcqa": (["question-answering", "multiple-choice"], ["multiple-choice-qa"]),
    "yes_no": (["question-answering"], ["closed-domain-qa"]),
    "nli": (["text-classification"], ["natural-language-inference"]),
    "open_qa": (["question-answering", "text-generation"], ["open-domain-qa"]),
    "classification": (["text-classification"], ["multi-class-classification"]),
}
_SIZES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
)


@dataclass
class CardInputs:
    repo_id: str
    version: str
    parent: str | None
    bump: str
    snapshot: Snapshot
    settings: ExportSettings
    low_resource: list[str]
    pipeline: dict[str, Any] = field(default_factory=dict)  # filter and dedup counts at export time
    changes: dict[str, Any] = field(default_factory=dict)  # against the parent version


def size_category(n: int) -> str:
    return next((label for bound, label in _SIZES if n < bound), "n>100M")


def card_license(inputs: CardInputs) -> str:
    if inputs.settings.card.license:
        return inputs.settings.card.license
    licenses = {(lic or "unknown").lower() for lic in inputs.snapshot.source_licenses.values()}
    return licenses.pop() if len(licenses) == 1 and "unknown" not in licenses else "other"


def front_matter(inputs: CardInputs, files: list[ShardFile]) -> dict[str, Any]:
    snap = inputs.snapshot
    tasks = sorted(set(snap.tasks.values()))
    configs = []
    for i, config in enumerate(snap.tasks):
        splits = sorted({f.split for f in files if f.config == config}, key=_split_order)
        entry: dict[str, Any] = {
            "config_name": config,
            "data_files": [{"split": s, "path": f"data/{config}/*/{s}-*.parquet"} for s in splits],
        }
        if i == 0:
            entry["default"] = True
        configs.append(entry)
    return {
        "pretty_name": inputs.settings.card.pretty_name or inputs.repo_id.split("/")[-1],
        "license": card_license(inputs),
        "language": sorted(snap.index["language"].unique().to_list()),
        "multilinguality": "multilingual" if snap.index["language"].n_unique() > 1 else "monolingual",
        "task_categories": sorted({c for t in tasks for c in _TASK_CATEGORIES[t][0]}),
        "task_ids": sorted({i for t in tasks for i in _TASK_CATEGORIES[t][1]}),
        "size_categories": [size_category(snap.entries)],
        "tags": ["medical", "multilingual", "globmed-data"],
        "configs": configs,
    }


def _split_order(split: str) -> tuple[int, str]:
    order = {"train": 0, "validation": 1, "test": 2}
    return order.get(split, 3), split


def _table(frame: pl.DataFrame) -> list[str]:
    cols = frame.columns
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in frame.iter_rows():
        lines.append(
            "| "
            + " | ".join("" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in row)
            + " |"
        )
    return lines


def _counts(index: pl.DataFrame, by: str, total: int) -> pl.DataFrame:
    return (
        index.group_by(by)
        .len("entries")
        .sort(by)
        .with_columns(share=(pl.col("entries") / total * 100).round(1).cast(pl.String) + "%")
    )


def render_card(inputs: CardInputs, files: list[ShardFile]) -> str:
    snap, s = inputs.snapshot, inputs.settings
    meta = yaml.safe_dump(front_matter(inputs, files), sort_keys=False, allow_unicode=True, width=1000)
    total = max(snap.entries, 1)
    title = s.card.pretty_name or inputs.repo_id.split("/")[-1]
    first = next(iter(snap.tasks), "mcqa")
    out = [f"---\n{meta}---", "", f"# {title}", ""]
    if s.card.description:
        out += [s.card.description.strip(), ""]
    out += [
        f"Version **v{inputs.version}** of `{inputs.repo_id}`, built by globmed-data: medical items "
        "collected from the sources below, language-checked, quality-filtered, deduplicated and "
        "decontaminated against the test splits.",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("{inputs.repo_id}", "{first}", revision="v{inputs.version}")',
        "```",
        "",
        "| version | parent | change | entries | files | schema | fingerprint |",
        "|---|---|---|---|---|---|---|",
        f"| v{inputs.version} | {('v' + inputs.parent) if inputs.parent else '-'} | {inputs.bump} | "
        f"{snap.entries:,} | {len(files)} | {snap.schema_version} | `{snap.fingerprint}` |",
        "",
        "The fingerprint is a SHA-256 over the schema version and every row's (entry id, config, split,",
        "row hash); `globmed pull` recomputes it from the downloaded files.",
        "",
        "## Configs",
        "",
    ]
    config_rows = (
        snap.index.group_by("config", "split")
        .len("entries")
        .pivot(on="split", index="config", values="entries")
        .sort("config")
        .fill_null(0)
    )
    split_cols = sorted([c for c in config_rows.columns if c != "config"], key=_split_order)
    out += _table(
        config_rows.select("config", *split_cols).with_columns(
            pl.Series("task", [snap.tasks[c] for c in config_rows["config"]])
        )
    )
    low = set(inputs.low_resource)
    languages = _counts(snap.index, "language", total).with_columns(
        low_resource=pl.when(pl.col("language").is_in(low)).then(pl.lit("yes")).otherwise(pl.lit(""))
    )
    low_share = snap.index.filter(pl.col("language").is_in(low)).height / total * 100
    out += [
        "",
        "## Languages",
        "",
        f"Low-resource languages ({', '.join(sorted(low)) or 'none configured'}): "
        f"{low_share:.1f}% of entries.",
        "",
    ]
    out += _table(languages)
    out += ["", "## Splits", "", *_table(_counts(snap.index, "split", total))]
    out += ["", "## Sources", ""]
    sources = (
        snap.index.group_by("source")
        .agg(
            pl.len().alias("entries"),
            pl.col("task").first(),
            pl.col("language").unique().sort().str.join(", "),
        )
        .sort("source")
    )
    out += _table(
        sources.with_columns(
            license=pl.col("source").replace_strict(
                snap.source_licenses, default=None, return_dtype=pl.String
            )
        )
    )
    out += ["", "## Translation provenance", ""]
    out += _provenance(inputs)
    out += ["", "## Filters and deduplication", ""]
    out += _pipeline_lines(inputs.pipeline)
    out += ["", "## Changes", ""]
    out += _change_lines(inputs)
    out += ["", "## Citation", ""]
    out += _citation(inputs)
    return "\n".join(out).rstrip() + "\n"


def _provenance(inputs: CardInputs) -> list[str]:
    origin = inputs.pipeline.get("origin", [])
    if not origin:
        return ["Every entry is native (none is a machine translation)."]
    lines = [
        "Entries by origin, language and the language of the entry they were translated from "
        "(`parent_entry_id`):",
        "",
    ]
    return lines + _table(pl.DataFrame(origin))


def _pipeline_lines(p: dict[str, Any]) -> list[str]:
    lines = [
        f"- Records quarantined at collection (malformed, with a reason): {p.get('quarantined', 0):,}",
        f"- Entries rejected by language ID: {p.get('langid_rejected', 0):,} "
        f"(flagged, kept: {p.get('langid_flagged', 0):,}; relabelled: {p.get('langid_relabelled', 0):,})",
        f"- Entries rejected by quality rules: {p.get('quality_rejected', 0):,}",
        f"- Duplicates removed: {p.get('duplicates_exact', 0):,} exact, {p.get('duplicates_near', 0):,} near",
        f"- Training entries removed as test-set contamination: {p.get('contaminated', 0):,}",
    ]
    reasons = p.get("quality_reasons") or []
    if reasons:
        lines += ["", "Quality rejections by reason:", "", *_table(pl.DataFrame(reasons))]
    return lines


def _change_lines(inputs: CardInputs) -> list[str]:
    if inputs.parent is None:
        return ["First version."]
    c = inputs.changes
    lines = [
        f"Against v{inputs.parent}: {c.get('added', 0):,} added, {c.get('removed', 0):,} removed, "
        f"{c.get('changed', 0):,} changed.",
    ]
    groups = c.get("by_group") or []
    if groups:
        lines += ["", *_table(pl.DataFrame(groups))]
    return lines


def _citation(inputs: CardInputs) -> list[str]:
    cite = inputs.settings.card.citation.strip()
    key = inputs.repo_id.replace("/", "_").replace("-", "_").replace(".", "_")
    default = (
        f"@misc{{{key}_v{inputs.version.replace('.', '_')},\n"
        f"  title        = {{{inputs.settings.card.pretty_name or inputs.repo_id}}},\n"
        f"  howpublished = {{\\url{{https://huggingface.co/datasets/{inputs.repo_id}}}}},\n"
        f"  note         = {{Version v{inputs.version}, fingerprint {inputs.snapshot.fingerprint[:16]}}}\n"
        "}"
    )
    return [
        "```bibtex",
        cite or default,
        "```",
        "",
        "Please also cite the sources listed above; their licenses apply to their entries.",
    ]
