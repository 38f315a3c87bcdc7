"""The pipeline run's artifacts in the Prefect UI, keyed per dataset (flows/naming.py): the
collect table, the entry funnel per source and language, quality, duplicates, and the dataset
card when the run made a new version."""

from __future__ import annotations

from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.naming import artifact_key
from globmed_data.config import LoadedConfig
from globmed_data.export.stage import card_text
from globmed_data.export.versions import get_version
from globmed_data.quality.report import quality_report, render_markdown
from globmed_data.summary import funnel, run_table
from globmed_data.warehouse import Warehouse


def without_front_matter(card: str) -> str:
    """The Hub's YAML header renders as a wall of bold lines in the UI: drop it."""
    if card.startswith("---\n"):
        end = card.find("\n---\n", 4)
        if end >= 0:
            return card[end + 5 :].lstrip("\n")
    return card


def publish_artifacts(
    wh: Warehouse,
    loaded: LoadedConfig,
    run_id: str,
    status: str,
    reports: list[dict[str, Any]],
    stages: dict[str, Any],
) -> None:
    repo = loaded.config.export.repo_id
    create_table_artifact(
        key=artifact_key(repo, "collect"),
        table=run_table(reports),
        description=f"Collect stage per source, run {run_id} ({status})",
    )
    rows = funnel(wh, repo)
    if rows:
        create_table_artifact(
            key=artifact_key(repo, "funnel"),
            table=rows,
            description="Active entries per source and language through each stage: collected → language "
            "kept → quality passed → kept by dedup → exported (newest version)",
        )
    if loaded.config.quality.enabled:
        create_markdown_artifact(
            key=artifact_key(repo, "quality"),
            markdown=render_markdown(quality_report(wh)),
            description="Quality pass rates per source, language, task and rule",
        )
    duplicates = wh.query_dicts(
        "SELECT source, kept_source, language, method, duplicates FROM v_duplicate_pairs ORDER BY ALL"
    )
    if duplicates:
        create_table_artifact(
            key=artifact_key(repo, "duplicates"),
            table=[{**r, "duplicates": int(r["duplicates"])} for r in duplicates],
            description="Duplicates excluded, per (source, source of the kept entry, language, method)",
        )
    exported = stages.get("export", {})
    if exported.get("created"):  # only a new version has a new card
        card = card_text(get_version(wh, repo, exported["version"]))
        create_markdown_artifact(
            key=artifact_key(repo, "card"),
            markdown=without_front_matter(card),
            description=f"Dataset card of {repo} v{exported['version']}",
        )
