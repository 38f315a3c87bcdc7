"""No single input stops a run: each bad file or record becomes a quarantine row with a reason
(or its source fails with one), the other files and sources go on; configuration that cannot
work is refused before any work starts."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from globmed_data.cli import app
from globmed_data.config import load_config
from globmed_data.settings import ConfigError
from globmed_data.sources.locate import match_files
from globmed_data.sources.readers import read_file
from globmed_data.warehouse import Warehouse
from tests.helpers import collect_all, write_config

runner = CliRunner()
SPEC = {"preset": "problem_choices", "language": "en", "split": "train"}


def _item(n: int, text: str = "Which drug is the first-line treatment of anaphylaxis in adults") -> dict:
    return {"problem_id": f"q{n}", "problem_text": f"{text} ({n})?", "choices": ["a", "b"], "answer": "A"}


def _jsonl(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def _quarantine(wh: Warehouse) -> dict[str, str]:
    return {
        f"{f}:{loc}": reason for f, loc, reason in wh.query("SELECT file, locator, reason FROM quarantine")
    }


def _entries(wh: Warehouse) -> int:
    return wh.query("SELECT count(*) FROM entries")[0][0]


def test_a_record_nested_ten_thousand_levels_is_quarantined(tmp_path, warehouse) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    _jsonl(tmp_path / "d" / "a.jsonl", [json.dumps(_item(1)), '{"problem_id": "x", "deep": ' + deep + "}",
                                        json.dumps(_item(2))])  # fmt: skip
    (tmp_path / "d" / "doc.json").write_text(deep)
    loaded = load_config(write_config(tmp_path, [
        {"name": "lines", "paths": ["d/a.jsonl"], **SPEC},
        {"name": "doc", "paths": ["d/doc.json"], **SPEC},
    ]))  # fmt: skip
    reports = collect_all(warehouse, loaded)
    assert reports["lines"].status == "collected" and reports["lines"].added == 2
    assert _quarantine(warehouse)["a.jsonl:L2"] == "too_deep"
    # The document cannot be read: quarantined whole, so the source gave nothing and failed.
    assert reports["doc"].status == "failed" and "file_unreadable 1" in (reports["doc"].error or "")
    assert _quarantine(warehouse)["doc.json:file"] == "file_unreadable"


def test_max_record_bytes_holds_in_json_documents_and_parquet(tmp_path, warehouse) -> None:
    big = _item(2, "x" * 30_000)
    (tmp_path / "doc.json").write_text(json.dumps([_item(1), big]))
    pq.write_table(pa.Table.from_pylist([_item(3), {**big, "problem_id": "q4"}]), tmp_path / "rows.parquet")
    loaded = load_config(write_config(tmp_path, [
        {"name": "doc", "paths": ["doc.json"], **SPEC},
        {"name": "rows", "paths": ["rows.parquet"], **SPEC},
    ], collect={"max_record_bytes": 16_384}))  # fmt: skip
    reports = collect_all(warehouse, loaded)
    assert (reports["doc"].added, reports["rows"].added) == (1, 1)
    assert _quarantine(warehouse) == {
        "doc.json:#1": "record_too_large",
        "rows.parquet:R1": "record_too_large",
    }
    items = list(read_file(tmp_path / "doc.json", "json", encoding="utf-8", record_path=None,
                           max_record_bytes=1 << 20))  # fmt: skip
    assert [i.reason for i in items] == [None, None] and items[1].size > 30_000


def test_a_file_symlink_loop_is_quarantined_and_the_source_goes_on(tmp_path, warehouse) -> None:
    _jsonl(tmp_path / "d" / "good.jsonl", [json.dumps(_item(1))])
    os.symlink(tmp_path / "d" / "loop.jsonl", tmp_path / "d" / "loop.jsonl")  # points at itself
    loaded = load_config(write_config(tmp_path, [{"name": "s", "paths": ["d/*.jsonl"], **SPEC}]))
    report = collect_all(warehouse, loaded)["s"]
    assert report.status == "collected" and report.added == 1
    assert _quarantine(warehouse) == {"loop.jsonl:file": "file_unreadable"}
    again = collect_all(warehouse, loaded)["s"]  # unchanged, the broken file included
    assert again.status == "skipped"


def test_a_folder_symlink_loop_reads_each_file_once(tmp_path, warehouse) -> None:
    _jsonl(tmp_path / "d" / "sub" / "a.jsonl", [json.dumps(_item(1)), json.dumps(_item(2))])
    os.symlink(tmp_path / "d", tmp_path / "d" / "sub" / "back")  # d/sub/back -> d: a loop
    loaded = load_config(write_config(tmp_path, [{"name": "s", "paths": ["d/**/*.jsonl"], **SPEC}]))
    report = collect_all(warehouse, loaded)["s"]
    assert (report.files, report.records, report.added, report.quarantined) == (1, 2, 2, 0)


def test_match_files_equals_glob_without_link_loops(tmp_path) -> None:
    tree = tmp_path / "tree"
    for rel in ("a/x.jsonl", "a/b/y.jsonl", "a/b/c/z.json", "a/.hidden/h.jsonl", "a/.dot.jsonl", "top.jsonl",
                "a/b/notes.txt", "q/x1.json", "q/x2.json", "../outside/x3.json"):  # fmt: skip
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text("{}")
    os.symlink(tmp_path / "outside", tree / "a" / "linked")  # a linked folder, no loop
    for pattern in ("**/*.jsonl", "a/**", "*/x*.json", "a/*/*.jsonl", "**/.*.jsonl", "a/**/c/*", "*.jsonl",
                    "a/.hidden/*.jsonl", "**/x?.json"):  # fmt: skip
        full = str(tree / pattern)
        expected = sorted(p for p in glob.glob(full, recursive=True) if not os.path.isdir(p))
        assert match_files(full) == expected, pattern
    # A folder reached by its own path and through a link is read once, by its own path.
    os.symlink(tree / "q", tree / "a" / "q-again")
    assert match_files(str(tree / "**" / "x?.json")) == [
        str(tree / "a/linked/x3.json"),
        str(tree / "q/x1.json"),
        str(tree / "q/x2.json"),
    ]


def test_an_unset_variable_is_refused_before_any_work(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("GLOBMED_NOT_SET", raising=False)
    config = write_config(tmp_path, [{"name": "s", "paths": ["${GLOBMED_NOT_SET}/*.jsonl"], **SPEC}])
    with pytest.raises(ConfigError, match=r"sources\[0\]\.paths\[0\]: environment variable GLOBMED_NOT_SET"):
        load_config(config)
    result = runner.invoke(app, ["config", "validate", str(config)])
    assert result.exit_code == 2 and "GLOBMED_NOT_SET is not set" in " ".join(result.output.split())
    run = runner.invoke(app, ["run", "-c", str(config), "--warehouse", str(tmp_path / "wh.duckdb")])
    assert run.exit_code == 2 and not (tmp_path / "wh.duckdb").exists()  # refused before any work
    # A default makes it valid.
    write_config(tmp_path, [{"name": "s", "paths": ["${GLOBMED_NOT_SET:-d}/*.jsonl"], **SPEC}])
    assert load_config(config).config.sources[0].paths == ["${GLOBMED_NOT_SET:-d}/*.jsonl"]


def test_config_validate_warns_about_missing_files_and_strict_refuses(tmp_path) -> None:
    config = write_config(tmp_path, [{"name": "s", "paths": ["nowhere/*.jsonl"], **SPEC}])
    lenient = runner.invoke(app, ["config", "validate", str(config)])
    assert lenient.exit_code == 0 and "no files match" in " ".join(lenient.output.split())
    strict = runner.invoke(app, ["config", "validate", "--strict", str(config)])
    assert strict.exit_code == 2


def test_a_lone_surrogate_escape_is_quarantined_in_json_lines_and_documents(tmp_path, warehouse) -> None:
    """`"\\ud800"` is valid JSON that no text can hold: the record is quarantined as bad_encoding
    (a JSON document's used to fail its whole source), and a proper pair (an emoji) is kept."""
    lone = json.dumps(_item(1)).replace("(1)?", "\\ud800 (1)?")
    pair = json.dumps(_item(2)).replace("(2)?", "\\ud83d\\ude00 (2)?")
    _jsonl(tmp_path / "a.jsonl", [lone, pair])
    (tmp_path / "doc.json").write_text("[" + lone + ", " + pair + "]")
    loaded = load_config(write_config(tmp_path, [
        {"name": "lines", "paths": ["a.jsonl"], **SPEC},
        {"name": "doc", "paths": ["doc.json"], **SPEC},
    ]))  # fmt: skip
    reports = collect_all(warehouse, loaded)
    assert {n: (r.status, r.added) for n, r in reports.items()} == {
        "lines": ("collected", 1), "doc": ("collected", 1),
    }  # fmt: skip
    assert _quarantine(warehouse) == {"a.jsonl:L1": "bad_encoding", "doc.json:#0": "bad_encoding"}
    questions = {q for (q,) in warehouse.query("SELECT question FROM entries")}
    assert questions == {_item(2)["problem_text"].replace("(2)?", "\U0001f600 (2)?")}
