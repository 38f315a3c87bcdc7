"""The Prefect flow and the CLI, against one Prefect test server shared by the session."""

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from globmed_data.cli import app
from globmed_data.warehouse import Warehouse
from tests.helpers import DEMO_CONFIG, DEMO_SOURCES, ROOT

runner = CliRunner()


def demo_copy(tmp_path: Path) -> Path:
    """The demo config and data in a private folder, so tests can break a source."""
    shutil.copytree(ROOT / "data" / "demo", tmp_path / "data" / "demo")
    (tmp_path / "configs").mkdir()
    shutil.copy(DEMO_CONFIG, tmp_path / "configs" / "demo.yaml")
    return tmp_path / "configs" / "demo.yaml"


@pytest.fixture
def flow_result(prefect_api, tmp_path: Path):
    from flows.pipeline import pipeline_flow

    wh = tmp_path / "wh.duckdb"
    return pipeline_flow(config_path=str(DEMO_CONFIG), warehouse=str(wh)), wh


def _flow_run_name(flow_run_id: str) -> str:
    from prefect.client.orchestration import get_client

    async def read() -> str:
        async with get_client() as client:
            return (await client.read_flow_run(flow_run_id)).name

    return asyncio.run(read())


def test_flow_runs_all_sources_and_records_lineage(flow_result) -> None:
    result, wh_path = flow_result
    assert result["status"] == "succeeded"
    assert sorted(r["source"] for r in result["sources"]) == list(DEMO_SOURCES)
    assert _flow_run_name(result["flow_run_id"]).startswith("demo ")  # named after the config
    with Warehouse(wh_path, read_only=True) as wh:
        run = wh.query_dicts("SELECT * FROM v_runs")[0]
        assert run["status"] == "succeeded" and run["flow_run_id"] == result["flow_run_id"]
        assert json.loads(run["counts"])["collect"]["demo_dosing"]["added"] == 203
        stages = wh.query("SELECT stage, count(*) FROM run_stages GROUP BY 1 ORDER BY 1")
        assert stages == [("collect", 6), ("dedup", 1), ("export", 1), ("langid", 1), ("quality", 1)]
        assert result["stages"]["export"]["version"] == "1.0.0"
        assert result["stages"]["export"]["status"] == "published"
        assert result["stages"]["dedup"]["contaminated"] == 22  # dosing (train) items mirrored in test
        assert result["stages"]["quality"]["totals"] == {"entries": 315, "passed": 310, "rejected": 5}


def test_flow_leaves_count_artifacts(flow_result) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=["globmed-collect", "globmed-entry-counts", "globmed-quality"])
                )
            )

    artifacts = asyncio.run(read())
    by_key = {a.key: a for a in artifacts}
    assert {"globmed-collect", "globmed-entry-counts", "globmed-quality"} <= set(by_key)
    quality = by_key["globmed-quality"].data
    assert "# Quality report" in quality and "| missing_image | content | reject | 1 |" in quality
    table = by_key["globmed-entry-counts"].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert {"source", "language", "task", "stage", "entries"} <= set(rows[0])
    assert sum(r["entries"] for r in rows) == 315


