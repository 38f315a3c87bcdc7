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


@pytest.fixture(scope="module")
def flow_result(prefect_api, tmp_path_factory):
    """One demo run, read by several tests."""
    from flows.pipeline import pipeline_flow

    wh = tmp_path_factory.mktemp("flow") / "wh.duckdb"
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


def _read_artifacts(keys: list[str], flow_run_id: str | None = None) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys))
            )

    found = asyncio.run(read())
    return [a for a in found if flow_run_id is None or str(a.flow_run_id) == flow_run_id]


def _task_runs(flow_run_id: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )

    return asyncio.run(read())


def test_flow_leaves_count_artifacts_keyed_per_dataset(flow_result) -> None:
    result, _ = flow_result
    keys = ["globmed-demo-collect", "globmed-demo-funnel", "globmed-demo-quality"]
    by_key = {a.key: a for a in _read_artifacts(keys, result["flow_run_id"])}
    assert set(keys) <= set(by_key)
    quality = by_key["globmed-demo-quality"].data
    assert "# Quality report" in quality and "| missing_image | content | reject | 1 |" in quality
    table = by_key["globmed-demo-funnel"].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert list(rows[0]) == [
        "source", "language", "collected", "language_kept", "quality_passed", "kept_by_dedup", "exported"
    ]  # fmt: skip
    total = {k: sum(r[k] for r in rows) for k in rows[0] if k not in ("source", "language")}
    # 315 collected, 5 rejected by quality, 22 contaminated train copies excluded: 288 exported.
    assert total == {"collected": 315, "language_kept": 315, "quality_passed": 310, "kept_by_dedup": 288,
                     "exported": 288}  # fmt: skip
    assert all(
        r["collected"] >= r["language_kept"] >= r["quality_passed"] >= r["kept_by_dedup"] for r in rows
    )


def test_flow_reports_progress_per_stage(flow_result) -> None:
    result, _ = flow_result
    keys = [f"globmed-demo-{s}-progress" for s in ("langid", "quality", "dedup", "collect")]
    progress = {a.key: a for a in _read_artifacts(keys, result["flow_run_id"])}
    assert set(keys) == set(progress)
    assert all(a.type == "progress" and float(a.data) == 100.0 for a in progress.values())
    assert progress["globmed-demo-collect-progress"].description == "collect: 6/6 sources done"
    # One artifact for the collect, none per source (each cost the server calls: docs/scaling-history.md).
    assert not _read_artifacts(["globmed-demo-collect-demo-dosing-progress"], result["flow_run_id"])


def test_map_progress_fills_one_share_per_unit(monkeypatch) -> None:
    from flows import progress as progress_module

    shown: list[tuple[float, str, bool]] = []
    monkeypatch.setattr(
        progress_module._Bar,
        "show",
        lambda self, percent, text, log, final: shown.append((percent, text, final)),
    )
    bar = progress_module.MapProgress("org/demo", "collect", ["a", "b"])
    bar.of("a")(50, 100)
    bar.finish("b")  # skipped: it reported nothing
    bar.of("a")(10, 100)  # a late, smaller report never moves the bar back
    bar.of("a")(100, 100)
    bar.finish("a")  # already full: no second final line
    assert shown == [
        (25.0, "collect: 0/2 sources done", False),
        (75.0, "collect: 1/2 sources done", False),
        (100.0, "collect: 2/2 sources done", True),
    ]


def test_flow_graph_follows_the_pipeline_order(flow_result) -> None:
    """Each stage's task waits for the step before it; collect tasks wait for nothing."""
    result, _ = flow_result
    runs = _task_runs(result["flow_run_id"])
    name_of = {str(r.id): r.name for r in runs}

    def parents(run) -> set[str]:
        return {
            name_of[str(i.id)] for inputs in run.task_inputs.values() for i in inputs if str(i.id) in name_of
        }

    graph = {r.name: parents(r) for r in runs}
    collects = {f"collect {s}" for s in DEMO_SOURCES}
    assert all(graph[c] == set() for c in collects)
    assert graph["langid"] == collects
    assert graph["quality"] == {"langid"} and graph["dedup"] == {"quality"} and graph["export"] == {"dedup"}


