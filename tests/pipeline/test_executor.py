"""Where the maps run: the same entries, raw records and quarantine whether the collect maps in the
run's process, in a local process pool, or (slow, `dist` extra) as Ray tasks; the same language,
quality and dedup decisions whether their batches are decided here or by a pool's workers."""

from __future__ import annotations

import gc
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml

from globmed_data.config import ConfigError, LoadedConfig, load_config
from globmed_data.dedup import stage as dedup_stage
from globmed_data.langid import stage as langid_stage
from globmed_data.pipeline.executor import (
    WORKER_GC_THRESHOLD,
    BatchMap,
    InlineExecutor,
    ProcessExecutor,
    executor_for,
    ordered_map,
)
from globmed_data.pipeline.settings import ExecutorSettings
from globmed_data.quality import stage as quality_stage
from globmed_data.warehouse import Warehouse
from tests.helpers import DEMO_CONFIG, ROOT, SHARED_DATA, collect_all, needs_ray, needs_shared, write_config

QA = {"task": "mcqa", "key": "id", "question": "q", "options": {"field": "o"}, "answer": {"field": "a"}}
TABLES = {
    "entries": "* EXCLUDE (created_run_id, updated_run_id)",
    "raw_records": "source, record_key, file, locator, raw_hash, payload, vanished_run_id IS NULL",
    "quarantine": "* EXCLUDE (run_id, created_at)",
    "source_files": "* EXCLUDE (run_id)",
}


def _slow_square(x: int, pause: float) -> int:
    time.sleep(pause)
    return x * x


def _fails(x: int) -> int:
    raise ValueError(f"bad {x}")


def _pid_after(pause: float) -> int:
    time.sleep(pause)
    return os.getpid()


def snapshot(wh: Warehouse, tables: dict[str, str] = TABLES) -> dict[str, list[tuple]]:
    return {t: sorted(wh.query(f"SELECT {cols} FROM {t}"), key=repr) for t, cols in tables.items()}


def sent_away(loaded: LoadedConfig) -> LoadedConfig:
    """The config with every source and every stage's batches, however small, sent to the
    executor's workers."""
    settings = ExecutorSettings(min_task_bytes=0, min_task_entries=0)
    config = loaded.config.model_copy(update={"executor": settings})
    return loaded.model_copy(update={"config": config})


def test_ordered_map_keeps_the_order_of_the_calls() -> None:
    pool = ProcessExecutor(2)
    try:
        # The first call is the slowest: its result still comes first.
        calls = [(i, 0.3 if i == 0 else 0.0) for i in range(6)]
        assert list(ordered_map(pool, _slow_square, calls, window=3)) == [0, 1, 4, 9, 16, 25]
        with pytest.raises(ValueError, match="bad 1"):
            list(ordered_map(pool, _fails, [(1,), (2,)], window=2))
    finally:
        pool.close()
    assert list(ordered_map(InlineExecutor(), _slow_square, [(3, 0.0)], window=1)) == [9]


