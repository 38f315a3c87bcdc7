"""Run names of the flows that take a dataset version: what they do, to which version, when."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from prefect.runtime import flow_run


def dataset_run_name(kind: str) -> Callable[[], str]:
    """A flow_run_name callable: '<kind> <the dataset parameter's last part> <UTC time>'."""

    def name() -> str:
        dataset = str(flow_run.parameters.get("dataset", kind)).rstrip("/").split("/")[-1]
        return f"{kind} {dataset} {datetime.now(UTC):%Y-%m-%d %H:%M:%S}"

    return name
