"""The stage interface: every stage is a Stage, the registry orders them, the flow, the CLI and
the fail-closed contract use them alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from globmed_data.cli import app
from globmed_data.config import parse_config
from globmed_data.pipeline import runner as stage_runner
from globmed_data.pipeline.curation import CURATION, pending_work, record_stage_settings, undecided
from globmed_data.pipeline.registry import STAGES, plan, stage
from globmed_data.pipeline.runner import run_deciding_stages
from globmed_data.pipeline.stage import Context, MapStage, Stage
from tests.helpers import DEMO_CONFIG, collect_all

runner = CliRunner()


def test_every_registered_stage_is_a_stage_with_real_tables(warehouse) -> None:
    names = [s.name for s in STAGES]
    assert names == ["collect", "langid", "quality", "translate", "dedup", "export"]
    relations = {r[0] for r in warehouse.query("SELECT table_name FROM information_schema.tables")}
    for s in STAGES:
        assert isinstance(s, Stage), s.name
        assert set(s.reads) | set(s.writes) <= relations, s.name
    assert [s.name for s in CURATION] == [n for n in names if stage(n).decides_entries]
    assert [s.name for s in STAGES if isinstance(s, MapStage)] == ["collect"]


def test_the_plan_follows_the_config(demo) -> None:
    assert [s.name for s in plan(demo.config)] == ["collect", "langid", "quality", "dedup", "export"]
    data = demo.config.model_dump(mode="json")
    data["quality"]["enabled"] = False
    data["translate"] = {
        "enabled": True,
        "backends": {"m": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "x"}},
        "jobs": [{"name": "j", "targets": ["sw"], "backend": "m"}],
    }
    assert [s.name for s in plan(parse_config(data))] == [
        "collect", "langid", "translate", "langid:translated", "dedup", "export"
    ]  # fmt: skip


def test_pending_work_comes_from_every_deciding_stage_and_the_view_fails_closed(
    warehouse, demo, monkeypatch
) -> None:
    trims: list[int] = []  # what each stage freed goes back to the system before the next starts
    monkeypatch.setattr(stage_runner, "_libc", lambda: SimpleNamespace(malloc_trim=trims.append))
    collect_all(warehouse, demo)
    record_stage_settings(warehouse, demo)
    assert set(pending_work(warehouse, demo)) == {"langid", "quality", "dedup"}
    assert set(undecided(warehouse)) == {"langid", "quality", "dedup"}
    assert warehouse.query("SELECT count(*) FROM v_curated_entries")[0][0] == 0
    reports = run_deciding_stages(Context(warehouse, demo, "r"))
    assert list(reports) == ["langid", "quality", "dedup"]
    assert all(r.summary and r.counts for r in reports.values())
    assert pending_work(warehouse, demo) == {} and undecided(warehouse) == {}
    steps = warehouse.query("SELECT stage FROM run_stages WHERE run_id = 'r' ORDER BY started_at")
    assert [s for (s,) in steps] == ["langid", "quality", "dedup"]
    assert warehouse.query("SELECT count(*) FROM v_curated_entries")[0][0] == 288
    assert trims == [0, 0, 0]


def test_polars_gives_freed_pages_back_at_once_unless_told_otherwise() -> None:
    """jemalloc reads its settings when polars first allocates: importing globmed_data sets them
    before polars loads, and leaves a value the user set alone."""
    show = "import globmed_data.cli, os; print(os.environ['_RJEM_MALLOC_CONF'])"
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    ours = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True)
    assert ours.stdout.strip().endswith("dirty_decay_ms:0,muzzy_decay_ms:0")  # the last value wins
    env["_RJEM_MALLOC_CONF"] = "dirty_decay_ms:2000"
    theirs = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True)
    assert theirs.stdout.strip().endswith("dirty_decay_ms:2000")


def test_stage_run_runs_one_stage_and_records_it(tmp_path) -> None:
    wh = tmp_path / "wh.duckdb"
    collected = runner.invoke(app, ["stage", "run", "collect", "-c", str(DEMO_CONFIG), "-w", str(wh)])
    assert collected.exit_code == 0, collected.output
    assert "6 sources, 0 failed; +315 new entries" in collected.output
    done = runner.invoke(app, ["stage", "run", "langid", "-c", str(DEMO_CONFIG), "-w", str(wh), "--json"])
    assert done.exit_code == 0, done.output
    counts = json.loads(done.output[done.output.index("{") :])
    assert counts["checked"] == 315
    again = runner.invoke(app, ["stage", "run", "langid", "-c", str(DEMO_CONFIG), "-w", str(wh)])
    assert again.exit_code == 0 and "langid: 0 entries decided" in again.output
    export = runner.invoke(app, ["stage", "run", "export", "-c", str(DEMO_CONFIG), "-w", str(wh)])
    assert export.exit_code == 2 and "quality 315 entries undecided" in " ".join(export.output.split())
    status = runner.invoke(app, ["status", "-w", str(wh), "--json"])
    assert json.loads(status.output)["undecided"] == {"quality": 315, "dedup": 315}


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("lang", "no stage 'lang'; stages are: collect, langid"),
        ("translate", "stage 'translate' is disabled"),
    ],
)
def test_stage_run_refuses_an_unknown_or_disabled_stage(tmp_path, name, said) -> None:
    done = runner.invoke(
        app, ["stage", "run", name, "-c", str(DEMO_CONFIG), "-w", str(tmp_path / "w.duckdb")]
    )
    assert done.exit_code == 2 and said in " ".join(done.output.split())


def test_stage_list_shows_the_passes(tmp_path) -> None:
    done = runner.invoke(app, ["stage", "list", "-c", str(DEMO_CONFIG), "--json"])
    assert done.exit_code == 0
    assert json.loads(done.output)["passes"] == ["collect", "langid", "quality", "dedup", "export"]
