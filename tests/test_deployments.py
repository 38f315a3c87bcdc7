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


def test_every_flow_parameter_is_described_in_the_ui() -> None:
    from prefect.utilities.callables import parameter_schema

    spec = yaml.safe_load((ROOT / "infra" / "prefect.yaml").read_text())
    for deployment in spec["deployments"]:
        path, _, name = deployment["entrypoint"].partition(":")
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)
        properties = parameter_schema(flow.fn).model_dump()["properties"]
        undescribed = sorted(p for p, s in properties.items() if not s.get("description"))
        assert not undescribed, (deployment["name"], undescribed)


def test_the_deploy_check_passes_the_shipped_file_and_names_what_to_fix(tmp_path: Path) -> None:
    from globmed_data.ops.deploy_check import problems

    shipped = ROOT / "infra" / "prefect.yaml"
    assert problems(shipped, str(ROOT), {"cpu-pool", "gpu-pool"}) == []
    assert "GLOBMED_HOME is not set" in problems(shipped, None, None)[0]
    assert "not the globmed-data project folder" in problems(shipped, str(tmp_path), None)[0]
    pools = problems(shipped, str(ROOT), {"cpu-pool"})
    assert pools == ["train-on-published-gpu: work pool 'gpu-pool' does not exist: "
                     "`prefect work-pool create gpu-pool --type process`"]  # fmt: skip
    spec = yaml.safe_load(shipped.read_text())
    bench = next(d for d in spec["deployments"] if d["name"] == "bench-on-published")
    bench["triggers"][0]["match"]["prefect.resource.id"] = "globmed.dataset.globmed/globmed-data"
    bench["parameters"]["config_path"] = "configs/missing.yaml"
    train = next(d for d in spec["deployments"] if d["name"] == "train-on-published")
    train["triggers"][0]["match"]["prefect.resource.id"] = "globmed.dataset.globmed/globmed-data"
    broken = tmp_path / "prefect.yaml"
    broken.write_text(yaml.safe_dump(spec))
    found = problems(broken, str(ROOT), None)
    assert "bench-on-published: config configs/missing.yaml not found under" in found[0]
    assert found[1].startswith(
        "train-on-published: its trigger matches 'globmed.dataset.globmed/globmed-data', but"
    )
    assert "publishes 'globmed.dataset.globmed/shared-real': it would never fire" in found[1]
