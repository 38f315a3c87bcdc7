import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from globmed_data.config import config_json_schema, load_config, parse_config
from globmed_data.settings import ConfigError
from tests.helpers import DEMO_CONFIG, ROOT

MCQA = {"task": "mcqa", "question": "q", "options": {"field": "o"}, "answer": {"field": "a"}}


def _source(**over):
    return {"name": "s", "paths": ["x.jsonl"], "language": "en", "mapping": MCQA, **over}


def _error(data) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(data, "test.yaml")
    return str(exc.value)


def test_shipped_configs_are_valid() -> None:
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        loaded = load_config(path)
        assert loaded.config.sources, path


def test_json_schema_file_is_current_and_accepts_configs() -> None:
    committed = json.loads((ROOT / "schemas" / "pipeline-config.schema.json").read_text())
    assert committed == json.loads(json.dumps(config_json_schema())), (
        "schemas/pipeline-config.schema.json is stale: regenerate it with "
        "`globmed config schema > schemas/pipeline-config.schema.json`"
    )
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), committed)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"sources": [_source(langauge="en")]}, "sources[s].langauge: unknown key"),
        ({"sources": [_source(language=None)]}, "`language` is required"),
        ({"sources": [_source(preset="nope")]}, "unknown preset 'nope'"),
        ({"sources": [_source(), _source()]}, "source names must be unique; repeated: s"),
        ({"sources": [_source(name="Bad Name")]}, "sources[Bad Name].name"),
        ({"sources": [_source(split={"pattern": "(unclosed"})]}, "not a valid regex"),
        ({"sources": [_source(split={"pattern": "no-group"})]}, "exactly one capture group"),
        (
            {"sources": [_source(mapping={"task": "mcqa", "question": "q"})]},
            "needs mapping fields: options, answer",
        ),
        ({"sources": [_source(mapping={"task": "nli", "premise": "p"})]}, "hypothesis, label"),
        ({"sources": [_source(origin="translated")]}, "needs `translation_of`"),
        (
            {"sources": [_source(origin="translated", translation_of={"source": "zz", "key": "id"})]},
            "translation_of.source 'zz' is not a source",
        ),
        ({"sources": [_source(encoding="utf-99")]}, "unknown encoding"),
        ({"sources": [_source(format="xml")]}, "sources[s].format"),
        ({"sources": []}, "sources"),
        ({"collect": {"batch_size": 0}, "sources": [_source()]}, "collect.batch_size"),
        ([], "expected a mapping"),
    ],
)
def test_invalid_configs_are_refused_with_a_pointed_message(data, fragment) -> None:
    message = _error(data)
    assert message.startswith("invalid configuration in test.yaml")
    assert fragment in message


def test_kind_defaults_to_files_and_hub_is_recognised() -> None:
    hub = {k: v for k, v in _source(name="h").items() if k != "paths"}
    config = parse_config({"sources": [_source(), {**hub, "kind": "hub", "repo_id": "o/r"}]})
    assert [s.kind for s in config.sources] == ["files", "hub"]
    assert config.sources[1].revision == "main"


def test_preset_mapping_can_be_overridden() -> None:
    config = parse_config(
        {
            "sources": [
                {
                    "name": "s",
                    "paths": "a.jsonl",
                    "language": "ja",
                    "preset": "problem_choices",
                    "mapping": {"key": ["_file", "problem_id"]},
                }
            ]
        }
    )
    mapping = config.sources[0].resolved_mapping()
    assert mapping.key == ["_file", "problem_id"]
    assert mapping.question == "problem_text"


def test_spec_hash_changes_with_the_mapping() -> None:
    a = parse_config({"sources": [_source()]}).sources[0]
    b = parse_config({"sources": [_source(mapping={**MCQA, "rationale": "why"})]}).sources[0]
    assert a.spec_hash() != b.spec_hash()
    assert a.spec_hash() == parse_config({"sources": [_source()]}).sources[0].spec_hash()


def test_env_expansion_and_relative_paths(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DATA_ROOT", "/data/x")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"sources": [_source()]}))
    loaded = load_config(tmp_path / "c.yaml")
    assert loaded.resolve("${DATA_ROOT}/a.json") == Path("/data/x/a.json")
    assert loaded.resolve("${UNSET_VAR_X:-rel}/a.json") == tmp_path / "rel" / "a.json"
    with pytest.raises(ConfigError, match="UNSET_VAR_X is not set"):
        loaded.resolve("${UNSET_VAR_X}/a.json")


def test_missing_or_broken_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("sources: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_demo_config_loads() -> None:
    loaded = load_config(DEMO_CONFIG)
    assert {s.name for s in loaded.config.sources} >= {"demo_dosing", "demo_fever", "demo_bmi"}


def test_an_error_names_the_source_by_its_name() -> None:
    qa = {"task": "open_qa", "question": "q", "answer_text": "a"}
    good = {"name": "good", "paths": ["x"], "language": "en", "mapping": qa}
    bad = {"name": "medqa_en", "paths": ["x"], "language": "en", "mapping": {"task": "mcqa", "question": "q"}}
    with pytest.raises(ConfigError) as exc:
        parse_config({"sources": [good, bad, {"paths": ["x"]}]})
    said = str(exc.value)
    assert "sources[medqa_en]: task 'mcqa' needs mapping fields: options, answer" in said
    assert "sources.2.name: Field required" in said  # no name to give: its position
