import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from globmed_data.config import load_config
from globmed_data.warehouse import Warehouse, list_migrations
from tests.helpers import ROOT, collect_all, write_config

QA = {"task": "mcqa", "key": "id", "question": "q", "options": {"field": "o"}, "answer": {"field": "a"}}


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def rows(n: int, start: int = 0, text: str = "Question") -> list[dict]:
    return [
        {"id": i, "q": f"{text} {i}?", "o": ["yes", "no", "maybe"], "a": "a"} for i in range(start, start + n)
    ]


def counts(wh: Warehouse) -> dict[str, int]:
    return dict(wh.query("SELECT status, count(*) FROM entries GROUP BY 1"))


def test_demo_collect_counts_and_reasons(warehouse, demo) -> None:
    reports = collect_all(warehouse, demo)
    assert all(r.status == "collected" for r in reports.values())
    assert {k: r.added for k, r in reports.items()} == {
        "demo_dosing": 203,
        "demo_dosing_mirror": 22,
        "demo_facts": 24,
        "demo_heart_rate": 30,
        "demo_fever": 20,
        "demo_bmi": 16,
    }
    reasons = dict(warehouse.query("SELECT reason, count(*) FROM quarantine GROUP BY 1"))
    assert reasons == {
        "malformed_json": 1,
        "missing_answer": 1,
        "answer_out_of_range": 2,
        "too_few_options": 1,
        "duplicate_key": 1,
        "record_too_large": 1,
        "bad_encoding": 1,
        "malformed_row": 1,
        "invalid_label": 2,
        "missing_field": 1,
    }
    languages = {lang for (lang,) in warehouse.query("SELECT DISTINCT language FROM entries")}
    assert languages == {"en", "fr", "es", "de", "sw", "yo", "zu", "ja", "zh"}
    tasks = {t for (t,) in warehouse.query("SELECT DISTINCT task FROM entries")}
    assert tasks == {"mcqa", "yes_no", "nli", "open_qa"}
    # Mojibake was repaired in the entry; the raw record keeps the original text.
    q, payload = warehouse.query(
        "SELECT e.question, r.payload FROM entries e JOIN raw_records r USING (source, record_key) "
        "WHERE e.record_key = 'dose-fr-mojibake'"
    )[0]
    assert q.startswith("Un enfant de 12 kg reçoit de l'ibuprofène")
    assert "reÃ§oit" in payload
    # The quarantined large record is kept (cut) with its full size.
    size, length = warehouse.query(
        "SELECT payload_bytes, length(payload) FROM quarantine WHERE reason = 'record_too_large'"
    )[0]
    assert size > 16384 and length <= 65536


def test_second_run_changes_nothing(warehouse, demo) -> None:
    collect_all(warehouse, demo)
    before = warehouse.query("SELECT entry_id, content_hash, updated_run_id FROM entries ORDER BY 1")
    q_before = warehouse.query("SELECT count(*) FROM quarantine")
    reports = collect_all(warehouse, demo)
    assert {r.status for r in reports.values()} == {"skipped"}
    assert warehouse.query("SELECT entry_id, content_hash, updated_run_id FROM entries ORDER BY 1") == before
    assert warehouse.query("SELECT count(*) FROM quarantine") == q_before


def test_changes_are_applied_incrementally(tmp_path: Path, warehouse) -> None:
    data = tmp_path / "data"
    data.mkdir()
    jsonl(data / "a.jsonl", rows(10))
    jsonl(data / "b.jsonl", rows(5, start=100))
    loaded = load_config(
        write_config(tmp_path, [{"name": "s", "paths": ["data/*.jsonl"], "language": "en", "mapping": QA}])
    )
    first = collect_all(warehouse, loaded)["s"]
    assert (first.added, first.files) == (15, 2)

    # Edit one record, drop one, add one, all in a.jsonl; b.jsonl untouched.
    changed = rows(10)
    changed[3]["q"] = "Edited question?"
    del changed[7]
    changed.append({"id": 50, "q": "New?", "o": ["x", "y"], "a": "b"})
    jsonl(data / "a.jsonl", changed)
    second = collect_all(warehouse, loaded)["s"]
    assert (second.added, second.updated, second.unchanged, second.vanished) == (1, 1, 8, 1)
    assert second.files_unchanged == 1  # b.jsonl was not read again
    assert counts(warehouse) == {"active": 15, "vanished": 1}
    assert warehouse.query("SELECT question FROM entries WHERE record_key = '3'") == [("Edited question?",)]

    # The vanished record comes back: active again, nothing duplicated.
    jsonl(data / "a.jsonl", [*rows(10), {"id": 50, "q": "New?", "o": ["x", "y"], "a": "b"}])
    third = collect_all(warehouse, loaded)["s"]
    assert third.updated == 2 and counts(warehouse) == {"active": 16}

    # A removed file: its records vanish.
    (data / "b.jsonl").unlink()
    collect_all(warehouse, loaded)
    assert counts(warehouse) == {"active": 11, "vanished": 5}


