"""Crash safety and fail-closed publishing: a stage stopped at a named fault point is finished by
the next run exactly; nothing undecided is curated or exported; a killed git commit does not
block publishing; the killed run is marked. (The SIGKILL matrix over a real `globmed run` is
benchmarks/fault_matrix.py; its demo run is the slow test at the end.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from globmed_data import faults
from globmed_data.cli import app
from globmed_data.config import LoadedConfig, load_config
from globmed_data.dedup import stage as dedup_stage
from globmed_data.dedup.stage import run_dedup
from globmed_data.export.layout import MANIFEST
from globmed_data.export.stage import run_export
from globmed_data.export.targets import LocalGitTarget
from globmed_data.langid.stage import run_langid
from globmed_data.pipeline.curation import PendingWork, pending_work, record_stage_settings
from globmed_data.quality import stage as quality_stage
from globmed_data.quality.stage import run_quality
from globmed_data.warehouse import Warehouse
from tests.dedup.test_dedup import corpus  # noqa: F401 (a fixture)
from tests.helpers import DEMO_CONFIG, ROOT, collect_all

runner = CliRunner()
quiet = lambda _m: None  # noqa: E731


@pytest.fixture
def inject(monkeypatch):
    """inject('stage.point') makes that point raise the next time it is reached."""

    def arm(point: str) -> None:
        faults.reset()
        monkeypatch.setenv(faults.ENV, f"{point}:1:raise")

    yield arm
    faults.reset()


def _members(wh: Warehouse) -> list[tuple]:
    return wh.query(
        "SELECT e.record_key, m.decision, k.record_key, m.method FROM dedup_members m "
        "JOIN entries e USING (entry_id) LEFT JOIN entries k ON k.entry_id = m.kept_entry_id ORDER BY 1"
    )


@pytest.mark.parametrize("point", ["dedup.signed", "dedup.decided"])
def test_dedup_stopped_after_signing_links_everything_on_the_next_run(
    corpus,  # noqa: F811 (the fixture imported above)
    tmp_path,
    inject,
    monkeypatch,
    point,
) -> None:
    with Warehouse(tmp_path / "ref.duckdb") as ref:
        collect_all(ref, corpus)
        run_dedup(ref, corpus, "r")
        expected = _members(ref)
    assert len(expected) == 6  # two clusters, a benchmark match; one entry stands alone
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        collect_all(wh, corpus)
        monkeypatch.setattr(dedup_stage, "BATCH", 3)  # signatures committed in three parts
        inject(point)
        with pytest.raises(faults.InjectedFault):
            run_dedup(wh, corpus, "killed")
        assert dedup_stage.work_left(wh, corpus.config.dedup)[0] > 0  # signed maybe, never marked linked
        monkeypatch.delenv(faults.ENV)
        again = run_dedup(wh, corpus, "again")
        assert _members(wh) == expected
        assert again["linked"] == 7
        assert dedup_stage.work_left(wh, corpus.config.dedup) == (0, False)  # all linked, clusters current
        assert run_dedup(wh, corpus, "third")["linked"] == 0  # nothing left to do


def _demo(folder: Path) -> LoadedConfig:
    shutil.copytree(ROOT / "data" / "demo", folder / "data" / "demo")
    (folder / "configs").mkdir()
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["export"]["local"] = {"root": str(folder / "repos")}
    (folder / "configs" / "demo.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    return load_config(folder / "configs" / "demo.yaml")


def test_a_run_stopped_in_quality_exports_nothing_undecided(tmp_path, inject, monkeypatch) -> None:
    loaded = _demo(tmp_path)
    wh_path = tmp_path / "wh.duckdb"
    with Warehouse(wh_path) as wh:
        collect_all(wh, loaded)
        record_stage_settings(wh, loaded)  # as a run does first
        run_langid(wh, loaded, "r", log=quiet)
        monkeypatch.setattr(quality_stage, "CHUNK", 100)
        inject("quality.batch")
        with pytest.raises(faults.InjectedFault):
            run_quality(wh, loaded, "r", log=quiet)
        monkeypatch.delenv(faults.ENV)
        decided = wh.query("SELECT count(*) FILTER (WHERE passed), count(*) FROM quality_results")[0]
        assert 0 < decided[1] < 315
        # Fail closed: only entries every stage decided (here none: dedup has not run) are curated.
        assert wh.query("SELECT count(*) FROM v_curated_entries")[0][0] == 0
        assert set(pending_work(wh, loaded)) == {"quality", "dedup"}
        with pytest.raises(PendingWork, match=r"quality .* entries undecided"):
            run_export(wh, loaded, "r", log=quiet)
        assert wh.query("SELECT count(*) FROM dataset_versions")[0][0] == 0
    config = str(loaded.path)
    refused = runner.invoke(app, ["export", "-c", config, "--warehouse", str(wh_path)])
    assert refused.exit_code == 2 and "--run-stages" in refused.output
    status = json.loads(runner.invoke(app, ["status", "--json", "--warehouse", str(wh_path)]).stdout)
    rejected = decided[1] - decided[0]  # not dedup participants
    assert status["undecided"] == {"quality": 315 - decided[1], "dedup": 315 - rejected}
    assert status["curated"] == 0
    assert status["last_run"]["status"] == "crashed"  # still "running", and nothing holds the file
    done = runner.invoke(app, ["export", "-c", config, "--warehouse", str(wh_path), "--run-stages"])
    assert done.exit_code == 0, done.output
    with Warehouse(wh_path, read_only=True) as wh:
        version = wh.query_dicts("SELECT version, status, counts FROM dataset_versions")
        assert [(v["version"], v["status"]) for v in version] == [("1.0.0", "published")]
        assert '"entries": 288' in version[0]["counts"]  # the demo's curated count, as a full run


def test_the_curated_view_follows_the_recorded_settings(tmp_path) -> None:
    loaded = _demo(tmp_path)
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        collect_all(wh, loaded)
        record_stage_settings(wh, loaded)
        run_langid(wh, loaded, "r", log=quiet)
        run_quality(wh, loaded, "r", log=quiet)
        run_dedup(wh, loaded, "r", log=quiet)
        assert wh.query("SELECT count(*) FROM v_curated_entries")[0][0] == 288
        # New quality thresholds: every decision is stale until quality runs again.
        data = yaml.safe_load(loaded.path.read_text())
        data["quality"] = {"actions": {"missing_image": "flag"}}
        loaded.path.write_text(yaml.safe_dump(data, allow_unicode=True))
        changed = load_config(loaded.path)
        record_stage_settings(wh, changed)
        assert wh.query("SELECT count(*) FROM v_curated_entries")[0][0] == 0
        run_quality(wh, changed, "r2", log=quiet)
        run_dedup(wh, changed, "r2", log=quiet)
        assert pending_work(wh, changed) == {}
        assert wh.query("SELECT count(*) FROM v_curated_entries")[0][0] > 0


@pytest.mark.parametrize("point", ["langid.dropped", "langid.batch"])
def test_language_id_stopped_midway_decides_each_entry_once_on_the_next_run(
    tmp_path, inject, monkeypatch, point
) -> None:
    from globmed_data.langid import stage as langid_stage

    loaded = _demo(tmp_path)
    decisions = "SELECT entry_id, decision, language, confidence FROM langid_results ORDER BY 1"
    with Warehouse(tmp_path / "ref.duckdb") as ref:
        collect_all(ref, loaded)
        run_langid(ref, loaded, "r", log=quiet)
        expected = ref.query(decisions)
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        collect_all(wh, loaded)
        monkeypatch.setattr(langid_stage, "CHUNK", 64)
        inject(point)
        with pytest.raises(faults.InjectedFault):
            run_langid(wh, loaded, "killed", log=quiet)
        settings = langid_stage.stage_hash(loaded.config.langid, loaded)
        assert langid_stage.pending(wh, settings) > 0
        monkeypatch.delenv(faults.ENV)
        run_langid(wh, loaded, "again", log=quiet)
        assert langid_stage.pending(wh, settings) == 0 and wh.query(decisions) == expected


def _version_folder(tmp_path: Path, version: str) -> Path:
    folder = tmp_path / f"v{version}"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).write_text(f'{{"fingerprint": "fp-{version}"}}\n')
    (folder / "data" / "x.parquet").write_text(version)
    return folder


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_git_publish_recovers_from_a_killed_commit(tmp_path, inject, monkeypatch) -> None:
    target = LocalGitTarget(tmp_path / "repos", "o/d")
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    target.publish(_version_folder(tmp_path, "1.0.0"), "1.0.0", stamp)
    git_dir = target.path / ".git"
    (git_dir / "index.lock").write_text("")  # what a git killed mid-commit leaves
    inject("export.git_committed")  # and a kill between the commit and its tag
    with pytest.raises(faults.InjectedFault):
        target.publish(_version_folder(tmp_path, "1.1.0"), "1.1.0", stamp)
    monkeypatch.delenv(faults.ENV)
    (git_dir / "index.lock").write_text("")
    target.publish(_version_folder(tmp_path, "1.1.0"), "1.1.0", stamp)
    assert _git(target.path, "tag").split() == ["v1.0.0", "v1.1.0"]
    assert _git(target.path, "log", "--format=%s").split("\n")[:2] == [
        "globmed-data v1.1.0",
        "globmed-data v1.0.0",
    ]


def test_git_publish_rebuilds_a_repository_whose_init_was_killed(tmp_path) -> None:
    target = LocalGitTarget(tmp_path / "repos", "o/d")
    target.path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(target.path)], check=True)
    (target.path / ".git" / "HEAD").unlink()  # a `git init` killed half-way: no HEAD
    target.publish(_version_folder(tmp_path, "1.0.0"), "1.0.0", datetime(2026, 1, 1, tzinfo=UTC))
    assert _git(target.path, "tag").split() == ["v1.0.0"]
    # HEAD lost in a repository that holds tags: restored, the tags kept.
    (target.path / ".git" / "HEAD").unlink()
    target.publish(_version_folder(tmp_path, "1.1.0"), "1.1.0", datetime(2026, 1, 2, tzinfo=UTC))
    assert _git(target.path, "tag").split() == ["v1.0.0", "v1.1.0"]


def test_a_killed_run_is_marked_crashed_by_the_next(warehouse) -> None:
    warehouse.start_run("killed", config_hash="h", config_path=None, flow_run_id="flow-1")
    found = warehouse.start_run("next", config_hash="h", config_path=None, flow_run_id="flow-2")
    assert found == ["flow-1"]
    assert dict(warehouse.query("SELECT run_id, status FROM runs")) == {
        "killed": "crashed",
        "next": "running",
    }


def test_run_with_a_locked_warehouse_says_so_in_one_line(tmp_path) -> None:
    wh = tmp_path / "wh.duckdb"
    Warehouse(wh).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(wh)!r}); "
         "print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = runner.invoke(app, ["run", "-c", str(DEMO_CONFIG), "--warehouse", str(wh)])
    finally:
        holder.kill()
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "another process has the warehouse" in said and "Traceback" not in said


@pytest.mark.slow
def test_sigkill_at_every_point_then_a_rerun_equals_an_uninterrupted_run() -> None:
    """The fault matrix on the demo, with a translation job on a test-double backend."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fault_matrix import POINTS, run_matrix

    rows = run_matrix(DEMO_CONFIG, [p for p in POINTS if p != "dedup.signed:2"], translate=True)
    assert [r["point"] for r in rows if not r["equal"]] == [], rows
    for r in rows:
        assert r["run_statuses"][0] == "crashed" and r["prefect_state"] == "CRASHED"
        if r["point"].split(".")[0] in ("collect", "langid", "quality", "translate", "dedup"):
            assert r["export_exit"] == 2  # stages had pending work: `globmed export` refused


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root only; skipped where mounting is not allowed)."""
    where = tmp_path / "disk"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                      capture_output=True).returncode:  # fmt: skip
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_one_line_and_the_rerun_finishes(prefect_api, small_disk) -> None:
    wh = small_disk / "wh.duckdb"
    full = runner.invoke(app, ["run", "-c", str(DEMO_CONFIG), "--warehouse", str(wh)])
    said = " ".join(full.output.split())
    # Where the disk fills decides the code: every source failed (4) or the run itself (1);
    # either way the cause and what to do are said.
    assert full.exit_code in (1, 4) and "No space left on device" in said and "the disk is full" in said
    assert "Traceback" not in said
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = runner.invoke(app, ["run", "-c", str(DEMO_CONFIG), "--warehouse", str(wh)])
    assert again.exit_code == 0, again.output
    with Warehouse(wh, read_only=True) as w:
        # The first run is "failed", or "crashed" when the full disk refused even that record (found
        # by the re-run), or absent when the disk was full before the warehouse's schema was written.
        *first, second = (r[0] for r in w.query("SELECT status FROM runs ORDER BY started_at"))
        assert set(first) <= {"failed", "crashed"} and len(first) <= 1 and second == "succeeded"
        assert w.query("SELECT count(*) FROM v_curated_entries")[0][0] == 288
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    read_only = runner.invoke(
        app, ["run", "-c", str(DEMO_CONFIG), "--warehouse", str(small_disk / "new.duckdb")]
    )
    assert read_only.exit_code == 2 and "the location is not writable" in " ".join(read_only.output.split())
