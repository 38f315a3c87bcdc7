"""infra/prefect.yaml names flows that exist, with parameters (fixed and from triggers) that
those flows take: a typo there would only show when a deployment first runs."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_every_deployment_names_a_flow_and_only_its_parameters() -> None:
    spec = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text())
    for deployment in spec["deployments"]:
        path, _, name = deployment["entrypoint"].partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flow = getattr(module, name)
        accepted = set(inspect.signature(flow.fn).parameters)
        given = set(deployment.get("parameters", {}))
        for trigger in deployment.get("triggers", []):
            given |= set(trigger.get("parameters", {}))
        assert given <= accepted, (deployment["name"], sorted(given - accepted))
        required = {
            p.name
            for p in inspect.signature(flow.fn).parameters.values()
            if p.default is inspect.Parameter.empty
        }
        assert required <= given, (deployment["name"], sorted(required - given))