def test_a_record_that_turns_bad_is_marked_quarantined(tmp_path: Path, warehouse) -> None:
    data = jsonl(tmp_path / "a.jsonl", rows(3))
    loaded = load_config(
        write_config(tmp_path, [{"name": "s", "paths": [str(data)], "language": "en", "mapping": QA}])
    )
    collect_all(warehouse, loaded)
    bad = rows(3)
    bad[1]["a"] = "Z"
    jsonl(data, bad)
    collect_all(warehouse, loaded)
    assert counts(warehouse) == {"active": 2, "quarantined": 1}
    assert warehouse.query("SELECT record_key, reason FROM quarantine") == [("1", "answer_out_of_range")]
    jsonl(data, rows(3))  # fixed upstream: back to active, quarantine row gone
    collect_all(warehouse, loaded)
    assert counts(warehouse) == {"active": 3}
    assert warehouse.query("SELECT count(*) FROM quarantine") == [(0,)]


def test_crash_mid_run_then_rerun_finishes_without_duplicates(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a", "b", "c"):
        jsonl(data / f"{name}.jsonl", rows(250, start=1000 * ord(name)))
    (data / "c.jsonl").write_text((data / "c.jsonl").read_text() + "{broken\n")
    loaded = load_config(
        write_config(
            tmp_path,
            [{"name": "s", "paths": ["data/*.jsonl"], "language": "en", "mapping": QA}],
            collect={"batch_size": 100},
        )
    )
    path = tmp_path / "wh.duckdb"
    original = Warehouse.write_batch
    calls = {"n": 0}

    def crashing(self, **kw):
        calls["n"] += 1
        if calls["n"] == 5:  # mid-way through b.jsonl
            raise KeyboardInterrupt("killed")
        return original(self, **kw)

    monkeypatch.setattr(Warehouse, "write_batch", crashing)
    with Warehouse(path) as wh, pytest.raises(KeyboardInterrupt):
        collect_all(wh, loaded, run_id="crashed")
    monkeypatch.setattr(Warehouse, "write_batch", original)

    with Warehouse(path) as wh:
        partial = wh.query("SELECT count(*) FROM entries")[0][0]
        assert 0 < partial < 750  # committed batches survived, the rest did not
        report = collect_all(wh, loaded)["s"]
        assert report.files_unchanged == 1  # a.jsonl was complete before the crash
        assert wh.query("SELECT count(*), count(DISTINCT entry_id) FROM entries") == [(750, 750)]
        assert wh.query("SELECT reason FROM quarantine") == [("malformed_json",)]
        assert wh.query("SELECT status FROM runs WHERE run_id = 'crashed'") == [("crashed",)]
        assert collect_all(wh, loaded)["s"].status == "skipped"


def test_missing_files_fail_the_source_not_the_run(tmp_path: Path, warehouse) -> None:
    good = jsonl(tmp_path / "good.jsonl", rows(2))
    loaded = load_config(
        write_config(
            tmp_path,
            [
                {"name": "gone", "paths": ["nowhere/missing.jsonl"], "language": "en", "mapping": QA},
                {"name": "noglob", "paths": ["nowhere/*.jsonl"], "language": "en", "mapping": QA},
                {"name": "good", "paths": [str(good)], "language": "en", "mapping": QA},
            ],
        )
    )
    reports = collect_all(warehouse, loaded)
    assert reports["gone"].status == "failed" and "file not found" in reports["gone"].error
    assert reports["noglob"].status == "failed" and "no files match" in reports["noglob"].error
    assert reports["good"].added == 2
    state = dict(warehouse.query("SELECT source, status FROM source_state"))
    assert state == {"gone": "failed", "noglob": "failed", "good": "complete"}


def test_unreadable_json_file_is_quarantined_whole(tmp_path: Path, warehouse) -> None:
    (tmp_path / "broken.json").write_text('{"items": [')
    loaded = load_config(
        write_config(
            tmp_path,
            [
                {
                    "name": "s",
                    "paths": ["broken.json"],
                    "language": "en",
                    "record_path": "items",
                    "mapping": QA,
                }
            ],
        )
    )
    report = collect_all(warehouse, loaded)["s"]
    assert report.status == "failed" and "every record was quarantined (file_unreadable 1)" in report.error
    assert warehouse.query("SELECT locator, reason FROM quarantine") == [("file", "file_unreadable")]


def test_a_source_whose_every_record_is_quarantined_fails_until_it_yields(tmp_path: Path, warehouse) -> None:
    no_answers = [{**r, "a": ""} for r in rows(3)]
    jsonl(tmp_path / "s.jsonl", no_answers)
    loaded = load_config(
        write_config(tmp_path, [{"name": "s", "paths": ["s.jsonl"], "language": "en", "mapping": QA}])
    )
    first = collect_all(warehouse, loaded)["s"]
    assert first.status == "failed" and first.error is not None
    assert "every record was quarantined (missing_answer 3)" in first.error
    assert "globmed quarantine --source s" in first.error
    again = collect_all(warehouse, loaded)["s"]  # not skipped as done: it fails again, visibly
    assert again.status == "failed" and "missing_answer 3" in (again.error or "")
    jsonl(tmp_path / "s.jsonl", rows(3))
    mended = collect_all(warehouse, loaded)["s"]
    assert (mended.status, mended.added) == ("collected", 3)
    assert warehouse.query("SELECT count(*) FROM quarantine") == [(0,)]


def test_csv_options_written_as_a_python_dict_are_read(tmp_path: Path, warehouse) -> None:
    (tmp_path / "q.csv").write_text(
        "id,question,options,answer\n"
        "1,Which drug is a loop diuretic?,\"{'A': 'Furosemide', 'B': 'Spironolactone'}\",A\n"
        "2,Which vitamin is fat-soluble?,\"{'A': 'Vitamin C', 'B': 'Vitamin K'}\",B\n",
        encoding="utf-8",
    )
    options = {"field": "options", "style": "letter_dict"}
    mapping = {
        "task": "mcqa",
        "key": "id",
        "question": "question",
        "options": options,
        "answer": {"field": "answer"},
    }
    loaded = load_config(
        write_config(tmp_path, [{"name": "s", "paths": ["q.csv"], "language": "en", "mapping": mapping}])
    )
    report = collect_all(warehouse, loaded)["s"]
    assert (report.status, report.added, report.quarantined) == ("collected", 2, 0)
    assert warehouse.query("SELECT options FROM entries ORDER BY record_key")[0] == (
        ["Furosemide", "Spironolactone"],
    )


def test_ten_megabyte_record_is_quarantined(tmp_path: Path, warehouse) -> None:
    big = {"id": 1, "q": "x" * (10 << 20), "o": ["a", "b"], "a": "a"}
    jsonl(tmp_path / "big.jsonl", [big, *rows(2, start=5)])
    loaded = load_config(
        write_config(tmp_path, [{"name": "s", "paths": ["big.jsonl"], "language": "en", "mapping": QA}])
    )
    report = collect_all(warehouse, loaded)["s"]
    assert (report.added, report.by_reason) == (2, {"record_too_large": 1})


def test_hub_source_reads_a_local_snapshot(tmp_path: Path, warehouse) -> None:
    snap = tmp_path / "snapshot"
    (snap / "data").mkdir(parents=True)
    jsonl(snap / "data" / "train.jsonl", rows(4))
    jsonl(snap / "data" / "test.jsonl", rows(2, start=10))
    (snap / "README.md").write_text("# card")
    loaded = load_config(
        write_config(
            tmp_path,
            [
                {
                    "name": "hub",
                    "kind": "hub",
                    "repo_id": "org/ds",
                    "local_path": "snapshot",
                    "files": ["data/*.jsonl"],
                    "language": "en",
                    "split": {"pattern": r"/(train|test)\.jsonl$"},
                    "mapping": QA,
                }
            ],
        )
    )
    report = collect_all(warehouse, loaded)["hub"]
    assert (report.status, report.added, report.files) == ("collected", 6, 2)
    assert dict(warehouse.query("SELECT split, count(*) FROM entries GROUP BY 1")) == {"train": 4, "test": 2}


def test_unreachable_hub_fails_fast_with_a_clear_message(tmp_path: Path, warehouse) -> None:
    loaded = load_config(
        write_config(
            tmp_path,
            [
                {
                    "name": "hub",
                    "kind": "hub",
                    "repo_id": "org/ds",
                    "endpoint": "http://127.0.0.1:9",
                    "language": "en",
                    "mapping": QA,
                }
            ],
        )
    )
    report = collect_all(warehouse, loaded)["hub"]
    assert report.status == "failed"
    assert "cannot reach dataset repo 'org/ds'" in report.error and "127.0.0.1:9" in report.error


def test_older_warehouse_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    first = list_migrations()[0]
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)"
    )
    con.execute(first[2].read_text())
    con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [first[0], first[1]])
    con.close()
    with pytest.raises(Exception, match="open it once for writing"):
        Warehouse(path, read_only=True)
    with Warehouse(path) as wh:
        assert wh.schema_version() == list_migrations()[-1][0]
        assert wh.query("SELECT count(*) FROM v_entries") == [(0,)]