def test_cli_run_status_and_quarantine(prefect_api, tmp_path: Path) -> None:
    wh = str(tmp_path / "cli.duckdb")
    result = runner.invoke(app, ["run", "--config", str(DEMO_CONFIG), "--warehouse", wh])
    assert result.exit_code == 0, result.output
    assert "demo_dosing" in result.output

    status = runner.invoke(app, ["status", "--warehouse", wh, "--json"])
    data = json.loads(status.stdout)
    assert data["entries"] == 315
    assert data["by_task"] == {"mcqa": 249, "nli": 20, "open_qa": 16, "yes_no": 30}
    assert data["by_language"]["sw"] == 40 and data["by_source"]["demo_fever"] == 20
    assert data["langid"] == {"agree": 314, "flag": 1}
    assert data["quality"]["rejected"] == 5 and data["quality"]["rejected_by_reason"]["markup"] == 1
    assert data["quarantined"] == 12 and data["quarantine_by_reason"]["invalid_label"] == 2
    assert data["last_run"]["status"] == "succeeded"
    assert {s["source"] for s in data["last_run"]["stages"]} >= {"demo_dosing"}

    q = runner.invoke(app, ["quarantine", "--warehouse", wh, "--reason", "invalid_label", "--json"])
    rows = json.loads(q.stdout)
    assert {r["source"] for r in rows} == {"demo_heart_rate", "demo_fever"}
    assert all(r["reason"] == "invalid_label" and r["detail"] for r in rows)
    table = runner.invoke(app, ["quarantine", "--warehouse", wh, "--source", "demo_dosing"])
    assert "malformed_json" in table.stdout and "bad_encoding" in table.stdout
    cut = runner.invoke(app, ["quarantine", "--warehouse", wh, "--limit", "3", "--json"])
    assert len(json.loads(cut.stdout)) == 3 and "showing 3 of 12 quarantined records" in cut.stderr
    assert "3 of 12 quarantined record(s)" in runner.invoke(app, ["quarantine", "-w", wh, "-n", "3"]).stdout

    report = runner.invoke(app, ["quality", "report", "--warehouse", wh, "--json"])
    assert report.exit_code == 0 and json.loads(report.stdout)["rejected"] == 5
    show = runner.invoke(app, ["quality", "show", "--warehouse", wh, "--reason", "missing_image"])
    assert "As shown in the figure" in show.stdout and "1 entry" in show.stdout
    bad = runner.invoke(app, ["quality", "show", "--warehouse", wh, "--reason", "nope"])
    assert bad.exit_code == 2 and "unknown rule" in bad.output

    # A second run over unchanged data does no collect work.
    again = runner.invoke(app, ["run", "--config", str(DEMO_CONFIG), "--warehouse", wh])
    assert again.exit_code == 0 and again.output.count("skipped") == 6


def test_cli_partial_failure_exit_code(prefect_api, tmp_path: Path) -> None:
    config = demo_copy(tmp_path)
    (tmp_path / "data" / "demo" / "fever_nli.parquet").unlink()
    result = runner.invoke(app, ["run", "--config", str(config), "--warehouse", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 3
    assert "file not found" in result.output and "demo_fever" in result.output


def test_cli_refuses_invalid_config_before_any_work(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"sources": [{"name": "x", "paths": "a.jsonl", "preset": "nope"}]}))
    wh = tmp_path / "never.duckdb"
    result = runner.invoke(app, ["run", "--config", str(bad), "--warehouse", str(wh)])
    assert result.exit_code == 2
    assert "invalid configuration" in result.output and "unknown preset 'nope'" in result.output
    assert not wh.exists()
    check = runner.invoke(app, ["config", "validate", str(DEMO_CONFIG)])
    assert check.exit_code == 0 and "valid" in check.stdout


def test_status_without_warehouse_says_what_to_do(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status", "--warehouse", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 2 and "no warehouse" in result.output


def test_flow_publishes_a_version_with_card_artifact_and_event(flow_result) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    result, _ = flow_result
    exported = result["stages"]["export"]

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["globmed-dataset-card"]))
            )

    cards = [a for a in asyncio.run(read()) if str(a.flow_run_id) == result["flow_run_id"]]
    assert cards and "# globmed-data demo" in cards[0].data and exported["fingerprint"] in cards[0].data

    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()
    wanted = EventFilter(
        event=EventNameFilter(name=["globmed.dataset.published"]),
        resource=EventResourceFilter(id=["globmed.dataset.globmed/demo"]),
    )
    deadline = time.time() + 30
    while True:  # the server stores events asynchronously
        with get_client(sync_client=True) as client:
            recorded = client.read_events(filter=wanted, limit=50).events  # the server allows 50
        events = [e for e in recorded if str(e.id) == exported["event"]]
        if events or time.time() > deadline:
            break
        time.sleep(0.5)
    assert events, "globmed.dataset.published was not recorded by the Prefect API"
    event = events[0]
    assert event.resource["globmed.version"] == "1.0.0" and event.resource["globmed.tag"] == "v1.0.0"
    assert event.payload["fingerprint"] == exported["fingerprint"] and event.payload["entries"] == 288
    assert "local" in event.payload["targets"]
