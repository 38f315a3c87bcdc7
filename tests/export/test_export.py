"""Versioned export: fingerprints, semver, layout, card, determinism, split stability, diff,
publication to a local git repository and (through a named test double of the write API) to a
Hub endpoint, and pulls through olah with the real huggingface_hub and datasets clients."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import HfApi
from typer.testing import CliRunner

from globmed_data import faults
from globmed_data.cli import app
from globmed_data.config import LoadedConfig, load_config, parse_config
from globmed_data.dedup.stage import run_dedup
from globmed_data.export import snapshot as snapshot_module
from globmed_data.export.layout import MANIFEST, VerificationError, verify_folder
from globmed_data.export.pull import pull_version
from globmed_data.export.stage import run_export
from globmed_data.export.versions import get_version, list_versions
from globmed_data.langid.stage import run_langid
from globmed_data.quality.stage import run_quality
from globmed_data.settings import ConfigError
from globmed_data.warehouse import Warehouse
from tests.helpers import DEMO_CONFIG, ROOT, collect_all
from tests.hub_double import HubWriteDouble

runner = CliRunner()
quiet = lambda _m: None  # noqa: E731


def _demo_copy(folder: Path, **export: object) -> Path:
    """The demo config and data in `folder`, with export settings merged in."""
    shutil.copytree(ROOT / "data" / "demo", folder / "data" / "demo", dirs_exist_ok=True)
    (folder / "configs").mkdir(exist_ok=True)
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["export"] = {**config.get("export", {}), **export}
    path = folder / "configs" / "demo.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    return path


def _curate(wh: Warehouse, loaded: LoadedConfig) -> None:
    collect_all(wh, loaded)
    run_langid(wh, loaded, "r", log=quiet)
    run_quality(wh, loaded, "r", log=quiet)
    run_dedup(wh, loaded, "r", log=quiet)


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def curated(tmp_path: Path) -> Iterator[tuple[Warehouse, LoadedConfig, Path]]:
    config = _demo_copy(tmp_path, local={"root": str(tmp_path / "repos")})
    loaded = load_config(config)
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        _curate(wh, loaded)
        yield wh, loaded, config


def test_first_export_writes_a_loadable_versioned_layout(curated) -> None:
    wh, loaded, _ = curated
    result = run_export(wh, loaded, "r1", publish=False, log=quiet)
    assert result["version"] == "1.0.0" and result["created"] and result["status"] == "draft"
    curated_count = wh.query("SELECT count(*) FROM v_curated_entries")[0][0]
    assert result["entries"] == curated_count == 288
    folder = Path(result["folder"])
    manifest = verify_folder(folder)  # every checksum, and the fingerprint recomputed from rows
    assert manifest["fingerprint"] == result["fingerprint"]
    assert sum(f["rows"] for f in manifest["files"]) == 288
    paths = [f["path"] for f in manifest["files"]]
    assert "data/mcqa/en/train-00000-of-00001.parquet" in paths
    assert all(p.startswith("data/") and p.endswith(".parquet") for p in paths)
    table = pq.read_table(folder / "data/mcqa/en/train-00000-of-00001.parquet")
    assert table.column_names[:3] == ["entry_id", "source", "language"]
    assert "options" in table.column_names and "premise" not in table.column_names
    ids = table["entry_id"].to_pylist()
    assert ids == sorted(ids)
    assert pq.ParquetFile(folder / paths[0]).metadata.row_group(0).column(0).compression == "ZSTD"
    # no entry excluded upstream reaches the export
    ids_out = {
        r["entry_id"] for f in manifest["files"] for r in pq.read_table(folder / f["path"]).to_pylist()
    }
    excluded = {r[0] for r in wh.query("SELECT entry_id FROM dedup_members WHERE decision <> 'kept'")}
    rejected = {r[0] for r in wh.query("SELECT entry_id FROM quality_results WHERE NOT passed")}
    assert excluded and rejected and not (ids_out & (excluded | rejected))

    card = (folder / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["license"] == "cc0-1.0" and front["size_categories"] == ["n<1K"]
    assert {c["config_name"] for c in front["configs"]} == {"mcqa", "nli", "open_qa", "yes_no"}
    assert {"en", "sw", "zu"} <= set(front["language"])
    assert "Low-resource languages (sw, yo, zu)" in card and "Training entries removed as test-set" in card
    assert "| duplicate_options | 1 |" in card and "First version." in card and "@misc{" in card


def test_the_snapshot_reads_the_curated_view_row_for_row(curated) -> None:
    """The snapshot joins the texts to the view's ids (faster at scale): the same rows, values
    and order as reading every column through the view, splits drawn for `auto` included."""
    wh, loaded, _ = curated
    run_export(wh, loaded, "r1", publish=False, log=quiet)  # stores the drawn splits
    through_view = wh.arrow(
        "SELECT c.entry_id, c.source, c.task, c.curated_language AS language, "
        "coalesce(s.split, c.split) AS split, c.question, c.context, c.options, c.answer_indices, "
        "c.label, c.premise, c.hypothesis, c.answer, c.rationale, c.origin, c.parent_entry_id, c.license "
        "FROM v_curated_entries c LEFT JOIN export_splits s USING (entry_id) ORDER BY c.entry_id"
    )
    assert through_view.num_rows == 288
    assert wh.arrow(snapshot_module._CURATED).equals(through_view)


def test_the_card_counts_translations_by_the_language_they_came_from(curated) -> None:
    """The card's provenance table: curated entries by origin, language and the declared
    language of the entry each translation was made from (blank where that entry is unknown)."""
    wh, loaded, _ = curated
    first = Path(run_export(wh, loaded, "r1", publish=False, log=quiet)["folder"])
    assert "Every entry is native" in (first / "README.md").read_text()
    curated_ids = [r[0] for r in wh.query("SELECT entry_id FROM v_curated_entries ORDER BY entry_id")]
    parent = {
        lang: wh.query("SELECT min(entry_id) FROM entries WHERE language = ?", [lang])[0][0]
        for lang in ("en", "sw")
    }
    made = dict(zip(curated_ids, [parent["en"], parent["en"], parent["sw"], "gone"], strict=False))
    for child, parent_id in made.items():
        wh.con.execute(
            "UPDATE entries SET origin = 'translated', parent_entry_id = ? WHERE entry_id = ?",
            [parent_id, child],
        )
    run_quality(wh, loaded, "r2", log=quiet)  # a translation meets quality's translation rules
    run_dedup(wh, loaded, "r2", log=quiet)
    expected = wh.query(
        "SELECT c.origin, c.curated_language, p.language, count(*) FROM v_curated_entries c "
        "LEFT JOIN entries p ON p.entry_id = c.parent_entry_id GROUP BY ALL ORDER BY ALL"
    )
    translated = [r for r in expected if r[0] == "translated"]
    assert sum(r[3] for r in translated) == 4 and {r[2] for r in translated} == {"en", "sw", None}
    card = (Path(run_export(wh, loaded, "r3", publish=False, log=quiet)["folder"]) / "README.md").read_text()
    table = card[card.index("| origin | language | translated_from | entries |") :].split("\n\n")[0]
    rows = [line.strip("| ").split(" | ") for line in table.splitlines()[2:]]
    assert rows == [[o, lang, src or "", f"{n:,}"] for o, lang, src, n in expected]


def test_unchanged_content_makes_no_version_and_changes_bump_semver(curated, tmp_path, monkeypatch) -> None:
    wh, loaded, config = curated
    first = run_export(wh, loaded, "r1", publish=False, log=quiet)
    again = run_export(wh, loaded, "r2", publish=False, log=quiet)
    assert (again["version"], again["created"]) == ("1.0.0", False)

    # A fix inside one entry (same ids): patch.
    bmi = tmp_path / "data" / "demo" / "bmi_open_qa.tsv"
    lines = bmi.read_text().splitlines()
    lines[1] = lines[1].replace("body-mass index", "body mass index", 1)
    bmi.write_text("\n".join(lines) + "\n")
    _curate(wh, loaded)
    patch = run_export(wh, loaded, "r3", publish=False, log=quiet)
    assert patch["version"] == "1.0.1"
    record = get_version(wh, "globmed/demo", "1.0.1")
    assert record["bump"] == "patch" and record["parent_version"] == "1.0.0"
    assert (record["changes"]["added"], record["changes"]["removed"], record["changes"]["changed"]) == (
        0,
        0,
        1,
    )

    # A source removed: entries removed, minor.
    spec = yaml.safe_load(config.read_text())
    spec["sources"] = [s for s in spec["sources"] if s["name"] != "demo_fever"]
    config.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    loaded = load_config(config)
    with wh.transaction() as con:  # what a source removed from the config leaves behind
        con.execute("UPDATE entries SET status = 'vanished' WHERE source = 'demo_fever'")
    run_dedup(wh, loaded, "r4", log=quiet)  # the clusters are decided again: export refuses stale ones
    minor = run_export(wh, loaded, "r4", publish=False, log=quiet)
    assert minor["version"] == "1.1.0" and minor["entries"] == first["entries"] - 20
    changes = get_version(wh, "globmed/demo", "1.1.0")["changes"]
    assert changes["removed"] == 20 and changes["changed"] == 0
    assert {g["task"] for g in changes["by_group"] if g["removed"]} == {"nli"}

    # A schema change: major.
    monkeypatch.setattr(snapshot_module, "EXPORT_SCHEMA_VERSION", 2)
    major = run_export(wh, loaded, "r5", publish=False, log=quiet)
    assert major["version"] == "2.0.0"
    assert [v["version"] for v in list_versions(wh, "globmed/demo")] == ["1.0.0", "1.0.1", "1.1.0", "2.0.0"]


def test_two_exports_of_the_same_state_are_byte_identical(tmp_path: Path) -> None:
    outputs = []
    for name in ("one", "two"):
        folder = tmp_path / name
        folder.mkdir()
        loaded = load_config(_demo_copy(folder, max_shard_mb=0.002))  # small bound: several shards
        with Warehouse(folder / "wh.duckdb") as wh:
            _curate(wh, loaded)
            outputs.append(run_export(wh, loaded, "r", publish=False, log=quiet))
    a, b = (Path(o["folder"]) for o in outputs)
    assert outputs[0]["fingerprint"] == outputs[1]["fingerprint"]
    assert _hashes(a) == _hashes(b)
    assert any("-00001-of-" in p for p in _hashes(a))  # the shard bound split a table


def test_auto_splits_are_seeded_and_never_move(curated, tmp_path) -> None:
    wh, loaded, config = curated
    run_export(wh, loaded, "r1", publish=False, log=quiet)
    first = dict(wh.query("SELECT entry_id, split FROM export_splits"))
    assert len(first) == 16  # demo_bmi says `split: auto`
    assert set(first.values()) <= {"train", "validation", "test"}
    # Another seed and a new entry: old entries keep their split, the new one is drawn.
    spec = yaml.safe_load(config.read_text())
    spec["export"]["splits"] = {"seed": 99, "ratios": {"train": 0.5, "test": 0.5}}
    config.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    bmi = tmp_path / "data" / "demo" / "bmi_open_qa.tsv"
    header = bmi.read_text().splitlines()[0].split("\t")
    row = {c: "" for c in header} | {"id": "bmi-new", "lang": "en"}
    row[header[2]] = "What is the body mass index of an adult weighing 81 kg who is 1.80 m tall?"
    row[header[3]] = "25.0 kg/m2"
    with bmi.open("a") as f:
        f.write("\t".join(row[c] for c in header) + "\n")
    loaded = load_config(config)
    _curate(wh, loaded)
    second = run_export(wh, loaded, "r2", publish=False, log=quiet)
    assert second["version"] == "1.1.0"
    now = dict(wh.query("SELECT entry_id, split FROM export_splits"))
    assert len(now) == 17 and {k: now[k] for k in first} == first
    moved = wh.query(
        "SELECT count(*) FROM dataset_version_entries a JOIN dataset_version_entries b USING (entry_id) "
        "WHERE a.version = '1.0.0' AND b.version = '1.1.0' AND a.split <> b.split"
    )[0][0]
    assert moved == 0


def test_export_config_is_checked_before_any_work() -> None:
    base = {"version": 1, "sources": [{"name": "s", "paths": ["x.jsonl"], "preset": "nli", "language": "en"}]}
    for export, message in (
        ({"repo_id": "no-owner"}, "owner/name"),
        ({"splits": {"ratios": {"train": 0.9, "test": 0.2}}}, "sum to 1"),
        ({"splits": {"ratios": {"train": 0.9, "dev": 0.1}}}, "unknown split"),
        ({"config_per_source": ["nope"]}, "export.config_per_source"),
        ({"hub": {"repo_id": "a b/c"}}, "owner/name"),
        ({"max_shard_mb": 0}, "greater than 0"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_config({**base, "export": export}, "test")


def test_tampered_files_fail_verification(curated) -> None:
    wh, loaded, _ = curated
    folder = Path(run_export(wh, loaded, "r1", publish=False, log=quiet)["folder"])
    shard = next((folder / "data" / "nli").rglob("*.parquet"))
    rows = pq.read_table(shard)
    pq.write_table(rows.slice(1), shard, compression="zstd")
    with pytest.raises(VerificationError, match="checksum differs"):
        verify_folder(folder)
    # A consistent manifest with a row changed: the fingerprint recomputed from rows disagrees.
    manifest = json.loads((folder / MANIFEST).read_text())
    for f in manifest["files"]:
        if f["path"] == shard.relative_to(folder).as_posix():
            f["sha256"] = hashlib.sha256(shard.read_bytes()).hexdigest()
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(VerificationError, match="fingerprint"):
        verify_folder(folder)


# -- publication and pull ------------------------------------------------------------------------


def test_local_git_publish_then_pull_and_load_through_olah(olah, tmp_path: Path) -> None:
    import datasets

    url, root = olah
    loaded = load_config(_demo_copy(tmp_path, repo_id="globmed/local-pull", local={"root": str(root)}))
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        _curate(wh, loaded)
        result = run_export(wh, loaded, "r1", log=quiet)
        assert result["status"] == "published"
        published = wh.query_dicts("SELECT * FROM dataset_publications")
        assert [(p["target"], p["status"]) for p in published] == [("local", "published")]
        # Idempotent: publishing again finds the tag with the same content.
        assert run_export(wh, loaded, "r2", log=quiet)["status"] == "published"
        with wh.transaction() as con:  # an entry leaves the curated view: v1.1.0
            con.execute("UPDATE entries SET status = 'vanished' WHERE record_key = 'bmi-en-0'")
        run_dedup(wh, loaded, "r3", log=quiet)
        assert run_export(wh, loaded, "r3", log=quiet)["version"] == "1.1.0"
    repo = root / "datasets" / "globmed" / "local-pull"
    tags = subprocess.run(["git", "tag"], cwd=repo, capture_output=True, text=True).stdout.split()
    log = subprocess.run(["git", "log", "--format=%s"], cwd=repo, capture_output=True, text=True).stdout
    assert tags == ["v1.0.0", "v1.1.0"] and log.split() == [
        "globmed-data",
        "v1.1.0",
        "globmed-data",
        "v1.0.0",
    ]
    diff = runner.invoke(app, ["versions", "diff", "v1.0.0", "1.1.0", "-w", str(tmp_path / "wh.duckdb")])
    assert diff.exit_code == 0, diff.output
    assert "1 removed, 0 changed, 287 unchanged, 0 moved between splits" in diff.stdout
    assert "open_qa" in diff.stdout and "demo_bmi" in diff.stdout
    listed = runner.invoke(app, ["versions", "list", "-w", str(tmp_path / "wh.duckdb"), "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(v["version"], v["status"]) for v in json.loads(listed.stdout)] == [
        ("1.0.0", "published"),
        ("1.1.0", "published"),
    ]
    shown = runner.invoke(app, ["versions", "show", "v1.0.0", "-w", str(tmp_path / "wh.duckdb")])
    assert "local: published" in shown.stdout and result["fingerprint"] in shown.stdout
    missing = runner.invoke(app, ["versions", "show", "9.9.9", "-w", str(tmp_path / "wh.duckdb")])
    assert missing.exit_code == 2 and "versions: v1.0.0, v1.1.0" in missing.output

    out = tmp_path / "pulled"
    pulled = runner.invoke(
        app, ["pull", "globmed/local-pull", "--revision", "v1.0.0", "--endpoint", url, "--out", str(out),
              "--fingerprint", result["fingerprint"]]
    )  # fmt: skip
    assert pulled.exit_code == 0, pulled.output
    assert "verified" in pulled.output
    manifest = json.loads((out / MANIFEST).read_text())
    for config, meta in manifest["configs"].items():
        ds = datasets.load_dataset(str(out), config, cache_dir=str(tmp_path / "hf-cache"))  # no stale cache
        expected = {}
        for f in manifest["files"]:
            if f["config"] == config:
                expected[f["split"]] = expected.get(f["split"], 0) + f["rows"]
        assert {s: ds[s].num_rows for s in ds} == expected
        assert list(ds[next(iter(ds))].features) == meta["columns"]
    wrong = runner.invoke(
        app, ["pull", "globmed/local-pull", "-r", "v1.0.0", "--endpoint", url, "-o", str(tmp_path / "p2"),
              "--fingerprint", "0" * 64]
    )  # fmt: skip
    assert wrong.exit_code == 4 and "verification failed" in wrong.output


def test_load_dataset_by_revision_from_the_hub_endpoint(olah, tmp_path: Path) -> None:
    """What users run: load_dataset(repo, config, revision=tag), pointed at olah by HF_ENDPOINT."""
    url, root = olah
    loaded = load_config(_demo_copy(tmp_path, repo_id="globmed/by-revision", local={"root": str(root)}))
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        _curate(wh, loaded)
        result = run_export(wh, loaded, "r1", log=quiet)
    code = (
        "import datasets, json\n"
        "ds = datasets.load_dataset('globmed/by-revision', 'yes_no', revision='v1.0.0')\n"
        "print(json.dumps({s: ds[s].num_rows for s in ds}))\n"
    )
    env = {**os.environ, "HF_ENDPOINT": url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"test": 30}
    assert result["entries"] == 288


def test_hub_push_is_idempotent_resumable_and_pulls_back(olah, tmp_path: Path, monkeypatch) -> None:
    url, root = olah
    token = "hf_test_secret_token_123"
    monkeypatch.setenv("GLOBMED_TEST_HF_TOKEN", token)
    with HubWriteDouble(root, token) as hub:
        loaded = load_config(
            _demo_copy(
                tmp_path,
                repo_id="globmed/hub-push",
                local={"enabled": False},
                hub={"endpoint": hub.url, "token_env": "GLOBMED_TEST_HF_TOKEN", "private": True},
            )
        )
        with Warehouse(tmp_path / "wh.duckdb") as wh:
            _curate(wh, loaded)
            hub.fail_next_commit = "the storage backend is unavailable"
            failed = run_export(wh, loaded, "r1", log=quiet)
            record = get_version(wh, "globmed/hub-push", "1.0.0")
            assert failed["status"] == "failed" and record["status"] == "failed"
            assert "storage backend is unavailable" in record["error"] and token not in record["error"]
            assert record["published_at"] is None
            # The re-run retries the same version (no new one) and publishes it.
            retried = run_export(wh, loaded, "r2", log=quiet)
            assert (retried["version"], retried["created"], retried["status"]) == (
                "1.0.0",
                False,
                "published",
            )
            commits = hub.commits
            assert run_export(wh, loaded, "r3", log=quiet)["status"] == "published"
            assert hub.commits == commits  # the tag was there: nothing pushed again
            # A run killed between the Hub commit and its tag (the next version): the re-run tags it.
            with wh.transaction() as con:
                con.execute("UPDATE entries SET status = 'vanished' WHERE record_key = 'bmi-en-0'")
            run_dedup(wh, loaded, "r4", log=quiet)
            monkeypatch.setenv(faults.ENV, "export.hub_committed:1:raise")
            faults.reset()
            with pytest.raises(faults.InjectedFault):
                run_export(wh, loaded, "r4", log=quiet)
            monkeypatch.delenv(faults.ENV)
            assert get_version(wh, "globmed/hub-push", "1.1.0")["status"] == "draft"
            assert run_export(wh, loaded, "r5", log=quiet)["status"] == "published"
            tags = {t.name for t in HfApi(endpoint=hub.url, token=token).list_repo_refs(
                "globmed/hub-push", repo_type="dataset").tags}  # fmt: skip
            assert tags == {"v1.0.0", "v1.1.0"}
            assert hub.seen_tokens == {token}
            fingerprint = retried["fingerprint"]
    manifest = pull_version("globmed/hub-push", "v1.0.0", tmp_path / "out", endpoint=url)
    assert manifest["fingerprint"] == fingerprint and manifest["entries"] == 288


def test_hub_push_retries_when_the_answer_is_lost(tmp_path: Path, monkeypatch) -> None:
    """The Hub commits but the answer never arrives (503): the retry finds no tag, sees its files
    already there (huggingface_hub skips an empty commit) and tags: one version, one commit,
    published in one run."""
    import globmed_data.ops.retry as retry

    monkeypatch.setattr(retry, "delay", lambda attempt: 0.0)
    monkeypatch.setenv("GLOBMED_TEST_HF_TOKEN", "hf_token")
    with HubWriteDouble(tmp_path / "hub", "hf_token") as hub:
        loaded = load_config(
            _demo_copy(
                tmp_path,
                repo_id="globmed/hub-retry",
                local={"enabled": False},
                hub={"endpoint": hub.url, "token_env": "GLOBMED_TEST_HF_TOKEN"},
            )
        )
        with Warehouse(tmp_path / "wh.duckdb") as wh:
            _curate(wh, loaded)
            hub.lose_next_commit_answer = True
            result = run_export(wh, loaded, "r1", log=quiet)
            assert result["status"] == "published" and hub.commits == 1
            tags = (
                HfApi(endpoint=hub.url, token="hf_token")
                .list_repo_refs("globmed/hub-retry", repo_type="dataset")
                .tags
            )
            assert [t.name for t in tags] == ["v1.0.0"]


def test_a_source_can_have_a_config_of_its_own(tmp_path: Path) -> None:
    loaded = load_config(_demo_copy(tmp_path, config_per_source=["demo_facts"]))
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        _curate(wh, loaded)
        result = run_export(wh, loaded, "r", publish=False, log=quiet)
        by_config = get_version(wh, "globmed/demo", result["version"])["counts"]["by_config"]
    assert by_config["mcqa-demo_facts"] == 24 and by_config["mcqa"] == 222 - 24
    front = yaml.safe_load((Path(result["folder"]) / "README.md").read_text().split("---")[1])
    assert "mcqa-demo_facts" in [c["config_name"] for c in front["configs"]]


def test_hub_token_comes_from_a_prefect_secret_block(prefect_api, monkeypatch) -> None:
    from prefect.blocks.system import Secret

    from globmed_data.export.settings import HubTargetSettings
    from globmed_data.export.targets import hub_token
    from globmed_data.secrets import redact

    Secret(value="hf_from_block").save("globmed-test-hf-token", overwrite=True)
    monkeypatch.delenv("GLOBMED_UNSET_TOKEN", raising=False)
    settings = HubTargetSettings(token_env="GLOBMED_UNSET_TOKEN", token_secret="globmed-test-hf-token")
    assert hub_token(settings) == "hf_from_block"
    monkeypatch.setenv("GLOBMED_UNSET_TOKEN", "hf_from_env")
    assert hub_token(settings) == "hf_from_env"  # the environment wins
    assert redact("401 for token hf_from_env", "hf_from_env") == "401 for token ***"
