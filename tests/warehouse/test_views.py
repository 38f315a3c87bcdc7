"""Views as models: one SQL file each, documented in views.yml, re-created on open."""

from __future__ import annotations

import pytest

from globmed_data.views import load_views, render_readme, views_dir
from globmed_data.warehouse import Warehouse, WarehouseError
from tests.helpers import ROOT, collect_all


def test_each_view_has_exactly_its_documented_columns(warehouse) -> None:
    for view in load_views():
        columns = [r[0] for r in warehouse.query(f"DESCRIBE {view.name}")]
        assert columns == list(view.columns), view.name
        assert all(view.columns.values()), f"{view.name}: a column without words"
        assert view.grain and view.description, view.name


def test_every_sql_file_is_a_listed_view() -> None:
    files = {p.stem for p in views_dir().glob("*.sql")}
    assert files == {v.name for v in load_views()}


def test_the_readme_table_is_generated_from_views_yml() -> None:
    readme = (ROOT / "warehouse" / "README.md").read_text(encoding="utf-8")
    assert render_readme(readme) == readme, "run: python -m globmed_data.views --readme"


def test_views_older_than_the_code_are_refused_read_only_and_renewed_on_write(tmp_path) -> None:
    path = tmp_path / "wh.duckdb"
    with Warehouse(path) as wh:
        wh.con.execute("UPDATE schema_views SET views_hash = 'old'")
        wh.con.execute("CREATE OR REPLACE VIEW v_entry_counts AS SELECT 1 AS stale")
    with pytest.raises(WarehouseError, match=r"views .* are older"):
        Warehouse(path, read_only=True)
    with Warehouse(path) as wh:  # opened for writing: the views are the code's again
        assert [r[0] for r in wh.query("DESCRIBE v_entry_counts")][-1] == "entries"
    Warehouse(path, read_only=True).close()


def test_eligible_entries_are_what_dedup_links_and_translation_may_translate(warehouse, demo) -> None:
    from globmed_data.dedup.stage import run_dedup
    from globmed_data.langid.stage import run_langid
    from globmed_data.quality.stage import run_quality

    collect_all(warehouse, demo)
    run_langid(warehouse, demo, "r")
    run_quality(warehouse, demo, "r")
    run_dedup(warehouse, demo, "r")
    eligible = {r[0] for r in warehouse.query("SELECT entry_id FROM v_eligible_entries")}
    rejected = {r[0] for r in warehouse.query("SELECT entry_id FROM v_quality WHERE NOT passed")}
    signed = {r[0] for r in warehouse.query("SELECT entry_id FROM dedup_signatures")}
    assert rejected and not rejected & eligible
    assert signed == eligible
    curated = {r[0] for r in warehouse.query("SELECT entry_id FROM v_curated_entries")}
    assert curated <= eligible
