"""Names the flows give their runs and artifacts: what they do, to which dataset, when."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from prefect.runtime import flow_run


def _short_id() -> str:
    """The flow run id's first characters: two runs started in one second still differ."""
    run_id = flow_run.get_id()
    if run_id:
        return str(run_id)[:6]
    import uuid

    return uuid.uuid4().hex[:6]


def unique_run_name(*parts: str) -> str:
    return " ".join([*parts, f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}", _short_id()])


def dataset_run_name(kind: str) -> Callable[[], str]:
    """A flow_run_name callable: '<kind> <the dataset parameter's last part> <UTC time> <id>'."""

    def name() -> str:
        dataset = str(flow_run.parameters.get("dataset", kind)).rstrip("/").split("/")[-1]
        return unique_run_name(kind, dataset)

    return name


def slug(text: str) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", text.lower())).strip("-")


def artifact_key(dataset: str, *what: str) -> str:
    """'globmed-shared-real-funnel' for the dataset globmed/shared-real: one key per dataset, so
    datasets never overwrite each other's artifacts."""
    key = slug("-".join([dataset, *what]))
    return (key if key.startswith("globmed-") else f"globmed-{key}")[:120]