def test_card_artifact_only_for_a_new_version_without_front_matter(prefect_api, tmp_path: Path) -> None:
    from flows.pipeline import pipeline_flow

    wh = str(tmp_path / "card.duckdb")
    first = pipeline_flow(config_path=str(DEMO_CONFIG), warehouse=wh)
    again = pipeline_flow(config_path=str(DEMO_CONFIG), warehouse=wh)
    assert first["stages"]["export"]["created"] and not again["stages"]["export"]["created"]
    cards = _read_artifacts(["globmed-demo-card"], first["flow_run_id"])
    assert len(cards) == 1 and cards[0].data.startswith("# globmed-data demo")
    assert "---" not in cards[0].data.splitlines()[0]
    assert _read_artifacts(["globmed-demo-card"], again["flow_run_id"]) == []
    assert _flow_run_name(first["flow_run_id"]) != _flow_run_name(again["flow_run_id"])


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

    # A second run over unchanged data is answered before Prefect starts.
    again = runner.invoke(app, ["run", "--config", str(DEMO_CONFIG), "--warehouse", wh])
    assert again.exit_code == 0 and "nothing changed since run" in again.output
    assert "globmed/demo stays at v1.0.0" in " ".join(again.output.split())


def test_cli_no_change_check_lets_changes_through(prefect_api, tmp_path: Path) -> None:
    config = demo_copy(tmp_path)
    wh = str(tmp_path / "w.duckdb")
    assert runner.invoke(app, ["run", "-c", str(config), "-w", wh]).exit_code == 0
    assert "nothing changed" in runner.invoke(app, ["run", "-c", str(config), "-w", wh]).output
    with (tmp_path / "data" / "demo" / "bmi_open_qa.tsv").open("a", encoding="utf-8") as fh:
        fh.write("\n")  # same records, new bytes: the collect must look (and skip the file's records)
    touched = runner.invoke(app, ["run", "-c", str(config), "-w", wh])
    assert touched.exit_code == 0 and "nothing changed" not in touched.output and "demo_bmi" in touched.output
    assert "nothing changed" in runner.invoke(app, ["run", "-c", str(config), "-w", wh]).output
    (tmp_path / "data" / "demo" / "fever_nli.parquet").unlink()
    gone = runner.invoke(app, ["run", "-c", str(config), "-w", wh])
    assert gone.exit_code == 3 and "nothing changed" not in gone.output


def test_cli_partial_failure_exit_code(prefect_api, tmp_path: Path) -> None:
    config = demo_copy(tmp_path)
    (tmp_path / "data" / "demo" / "fever_nli.parquet").unlink()
    result = runner.invoke(app, ["run", "--config", str(config), "--warehouse", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 3
    assert "file not found" in result.output and "demo_fever" in result.output


def test_a_failed_source_fails_its_task_and_the_flow_run(prefect_api, tmp_path: Path) -> None:
    """Prefect shows the failure (no green run with a red source), and what succeeded is kept."""
    from flows.pipeline import RunFailed, pipeline_flow

    config = demo_copy(tmp_path)
    (tmp_path / "data" / "demo" / "fever_nli.parquet").unlink()
    state = pipeline_flow(config_path=str(config), warehouse=str(tmp_path / "w.duckdb"), return_state=True)
    assert state.is_failed()
    assert state.message.startswith(
        "Flow run encountered an exception: RunFailed: partial: source demo_fever:"
    )
    assert "file not found" in state.message and "5 of 6 sources collected" in state.message
    summary = state.result(raise_on_failure=False)
    assert isinstance(summary, RunFailed) and summary.summary["status"] == "partial"
    tasks = {r.name: r.state.type.value for r in _task_runs(summary.summary["flow_run_id"])}
    assert tasks["collect demo_fever"] == "FAILED" and tasks["collect demo_dosing"] == "COMPLETED"
    assert tasks["export"] == "COMPLETED"  # the other sources' data is curated and published
    with Warehouse(tmp_path / "w.duckdb", read_only=True) as wh:
        assert wh.query("SELECT count(*) FROM entries WHERE status = 'active'")[0][0] == 295


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
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    result, _ = flow_result
    exported = result["stages"]["export"]

    cards = _read_artifacts(["globmed-demo-card"], result["flow_run_id"])
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


def test_the_run_freezes_what_came_before_it_and_thaws_it_after() -> None:
    import gc

    from flows.pipeline import _collector_looks_at_the_run_only

    before = gc.get_freeze_count()
    with _collector_looks_at_the_run_only():
        assert gc.get_freeze_count() > before  # what existed is out of the collector's sight
    assert gc.get_freeze_count() == 0  # and back in it: a serving process collects it again