def test_threads_submitting_at_once_share_one_pool_of_the_configured_size() -> None:
    """The collect's source threads start the pool together: one pool of two workers serves
    them all (each thread used to start a pool of its own)."""
    pool = ProcessExecutor(2)
    start = threading.Barrier(4)
    pids: list[int] = []

    def submit() -> None:
        start.wait()
        pids.append(pool.submit(_pid_after, 0.5).result())

    threads = [threading.Thread(target=submit) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(pids) == 4
        assert len(set(pids)) == 2  # four half-second calls, two workers: both used, none more
    finally:
        pool.close()


def test_pool_workers_collect_garbage_less_often_than_the_run_process() -> None:
    pool = ProcessExecutor(1)
    try:
        assert pool.submit(gc.get_threshold).result() == WORKER_GC_THRESHOLD
        assert pool.submit(gc.get_freeze_count).result() > 0
    finally:
        pool.close()
    assert gc.get_threshold() != WORKER_GC_THRESHOLD  # the run's own process is left as it is


def test_a_batch_map_sends_away_only_enough_entries_and_cuts_them_for_every_worker() -> None:
    pool = ProcessExecutor(2, takes_batches=True)  # not started: nothing is submitted
    assert BatchMap(pool, 19_999, 20_000).executor.inline
    assert BatchMap(ProcessExecutor(2), 10**6, 0).executor.inline  # a local pool maps files only
    assert BatchMap(None, 10**6, 0).executor.inline
    here = BatchMap(InlineExecutor(), 10**6, 0)
    assert (here.rows(50_000, 10_000), here.threads) == (50_000, None)
    away = BatchMap(pool, 100_000, 20_000)
    assert (away.executor, away.threads) == (pool, 1)
    assert away.rows(50_000, 10_000) == 25_000  # four batches: two per worker
    assert BatchMap(pool, 30_000, 0).rows(50_000, 10_000) == 10_000
    assert BatchMap(pool, 10**6, 0).rows(50_000, 10_000) == 50_000


def test_executor_settings_shorthand_and_refusals(tmp_path: Path) -> None:
    source = {"name": "s", "paths": ["x.jsonl"], "language": "en", "mapping": QA}
    loaded = load_config(write_config(tmp_path, [source], executor="ray"))
    assert loaded.config.executor.kind == "ray"
    with pytest.raises(ConfigError, match=r"executor\.workers"):
        load_config(write_config(tmp_path, [source], executor={"workers": 0}))
    with pytest.raises(ConfigError, match=r"executor\.kind"):
        load_config(write_config(tmp_path, [source], executor="spark"))
    assert isinstance(executor_for(ExecutorSettings(workers=1)), InlineExecutor)


def test_config_hash_ignores_where_the_maps_run(tmp_path: Path) -> None:
    source = {"name": "s", "paths": ["x.jsonl"], "language": "en", "mapping": QA}
    local = load_config(write_config(tmp_path, [source]))
    ray = load_config(write_config(tmp_path, [source], executor={"kind": "ray", "workers": 2}))
    assert local.config.config_hash() == ray.config.config_hash()


def test_demo_collect_is_the_same_in_a_process_pool(tmp_path: Path, demo: LoadedConfig) -> None:
    with Warehouse(tmp_path / "inline.duckdb") as wh:
        inline_reports = collect_all(wh, demo)
        inline = snapshot(wh)
    pool = ProcessExecutor(2)
    try:
        with Warehouse(tmp_path / "pool.duckdb") as wh:
            pool_reports = collect_all(wh, sent_away(demo), executor=pool)
            pooled = snapshot(wh)
    finally:
        pool.close()
    assert pooled == inline
    keep = ("records", "added", "quarantined", "by_language", "by_reason")
    assert {k: {f: getattr(r, f) for f in keep} for k, r in pool_reports.items()} == {
        k: {f: getattr(r, f) for f in keep} for k, r in inline_reports.items()
    }


DECISIONS = {
    "langid_results": "* EXCLUDE (run_id, decided_at)",
    "quality_results": "* EXCLUDE (run_id, decided_at)",
    "dedup_signatures": "* EXCLUDE (run_id)",
    "dedup_edges": "* EXCLUDE (run_id)",
    "dedup_members": "*",
}


def test_stage_batches_decided_by_a_process_pool_equal_those_decided_here(
    tmp_path: Path, demo: LoadedConfig, monkeypatch
) -> None:
    """Language ID, quality and dedup's signing, each cut into four batches for two workers:
    the same rows as the run's own process decides on its threads."""
    from globmed_data.dedup.stage import run_dedup
    from globmed_data.langid.stage import run_langid
    from globmed_data.quality.stage import run_quality

    monkeypatch.setattr(langid_stage, "CHUNK", 200)
    monkeypatch.setattr(quality_stage, "MIN_CHUNK", 50)
    monkeypatch.setattr(dedup_stage, "BATCH", 200)
    tables = {}
    pool = ProcessExecutor(2, takes_batches=True)
    try:
        for name, executor in (("inline", None), ("pool", pool)):
            loaded = sent_away(demo)
            with Warehouse(tmp_path / f"{name}.duckdb") as wh:
                collect_all(wh, loaded)
                checked = [
                    run(wh, loaded, "r", None, None, executor)["checked"]
                    for run in (run_langid, run_quality, run_dedup)
                ]
                assert checked[0] == checked[1] > 200  # more than one batch
                tables[name] = snapshot(wh, DECISIONS)
    finally:
        pool.close()
    assert all(tables["inline"][t] for t in DECISIONS)
    assert tables["pool"] == tables["inline"]


def test_duplicate_keys_across_files_sent_to_workers(tmp_path: Path) -> None:
    """Each file is mapped by a worker that cannot see the others: the collector still keeps the
    first record of a key, in file order, and quarantines the rest with where the first stands."""
    data = tmp_path / "data"
    data.mkdir()
    row = {"q": "Which organ?", "o": ["liver", "lung"], "a": "A"}
    files = {
        "a.jsonl": [{"id": 1, **row}, {"id": 2, **row}, {"id": 2, **row, "q": "Again?"}],
        "b.jsonl": [{"id": 1, **row, "q": "Later copy?"}, {"id": 3, **row, "a": "Z"}, {"id": 3, **row}],
    }
    for name, records in files.items():
        (data / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    source = {"name": "s", "paths": ["data/*.jsonl"], "language": "en", "mapping": QA}
    loaded = sent_away(load_config(write_config(tmp_path, [source])))
    pool = ProcessExecutor(2)
    try:
        with Warehouse(tmp_path / "wh.duckdb") as wh:
            report = collect_all(wh, loaded, executor=pool)["s"]
            assert wh.query("SELECT record_key, question FROM entries ORDER BY 1") == [
                ("1", "Which organ?"),
                ("2", "Which organ?"),
            ]
            assert wh.query("SELECT file, locator, reason, detail FROM quarantine ORDER BY 1, 2") == [
                ("a.jsonl", "L3", "duplicate_key", "key '2' already at a.jsonl:L2"),
                ("b.jsonl", "L1", "duplicate_key", "key '1' already at a.jsonl:L1"),
                ("b.jsonl", "L2", "answer_out_of_range", "answer 'Z' names option(s) beyond the 2 given"),
                ("b.jsonl", "L3", "duplicate_key", "key '3' already at b.jsonl:L2"),
            ]
            # The key with the failed mapping has its raw record, and no entry.
            assert wh.query("SELECT count(*) FROM raw_records") == [(3,)]
    finally:
        pool.close()
    assert (report.added, report.quarantined) == (2, 4)
    assert report.by_reason == {"answer_out_of_range": 1, "duplicate_key": 3}


@pytest.mark.slow
@needs_ray
def test_collect_on_a_local_ray_cluster_equals_inline(tmp_path: Path, demo: LoadedConfig) -> None:
    from globmed_data.pipeline.executor import RayExecutor

    with Warehouse(tmp_path / "inline.duckdb") as wh:
        collect_all(wh, demo)
        inline = snapshot(wh)
    ray = RayExecutor(None, 2)
    try:
        with Warehouse(tmp_path / "ray.duckdb") as wh:
            collect_all(wh, sent_away(demo), executor=ray)
            assert snapshot(wh) == inline
    finally:
        ray.close()


def _config_copy(config: Path, folder: Path, executor: dict | None) -> Path:
    """The config beside a copy of what its relative paths name, with `executor` set."""
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["warehouse"] = None
    if executor:
        raw["executor"] = executor
    (folder / "configs").mkdir(parents=True)
    if not (folder / "data").exists():
        shutil.copytree(ROOT / "data" / "demo", folder / "data" / "demo")
    out = folder / "configs" / config.name
    out.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out


@pytest.mark.slow
@needs_ray
@needs_shared
@pytest.mark.parametrize(
    "config", [DEMO_CONFIG, ROOT / "configs" / "shared-real.yaml"], ids=["demo", "shared"]
)
def test_the_flow_on_a_local_ray_cluster_exports_what_a_local_run_does(
    prefect_api, tmp_path: Path, monkeypatch, config: Path
) -> None:
    """Every source's files mapped, and every batch of language ID, quality and dedup's signing
    decided, as Ray tasks (two CPUs) by the flow: the same version."""
    from flows.pipeline import pipeline_flow

    monkeypatch.setenv("GLOBMED_SHARED_DATA", str(SHARED_DATA.resolve()))
    fingerprints = {}
    ray = {"kind": "ray", "workers": 2, "min_task_bytes": 0, "min_task_entries": 0}
    for name, executor in (("local", None), ("ray", ray)):
        path = _config_copy(config, tmp_path / name, executor)
        result = pipeline_flow(config_path=str(path), warehouse=str(tmp_path / name / "wh.duckdb"))
        assert result["status"] == "succeeded"
        fingerprints[name] = result["stages"]["export"]["fingerprint"]
    assert fingerprints["ray"] == fingerprints["local"]


class _Visible:
    """What a model's host sees: the GPUs Ray gave it."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.devices = os.environ.get("CUDA_VISIBLE_DEVICES")

    def describe(self, suffix: str) -> str:
        return f"{self.tag}{suffix}:{self.devices}"

    def fail(self) -> None:
        raise ValueError("the model's own error")


def _gpu_ids() -> list[int]:
    import ray

    return [int(g) for g in ray.get_gpu_ids()]


def _threads() -> str | None:
    return os.environ.get("OMP_NUM_THREADS")  # what torch and BLAS size their thread pools by


def test_models_stay_in_the_run_process_on_one_machine() -> None:
    for executor in (InlineExecutor(), ProcessExecutor(2)):
        hosted = executor.host(_Visible, 1, "here")
        assert hosted.call("describe", "!") == f"here!:{os.environ.get('CUDA_VISIBLE_DEVICES')}"
        assert hosted.get("tag") == "here" and hosted.get("absent") is None
        with pytest.raises(ValueError, match="own error"):
            hosted.call("fail")
        assert executor.submit_model(os.getpid, 1).result() == os.getpid()
        executor.check_gpus(8, "a model")  # nothing to check here: the model's library finds the device
        executor.close()


@pytest.mark.slow
@needs_ray
def test_models_ask_ray_for_their_gpus() -> None:
    """A local cluster that declares one GPU (this machine has none: Ray schedules the declared
    resource and sets CUDA_VISIBLE_DEVICES, which is what a model on a GPU node reads)."""
    from globmed_data.pipeline.executor import RayExecutor

    ray = RayExecutor(None, 2, gpus=1)
    try:
        assert ray.submit_model(_gpu_ids, 1).result() == [0]
        assert ray.submit_model(_gpu_ids, 0).result() == []
        assert ray.submit_model(_threads, 0, cpus=None).result() == "2"  # a whole node: both CPUs
        assert ray.submit_model(_threads, 0, cpus=1).result() == "1"
        assert ray.submit_model(_threads, 0).result() == "2"  # no GPU: the model computes on CPUs
        assert ray.submit_model(_threads, 1).result() == "1"  # one CPU beside its GPU
        hosted = ray.host(_Visible, 1, "actor")
        assert hosted.call("describe", "?") == "actor?:0"
        with pytest.raises(ValueError, match="own error"):  # the model's exception, as here
            hosted.call("fail")
        hosted.close()
        with pytest.raises(RuntimeError, match=r"asks Ray for 2 GPU\(s\) but the cluster has 1"):
            ray.host(_Visible, 2, "too big")
        with pytest.raises(RuntimeError, match="ray start --num-gpus"):
            ray.submit_model(_gpu_ids, 1.5)
        # A task sees only the GPUs Ray gave it, from 0: another index is refused, with the fix.
        with pytest.raises(RuntimeError, match=r"names device cuda:1.*name the device `cuda`"):
            ray.check_gpus(1, "model m", "cuda:1")
        for device in ("cuda", "cuda:0", "cpu", None):
            ray.check_gpus(1, "model m", device)
    finally:
        ray.close()
