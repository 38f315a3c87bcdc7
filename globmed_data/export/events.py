"""The Prefect event a published version emits, for downstream deployments to trigger on."""

from __future__ import annotations

from typing import Any

PUBLISHED = "globmed.dataset.published"


def dataset_resource_id(repo_id: str) -> str:
    return f"globmed.dataset.{repo_id}"


def emit_published(
    *, repo_id: str, version: str, fingerprint: str, entries: int, targets: dict[str, dict[str, Any]]
) -> Any:
    """Emit `globmed.dataset.published` (resource: the repo, labelled with the version); returns the
    event, or None when no Prefect API is configured to receive it."""
    from prefect.events import emit_event

    return emit_event(
        event=PUBLISHED,
        resource={
            "prefect.resource.id": dataset_resource_id(repo_id),
            "prefect.resource.name": repo_id,
            "globmed.version": version,
            "globmed.tag": f"v{version}",
        },
        related=[
            {
                "prefect.resource.id": f"globmed.dataset-version.{repo_id}@v{version}",
                "prefect.resource.role": "dataset-version",
            },
        ],
        payload={"fingerprint": fingerprint, "entries": entries, "targets": targets},
    )
