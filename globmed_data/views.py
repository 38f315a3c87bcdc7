"""The warehouse's views as models (the dbt way): one SQL file per view in warehouse/views/, and
their documentation, grain and columns in one place, warehouse/views/views.yml.

Views are re-created every time the warehouse is opened for writing, in the order views.yml
lists them (a view after those it reads). The same file renders the view table of
warehouse/README.md (`python -m globmed_data.views --readme`), and a test checks that the
documented columns are exactly the columns each view has.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import yaml

from globmed_data.generated import replace_generated
from globmed_data.resources import resource_dir

README_START = "<!-- views:start (generated from views/views.yml: python -m globmed_data.views --readme) -->"
README_END = "<!-- views:end -->"


@dataclass(frozen=True)
class View:
    name: str
    grain: str  # what one row is
    description: str
    columns: dict[str, str]  # name -> what it holds, in the view's column order
    sql: str


def views_dir() -> Path:
    return resource_dir("warehouse", "views")


@cache
def load_views() -> tuple[View, ...]:
    """The views in creation order (read once per process: every warehouse open uses them)."""
    spec = yaml.safe_load((views_dir() / "views.yml").read_text(encoding="utf-8"))
    glossary: dict[str, str] = spec.get("columns", {})
    views = []
    for name, v in spec["views"].items():
        columns: dict[str, str] = {}
        for item in v["columns"]:
            # A bare name takes the glossary's words; {name: text} says something of its own.
            col, text = (item, glossary.get(item, "")) if isinstance(item, str) else next(iter(item.items()))
            columns[col] = text
        sql = (views_dir() / f"{name}.sql").read_text(encoding="utf-8")
        views.append(View(name, v["grain"], v.get("description", "").strip(), columns, sql))
    return tuple(views)


@cache
def views_hash() -> str:
    digest = hashlib.sha256()
    for view in load_views():
        digest.update(view.sql.encode())
    return digest.hexdigest()[:16]


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create every view, in order; the caller holds the transaction."""
    for view in load_views():
        con.execute(view.sql)
    con.execute("DELETE FROM schema_views")
    con.execute("INSERT INTO schema_views VALUES (?, now())", [views_hash()])


def readme_table() -> str:
    lines = ["| view | one row per | what it is | columns |", "| --- | --- | --- | --- |"]
    for v in load_views():
        cols = "<br>".join(f"`{c}`" + (f": {_cell(t)}" if t else "") for c, t in v.columns.items())
        description = _cell(" ".join(v.description.split()))
        lines.append(f"| `{v.name}` | {v.grain} | {description} | {cols} |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a bar inside a Markdown table cell


def render_readme(text: str) -> str:
    """The README with its generated view table replaced by the current one."""
    return replace_generated(text, README_START, README_END, readme_table())


if __name__ == "__main__":
    if sys.argv[1:] == ["--readme"]:
        readme = views_dir().parent / "README.md"
        readme.write_text(render_readme(readme.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"wrote the view table of {readme}")
    else:
        print(readme_table())