def test_raw_payloads_move_to_zstd_with_their_rows_unchanged(tmp_path: Path) -> None:
    """Migration 13 makes raw_records again (a column's compression is fixed at its table's
    making): a warehouse of version 12 keeps every raw row and its key's uniqueness."""
    path = tmp_path / "v12.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMPTZ)"
    )
    for version, name, sql in list_migrations():
        if version <= 12:
            con.execute(sql.read_text())
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [version, name])
    con.execute(
        "INSERT INTO raw_records SELECT 's', 'k' || i, 'a.jsonl', 'L' || i, md5(i::VARCHAR), "
        "'{\"q\": \"' || repeat('why ', 50) || i || '\"}', 'r1', 'r1', 'r2', "
        "CASE WHEN i % 7 = 0 THEN 'r2' END FROM range(3000) t(i)"
    )
    rows = "SELECT * FROM raw_records ORDER BY record_key"
    before = con.execute(rows).fetchall()
    con.close()
    with Warehouse(path) as wh:
        assert wh.schema_version() == list_migrations()[-1][0]
        assert wh.query(rows) == before
        wh.con.execute("CHECKPOINT")
        storage = "SELECT DISTINCT compression FROM pragma_storage_info('raw_records') WHERE column_name = "
        kinds = wh.query(storage + "'payload'")
        assert ("ZSTD",) in kinds
        with pytest.raises(duckdb.ConstraintException):
            wh.con.execute("INSERT INTO raw_records SELECT * FROM raw_records LIMIT 1")


