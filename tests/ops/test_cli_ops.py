"""What the CLI remembers and announces: the last run's warehouse, and a cold kernel cache."""

from __future__ import annotations

from pathlib import Path

from globmed_data.kernels import warm
from globmed_data.ops import last_run


def test_the_last_runs_warehouse_is_remembered_per_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert last_run.recall() is None
    wh = tmp_path / "elsewhere" / "x.duckdb"
    wh.parent.mkdir()
    last_run.remember(wh, tmp_path / "c.yaml")
    assert last_run.recall() is None  # remembered, but the file is gone: the default applies
    wh.write_bytes(b"")
    assert last_run.recall() == wh.resolve()
    (tmp_path / ".globmed" / "last-run.json").write_text("{not json")
    assert last_run.recall() is None


def test_a_cold_kernel_cache_is_noticed(monkeypatch) -> None:
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(warm, "MODULES", ("globmed_data.ops.lock", "globmed_data.kernels.text_metrics"))
    cold = warm.cold_modules()
    assert "ops.lock" in cold  # a module never compiled has no numba index
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/elsewhere")
    assert warm.cold_modules() == []  # a cache elsewhere cannot be checked cheaply: say nothing
