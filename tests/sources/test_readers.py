import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from globmed_data.sources.readers import FileReadError, detect_format, read_file


def read(path: Path, fmt: str, record_path: str | None = None, max_bytes: int = 1 << 20, encoding="utf-8"):
    return list(read_file(path, fmt, encoding=encoding, record_path=record_path, max_record_bytes=max_bytes))


def test_jsonl_bom_malformed_encoding_size_and_non_objects(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps({"id": 1}).encode() + b"\n"
        b'{"id": 2,\n'
        b"\n"
        + json.dumps({"id": "caf\xe9"}, ensure_ascii=False).encode("latin-1")
        + b"\n"
        + json.dumps({"id": 4, "big": "x" * 5000}).encode()
        + b"\n"
        b"[1, 2]\n" + json.dumps({"id": 6}).encode() + b"\n"
    )
    items = read(path, "jsonl", max_bytes=2048)
    assert [(i.locator, i.reason) for i in items] == [
        ("L1", None),
        ("L2", "malformed_json"),
        ("L4", "bad_encoding"),
        ("L5", "record_too_large"),
        ("L6", "not_an_object"),
        ("L7", None),
    ]
    assert items[0].record == {"id": 1}
    assert items[3].size > 5000 and "5" in items[3].detail


def test_jsonl_in_declared_latin1(tmp_path: Path) -> None:
    path = tmp_path / "l1.jsonl"
    path.write_bytes(json.dumps({"q": "fièvre"}, ensure_ascii=False).encode("latin-1") + b"\n")
    assert read(path, "jsonl", encoding="latin-1")[0].record == {"q": "fièvre"}


def test_csv_and_tsv(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes('\ufeffid,q\n1,"multi\nline"\n2\n'.encode() + b"3,caf\xe9\n")
    items = read(path, "csv")
    assert items[0].record == {"id": "1", "q": "multi\nline"}
    assert [i.reason for i in items[1:]] == ["malformed_row", "bad_encoding"]
    tsv = tmp_path / "a.tsv"
    tsv.write_text("id\tq\n1\ta,b\n")
    assert read(tsv, "tsv")[0].record == {"id": "1", "q": "a,b"}


def test_parquet_streams_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"id": list(range(10_000)), "q": ["x"] * 10_000}), path)
    items = read(path, "parquet")
    assert (
        len(items) == 10_000 and items[-1].locator == "R9999" and items[-1].record == {"id": 9999, "q": "x"}
    )


def test_json_record_paths(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"exams": {"E1": {"data": [{"q": 1}, {"q": 2}]}, "E2": {"data": [{"q": 3}]}}}))
    items = read(path, "json", "exams.*.data")
    assert [(i.locator, i.extra["_path"], i.record["q"]) for i in items] == [
        ("exams/E1/data#0", "E1", 1),
        ("exams/E1/data#1", "E1", 2),
        ("exams/E2/data#0", "E2", 3),
    ]
    with pytest.raises(FileReadError, match="record_path step 'missing'"):
        read(path, "json", "missing")
    array = tmp_path / "b.json"
    array.write_text(json.dumps([{"q": 1}, "oops"]))
    assert [i.reason for i in read(array, "json")] == [None, "not_an_object"]
    broken = tmp_path / "c.json"
    broken.write_text("[{")
    with pytest.raises(FileReadError, match="not valid JSON"):
        read(broken, "json")


def test_format_detection(tmp_path: Path) -> None:
    assert detect_format(Path("x.NDJSON"), "auto") == "jsonl"
    assert detect_format(Path("x.txt"), "jsonl") == "jsonl"
    with pytest.raises(FileReadError, match="set `format`"):
        detect_format(Path("x.txt"), "auto")


def test_jsonl_streams_without_loading_the_file(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("w") as fh:
        for i in range(50_000):
            fh.write(json.dumps({"id": i}) + "\n")
    it = read_file(path, "jsonl", encoding="utf-8", record_path=None, max_record_bytes=1024)
    first = next(it)  # a generator: nothing past the first line has been parsed
    assert first.record == {"id": 0}
    assert sum(1 for _ in it) == 49_999