def test_shared_translations_link_to_parents(tmp_path: Path, warehouse) -> None:
    data = tmp_path / "d"
    shutil.copytree(ROOT / "data" / "demo", data)
    jsonl(
        data / "ja.jsonl",
        [{"problem_id": "p1", "problem_text": "問題", "choices": ["甲", "乙"], "answer": ["a"]}],
    )
    jsonl(
        data / "en.jsonl",
        [{"problem_id": "p1", "problem_text_en": "Q", "choices_en": ["A", "B"], "answer": ["a"]}],
    )
    loaded = load_config(
        write_config(
            tmp_path,
            [
                {"name": "ja", "paths": ["d/ja.jsonl"], "language": "ja", "preset": "problem_choices"},
                {
                    "name": "en",
                    "paths": ["d/en.jsonl"],
                    "language": "en",
                    "preset": "problem_choices_en",
                    "origin": "translated",
                    "translation_of": {"source": "ja", "key": "problem_id"},
                },
            ],
        )
    )
    collect_all(warehouse, loaded)
    assert warehouse.query(
        "SELECT c.origin, p.language FROM entries c JOIN entries p ON c.parent_entry_id = p.entry_id"
    ) == [("translated", "ja")]


def test_exclude_patterns_hold_for_absolute_paths_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    """A source path from ${VAR} (absolute) excludes the same files as a relative one."""
    from globmed_data.config import load_config
    from globmed_data.sources.locate import locate_files

    data = tmp_path / "elsewhere" / "set"
    data.mkdir(parents=True)
    for name in ("a.jsonl", "a_translate.jsonl", "sub/b.jsonl"):
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text("{}\n")
    cfg_dir = tmp_path / "configs"
    cfg_dir.mkdir()
    source = {
        "name": "s",
        "paths": ["${DATA_ROOT:-../elsewhere/set}/**/*.jsonl"],
        "exclude": ["*_translate.jsonl"],
        "preset": "problem_choices",
        "language": "en",
    }
    config = write_config(cfg_dir, [source])
    relative = [f.rel for f in locate_files(load_config(config).config.sources[0], load_config(config)).files]
    monkeypatch.setenv("DATA_ROOT", str(data))
    loaded = load_config(config)
    absolute = [f.rel for f in locate_files(loaded.config.sources[0], loaded).files]
    assert relative == absolute == ["a.jsonl", "sub/b.jsonl"]


def test_a_key_part_links_translations_across_differently_named_files(tmp_path: Path, warehouse) -> None:
    """x_local.jsonl and x_english.jsonl, keyed by the same index: one source for each side."""

    def items(stem: str, word: str) -> list[dict]:
        return [{"idx": i, "q": f"{word} {stem} {i}?", "o": ["a", "b"], "a": "a"} for i in range(2)]

    for stem in ("cardio", "neuro"):
        jsonl(tmp_path / f"{stem}_local.jsonl", items(stem, "Swali"))
        jsonl(tmp_path / f"{stem}_english.jsonl", items(stem, "Question"))
    mapping = {**QA, "key": [{"field": "_file", "pattern": r"^(.+)_(?:local|english)\.jsonl$"}, "idx"]}
    loaded = load_config(write_config(tmp_path, [
        {"name": "local", "paths": ["*_local.jsonl"], "language": "sw", "mapping": mapping},
        {"name": "english", "paths": ["*_english.jsonl"], "language": "en", "mapping": mapping,
         "origin": "translated",
         "translation_of": {"source": "local", "key": [{"field": "_file", "replace": ["_english.jsonl$", ""]},
                                                       "idx"]}},
    ]))  # fmt: skip
    reports = collect_all(warehouse, loaded)
    assert reports["local"].added == 4 and reports["english"].added == 4
    keys = [k for (k,) in warehouse.query("SELECT record_key FROM entries WHERE source = 'local' ORDER BY 1")]
    assert keys == ["cardio:0", "cardio:1", "neuro:0", "neuro:1"]
    linked = warehouse.query(
        "SELECT t.question, p.question FROM entries t JOIN entries p ON p.entry_id = t.parent_entry_id "
        "WHERE t.source = 'english' ORDER BY 1"
    )
    assert linked[0] == ("Question cardio 0?", "Swali cardio 0?") and len(linked) == 4


@pytest.mark.parametrize(
    ("part", "said"),
    [
        ({"field": "_file"}, "exactly one of `pattern` (one capture group) or `replace`"),
        ({"field": "_file", "pattern": "no group"}, "needs exactly one capture group"),
        ({"field": "_file", "replace": ["(", ""]}, "not a valid regex"),
    ],
)
def test_a_key_part_is_checked_before_any_work(tmp_path: Path, part, said) -> None:
    from globmed_data.settings import ConfigError

    config = write_config(
        tmp_path, [{"name": "s", "paths": ["x"], "language": "en", "mapping": {**QA, "key": [part]}}]
    )
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_config(config)
