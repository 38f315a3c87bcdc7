"""The training flow on CPU with a tiny random model (tests/tiny_models.py): recipes refused before
work, examples from the train split only (nothing held out or linked to it), the benchmark's own
prompts, TRL's completion-only labels, determinism, a resumed kill, the adapter reloaded and
generating, the registry, the event, the CLI, and the gain measured through the benchmark flow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from globmed_data.bench.dataset import resolve_dataset
from globmed_data.bench.prompts import render
from globmed_data.cli import app
from globmed_data.settings import ConfigError
from globmed_data.train.examples import build_examples, completion_for, target_counts
from globmed_data.train.leakage import HeldOut, LeakError, assert_no_leak, held_out_ids
from globmed_data.train.recipe import MixingRecipe, Recipe, load_recipe
from tests.bench.versions import mcqa, nli, open_qa, write_version, yes_no
from tests.helpers import needs_ray

pytest.importorskip("trl", reason="the training tests need the train extra (trl, peft): make install")

runner = CliRunner()


def _ids(rows: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [{**r, "entry_id": prefix + r["entry_id"]} for r in rows]


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> Path:
    """Train: 12 en MCQA, 4 sw MCQA, 3 yes/no, 2 NLI, 1 open QA, plus two entries linked to the
    test split (the parent of a test translation, a translation of a test entry). Test: 3 en MCQA
    (one a translation of a train entry), 1 validation entry."""
    train_en = mcqa("en", [[i % 4] for i in range(12)])
    test = _ids(mcqa("en", [[1], [2], [0]]), "x")
    test[0]["parent_entry_id"], test[0]["origin"] = "en-parent", "translated"
    linked = [
        {**mcqa("en", [[3]])[0], "entry_id": "en-parent"},  # its translation is a test item
        {
            **mcqa("fr", [[2]])[0],
            "entry_id": "fr-child",
            "parent_entry_id": "xen-m001",
            "origin": "translated",
        },
    ]
    rows = {
        ("mcqa", "en", "train"): train_en + linked[:1],
        ("mcqa", "fr", "train"): linked[1:],
        ("mcqa", "sw", "train"): _ids(mcqa("sw", [[i % 4] for i in range(4)]), "t"),
        ("yes_no", "en", "train"): yes_no("en", ["yes", "no", "maybe"]),
        ("nli", "en", "train"): nli("en", ["entailment", "contradiction"]),
        ("open_qa", "en", "train"): open_qa("en", ["Rest and fluids."]),
        ("mcqa", "en", "test"): test,
        ("mcqa", "en", "validation"): _ids(mcqa("en", [[0]]), "v"),
    }
    return write_version(tmp_path_factory.mktemp("train") / "v1.0.0", rows, repo_id="test/train")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, version) -> Path:
    from tests.tiny_models import build_tiny_models

    texts = [render(d).prompt for d in _docs(version)] * 3
    return build_tiny_models(tmp_path_factory.mktemp("tiny"), texts) / "causal"


def _docs(version: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return [d for p in sorted(version.rglob("*.parquet")) for d in pq.read_table(p).to_pylist()]


def _examples(version: Path, **recipe: Any):
    v = resolve_dataset(str(version), cache=version.parent / "cache")
    return build_examples(v, Recipe(**recipe), held_out_ids(v))


# -- recipes ------------------------------------------------------------------------------------


def test_a_bad_recipe_is_refused_with_what_to_fix(tmp_path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text(
        "method: qlora\nlearning_rate: -1\nepochs: null\nmixing: {strategy: weights}\nbatchsize: 4\n"
    )
    with pytest.raises(ConfigError) as err:
        load_recipe(bad)
    message = str(err.value)
    for part in ("method", "learning_rate", "mixing", "batchsize"):
        assert part in message, message
    with pytest.raises(ConfigError, match="epochs or max_steps"):
        load_recipe(None, {"epochs": None})
    with pytest.raises(ConfigError, match="merge applies to LoRA only"):
        load_recipe(None, {"method": "full", "merge": True})
    with pytest.raises(ConfigError, match="no such file"):
        load_recipe(tmp_path / "missing.yaml")


def test_the_recipe_hash_covers_every_setting() -> None:
    assert Recipe().digest() == Recipe(seed=0).digest() == load_recipe(None).digest()
    assert Recipe(seed=1).digest() != Recipe().digest()
    assert Recipe(lora={"r": 8}).digest() != Recipe().digest()


def test_shipped_recipes_are_valid() -> None:
    for path in sorted(Path("configs/recipes").glob("*.yaml")):
        load_recipe(path)


# -- examples -----------------------------------------------------------------------------------


def test_completions_are_what_the_benchmark_parser_reads() -> None:
    from globmed_data.bench.prompts import parse_letters

    one, multi = mcqa("en", [[2], [0, 3]])
    assert completion_for(one) == "C" and completion_for(multi) == "A, D"
    assert parse_letters(completion_for(multi), multi["options"]) == [0, 3]
    assert completion_for(yes_no("en", ["maybe"])[0]) == "C"
    assert completion_for(nli("en", ["contradiction"])[0]) == "C"
    assert completion_for(open_qa("en", ["Rest."])[0]) == "Rest."
    with_rationale = {**one, "rationale": "Because C."}
    assert completion_for(with_rationale, rationale=True) == "C\nBecause C."
    assert parse_letters(completion_for(with_rationale, rationale=True), one["options"]) == [2]


def test_examples_use_the_benchmarks_prompts_and_the_train_split_only(version) -> None:
    made = _examples(version)
    docs = {d["entry_id"]: d for d in _docs(version)}
    assert len(made.examples) == 22  # 12 + 4 sw + 3 + 2 + 1; linked and held-out entries left out
    assert made.excluded == {"linked_to_held_out": 2}
    for e in made.examples:
        assert e.prompt == render(docs[e.entry_id]).prompt  # the very prompt the benchmark asks
    ids = {e.entry_id for e in made.examples}
    assert not ids & {"xen-m000", "xen-m001", "xen-m002", "ven-m000", "en-parent", "fr-child"}
    swahili = _examples(version, instruction="item", languages=["sw"])  # no sw template: English
    assert {e.language for e in swahili.examples} == {"sw"} and len(swahili.examples) == 4
    assert all(e.prompt == render(docs[e.entry_id], "item").prompt for e in swahili.examples)


def test_dedup_links_in_the_warehouse_are_held_out_too(version, tmp_path) -> None:
    from globmed_data.warehouse import Warehouse

    wh_path = tmp_path / "wh.duckdb"
    with Warehouse(wh_path) as wh, wh.transaction() as con:
        con.execute(
            "INSERT INTO dedup_members VALUES "
            "('en-m005', 'c1', 2, 'duplicate', 'xen-m002', 'near', 0.9, 'r'), "
            "('xen-m002', 'c1', 2, 'kept', 'xen-m002', 'exact', 1.0, 'r')"
        )
    v = resolve_dataset(str(version), cache=tmp_path)
    held = held_out_ids(v, wh_path)
    assert held.reason("en-m005") == "linked_to_held_out" and held.reason("xen-m002") == "held_out"
    made = build_examples(v, Recipe(), held)
    assert "en-m005" not in {e.entry_id for e in made.examples}
    assert made.excluded == {"linked_to_held_out": 3}


def test_a_leak_is_refused_by_id() -> None:
    held = HeldOut(frozenset({"t1"}), frozenset({"p1"}))
    assert_no_leak(["a", "b"], held)
    with pytest.raises(LeakError, match="2 held-out or linked entries"):
        assert_no_leak(["a", "t1", "p1"], held)


def test_language_mixing_up_samples_low_resource_languages(version) -> None:
    natural = {"en": 90, "sw": 10}
    assert target_counts(natural, MixingRecipe()) == natural
    flat = target_counts(natural, MixingRecipe(strategy="temperature", temperature=1000))
    assert flat == {"en": 50, "sw": 50}  # T -> infinity: uniform, same total
    assert target_counts(natural, MixingRecipe(strategy="weights", weights={"sw": 3.5})) == {
        "en": 90,
        "sw": 35,
    }
    mixed = _examples(version, tasks=["mcqa"], mixing={"strategy": "weights", "weights": {"sw": 2.5}})
    assert mixed.available == {"en": 12, "sw": 4} and mixed.mixed == {"en": 12, "sw": 10}
    again = _examples(version, tasks=["mcqa"], mixing={"strategy": "weights", "weights": {"sw": 2.5}})
    assert [e.entry_id for e in again.examples] == [e.entry_id for e in mixed.examples]  # seeded
    other = _examples(version, tasks=["mcqa"], seed=1, mixing={"strategy": "weights", "weights": {"sw": 2.5}})
    assert [e.entry_id for e in other.examples] != [e.entry_id for e in mixed.examples]


# -- training (TRL, peft) -----------------------------------------------------------------------

FAST = {"batch_size": 4, "learning_rate": 5e-3, "logging_steps": 1, "save_steps": 2, "lora": {"r": 8}}


def test_prompt_tokens_carry_label_minus_100_and_the_rest_is_the_completion(version, tiny, tmp_path) -> None:
    from globmed_data.train.trainer import prepare

    made = _examples(version)
    prepared = prepare(made.examples, tiny, Recipe(**FAST), tmp_path, log=lambda _m: None)
    dataset, tok = prepared.trainer.train_dataset, prepared.tokenizer
    by_completion = {e.prompt: e.completion for e in made.examples}
    for i in range(len(dataset)):
        batch = prepared.trainer.data_collator([dataset[i]])
        ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
        kept = [t for t, label in zip(ids, labels, strict=True) if label != -100]
        assert [label for label in labels if label != -100] == kept  # unmasked labels are the tokens
        first = labels.index(next(label for label in labels if label != -100))
        prompt_text = tok.decode(ids[:first])
        completion = next(c for p, c in by_completion.items() if p in prompt_text)
        assert tok.decode(kept) == completion + tok.eos_token  # the answer and the end of the turn
        assert all(label == -100 for label in labels[:first])


def test_the_same_seed_gives_the_same_losses_and_the_loss_falls(version, tiny, tmp_path) -> None:
    from globmed_data.train.trainer import train

    made = _examples(version, tasks=["mcqa"])
    recipe = Recipe(**FAST, epochs=6)
    one = train(made.examples, tiny, recipe, tmp_path / "a", log=lambda _m: None)
    two = train(made.examples, tiny, recipe, tmp_path / "b", log=lambda _m: None)
    assert [p["loss"] for p in one.losses] == [p["loss"] for p in two.losses]
    assert one.steps == 24 and one.train_tokens > 0
    first, last = one.losses[0]["loss"], sum(p["loss"] for p in one.losses[-4:]) / 4
    assert last < first - 1.0, (first, last)  # from about ln(vocab): a random model's guess
    other = train(
        made.examples, tiny, recipe.model_copy(update={"seed": 3}), tmp_path / "c", log=lambda _m: None
    )
    assert [p["loss"] for p in other.losses] != [p["loss"] for p in one.losses]


def test_the_adapter_reloads_and_generates(version, tiny, tmp_path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from globmed_data.bench.engines import adapter_base
    from globmed_data.train.trainer import train

    made = _examples(version, tasks=["mcqa"])
    result = train(
        made.examples, tiny, Recipe(**FAST, max_steps=4, merge=True), tmp_path, log=lambda _m: None
    )
    assert (result.adapter / "adapter_config.json").is_file() and (result.merged / "config.json").is_file()
    assert adapter_base(result.adapter) == (tiny, str(result.adapter))  # the benchmark loads it so
    tok = AutoTokenizer.from_pretrained(result.adapter)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny), result.adapter).eval()
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": made.examples[0].prompt}],
        add_generation_prompt=True,
        return_tensors="pt",
    )
    ids = prompt["input_ids"] if hasattr(prompt, "keys") else prompt
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > ids.shape[1]
    merged = AutoModelForCausalLM.from_pretrained(result.merged).eval()
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, model(ids).logits, atol=1e-4)  # merged == adapter


def test_a_full_fine_tune_saves_a_whole_model(version, tiny, tmp_path) -> None:
    from transformers import AutoModelForCausalLM

    from globmed_data.bench.engines import adapter_base
    from globmed_data.train.trainer import train

    made = _examples(version, tasks=["mcqa"])
    result = train(
        made.examples, tiny, Recipe(**FAST, method="full", max_steps=2), tmp_path, log=lambda _m: None
    )
    assert result.adapter == tmp_path / "model" and result.merged is None
    assert adapter_base(result.adapter) == (result.adapter, None)  # loads as itself
    trained = AutoModelForCausalLM.from_pretrained(result.adapter)
    base = AutoModelForCausalLM.from_pretrained(tiny)
    changed = [n for n, p in trained.named_parameters() if not p.equal(dict(base.named_parameters())[n])]
    assert len(changed) > 10  # every weight trains, not an adapter's


def test_a_killed_run_resumes_from_its_last_checkpoint(version, tiny, tmp_path) -> None:
    from transformers import TrainerCallback

    from globmed_data.train.trainer import train

    class Kill(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step == 5:
                raise KeyboardInterrupt("killed")

    made = _examples(version, tasks=["mcqa"])
    recipe = Recipe(**FAST, max_steps=8)
    whole = train(made.examples, tiny, recipe, tmp_path / "whole", log=lambda _m: None)
    with pytest.raises(KeyboardInterrupt):
        train(made.examples, tiny, recipe, tmp_path / "killed", log=lambda _m: None, callbacks=[Kill()])
    assert not (tmp_path / "killed" / "adapter").exists()
    resumed = train(made.examples, tiny, recipe, tmp_path / "killed", log=lambda _m: None)
    assert resumed.resumed_from and resumed.resumed_from.endswith("checkpoint-4")
    assert resumed.steps == 8 and [p["step"] for p in resumed.losses] == list(range(1, 9))
    assert [p["loss"] for p in resumed.losses] == pytest.approx([p["loss"] for p in whole.losses], rel=1e-4)


# -- the flow, the registry, the event and the CLI ---------------------------------------------


def test_train_run_trains_registers_and_measures_the_gain(version, tiny, tmp_path, prefect_api) -> None:
    wh = str(tmp_path / "wh.duckdb")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("epochs: 2\nbatch_size: 4\nlearning_rate: 0.005\ntasks: [mcqa]\nsave_steps: 100\n")
    args = ["train", "run", "--dataset", str(version), "--base", f"hf:{tiny}", "--recipe", str(recipe)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "m"), "--json", "-w", wh])
    assert result.exit_code == 0, result.output
    trained = json.loads(result.stdout)
    model_id = trained["model_id"]
    assert model_id.startswith("causal-train-v1.0.0-") and trained["examples"] == 16
    assert trained["model_spec"] == f"hf:{tmp_path / 'm' / 'adapter'}"
    assert trained["dataset"]["fingerprint"] and trained["bench"]["status"] == "succeeded"
    gains = trained["gains"]
    assert {(g["task"], g["language"], g["n"]) for g in gains} == {("mcqa", "en", 3)}
    g = gains[0]
    assert g["delta"] == pytest.approx(g["trained_accuracy"] - g["base_accuracy"])
    card = (tmp_path / "m" / "README.md").read_text()
    assert (
        card.startswith("---\nlibrary_name: peft") and "test/train" in card and trained["recipe_hash"] in card
    )
    assert "## Against the base model" in card
    assert (tmp_path / "m" / "loss.png").read_bytes()[:4] == b"\x89PNG"

    listed = json.loads(runner.invoke(app, ["train", "list", "--json", "-w", wh]).stdout)["models"]
    assert [m["model_id"] for m in listed] == [model_id] and listed[0]["status"] == "trained"
    shown = json.loads(runner.invoke(app, ["train", "show", model_id[:12], "--json", "-w", wh]).stdout)
    model = shown["model"]
    assert model["base_bench_run_id"] and model["trained_bench_run_id"] and model["recipe"]["epochs"] == 2
    from globmed_data.train.run import checksums

    assert model["artifacts"] == checksums(tmp_path / "m")  # the card with its gains included
    assert shown["gains"] == gains

    from flows.naming import artifact_key
    from tests.bench.test_bench import _artifacts

    key = artifact_key(model["repo_id"], "model", model_id)
    artifacts = {a.key: a.data for a in _artifacts([key, key + "-gain"])}
    assert "data:image/png;base64," in artifacts[key] and not artifacts[key].startswith("---")
    assert key + "-gain" in artifacts

    again = runner.invoke(app, [*args, "--out", str(tmp_path / "m"), "--no-bench", "--json", "-w", wh])
    assert again.exit_code == 0, again.output  # the same run again: the same id, one registry row
    assert len(json.loads(runner.invoke(app, ["train", "list", "--json", "-w", wh]).stdout)["models"]) == 1

    # What the bench-on-trained deployment runs on globmed.model.trained: the same gain, later.
    from flows.train import gain_flow

    later = gain_flow(model_id=model_id, warehouse=wh)
    assert later["bench"]["status"] == "succeeded"
    pairs = [(g["language"], g["delta"]) for g in later["gains"]]
    assert pairs == [(g["language"], g["delta"]) for g in gains]


def test_the_trained_event_names_the_model_and_the_version(version, tiny, tmp_path, prefect_api) -> None:
    from globmed_data.train.events import TRAINED, emit_trained
    from globmed_data.train.run import plan_train

    plan = plan_train(
        str(version), f"hf:{tiny}", out=str(tmp_path / "m"), warehouse=str(tmp_path / "w.duckdb")
    )
    event = emit_trained(plan, {"model_spec": "hf:x", "final_loss": 0.5})
    assert event is not None and event.event == TRAINED
    assert event.resource.id == f"globmed.model.{plan.model_id}"
    assert event.payload["version"] == "1.0.0" and event.payload["model_id"] == plan.model_id
    assert {r.role for r in event.related} == {"dataset", "dataset-version"}


def test_train_run_refuses_bad_requests_before_any_work(version, tiny, tmp_path) -> None:
    wh = ["-w", str(tmp_path / "wh.duckdb")]
    base = ["--base", f"hf:{tiny}"]
    cases = [
        (["--dataset", str(version), "--base", "constant:A"], "training takes an hf: model"),
        (["--dataset", str(version), "--base", "hf:/nowhere/model"], "no such folder"),
        (["--dataset", str(tmp_path / "nothing"), *base], "not a version folder"),
        (["--dataset", str(version), *base, "--recipe", str(tmp_path / "r.yaml")], "no such file"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["train", "run", *args, *wh])
        assert result.exit_code == 2 and message in " ".join(result.output.split()), (args, result.output)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "train.json").write_text(json.dumps({"model_id": "someone-else"}))
    result = runner.invoke(app, ["train", "run", "--dataset", str(version), *base, "--out", str(taken), *wh])
    assert result.exit_code == 2 and "holds the training run someone-else" in " ".join(result.output.split())
    assert not (tmp_path / "wh.duckdb").exists()  # nothing was done


def test_train_show_names_an_unknown_model(tmp_path) -> None:
    from globmed_data.warehouse import Warehouse

    with Warehouse(tmp_path / "wh.duckdb"):
        pass
    result = runner.invoke(app, ["train", "show", "nope", "-w", str(tmp_path / "wh.duckdb")])
    assert result.exit_code == 2 and "train list" in result.output


def test_the_card_names_a_hub_base_and_the_provenance(version) -> None:
    from globmed_data.train.report import CardFacts, card_body, model_card

    v = resolve_dataset(str(version), cache=version.parent / "cache")
    facts = CardFacts(
        model_id="m-1",
        base="hf:HuggingFaceTB/SmolLM2-135M-Instruct",
        version=v,
        recipe=Recipe(),
        losses=[{"step": 1, "loss": 2.5, "epoch": 0.1}, {"step": 2, "loss": 1.25, "epoch": 0.2}],
        figures={"steps": 2, "train_tokens": 100, "tokens_per_second": 50.0, "device": "cpu"},
        examples_per_language={"en": 3, "sw": 2},
    )
    card = model_card(facts)
    front = card.split("---")[1]
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in front and "- test/train" in front
    assert "- sw" in front and v.fingerprint in card and Recipe().digest() in card
    assert "2.5000 → 1.2500" in card and "## Against the base model" not in card
    assert card_body(facts)[0] == "# m-1"  # the artifact's part: no front matter


@pytest.mark.slow
@needs_ray
def test_training_runs_as_a_ray_task_with_the_losses_of_a_local_run(
    version, tiny, tmp_path, prefect_api, monkeypatch
) -> None:
    """`executor: ray` in the config: the fit is a Ray task (asking for no GPU on `device: cpu`),
    the flow's process writes the registry; the same examples, steps and losses as here."""
    from flows.train import train_flow
    from globmed_data.pipeline.executor import RayExecutor
    from tests.bench.test_bench import _SOURCE
    from tests.helpers import write_config

    sent: list[tuple[str, float, int | None]] = []
    submit_model = RayExecutor.submit_model

    def recorded(self: RayExecutor, fn: Any, gpus: float, *args: Any, cpus: int | None = None) -> Any:
        sent.append((fn.__name__, gpus, cpus))
        return submit_model(self, fn, gpus, *args, cpus=cpus)

    monkeypatch.setattr(RayExecutor, "submit_model", recorded)
    recipe = {**FAST, "epochs": 2, "tasks": ["mcqa"], "device": "cpu"}
    runs = {}
    for name, executor in (("local", "local"), ("ray", {"kind": "ray", "workers": 2})):
        (tmp_path / name).mkdir()
        config = write_config(tmp_path / name, [_SOURCE], executor=executor)
        runs[name] = train_flow(
            dataset=str(version), base=f"hf:{tiny}", recipe_overrides=recipe, out=str(tmp_path / name / "m"),
            config_path=str(config), warehouse=str(tmp_path / name / "wh.duckdb"), bench=False,
        )  # fmt: skip
    assert sent == [("fit", 0.0, None)]  # no GPU on device cpu: a whole node's CPUs
    local, ray = runs["local"], runs["ray"]
    assert ray["model_id"] == local["model_id"] and ray["status"] == "trained"
    assert (ray["examples"], ray["steps"]) == (local["examples"], local["steps"]) == (16, 8)
    assert ray["first_loss"] == pytest.approx(local["first_loss"], rel=1e-4)
    assert ray["final_loss"] == pytest.approx(local["final_loss"], rel=1e-3)
    assert (tmp_path / "ray" / "m" / "adapter" / "adapter_config.json").is_file()
    listed = json.loads(
        runner.invoke(app, ["train", "list", "--json", "-w", str(tmp_path / "ray" / "wh.duckdb")]).stdout
    )
    assert [(m["model_id"], m["status"]) for m in listed["models"]] == [(ray["model_id"], "trained")]

    # A recipe that trains on cuda needs a GPU the cluster lacks: refused before any work.
    (tmp_path / "gpu").mkdir()
    config = write_config(tmp_path / "gpu", [_SOURCE], executor={"kind": "ray", "workers": 2})
    with pytest.raises(ConfigError, match=r"asks Ray for 1 GPU\(s\) but the cluster has 0"):
        train_flow(
            dataset=str(version), base=f"hf:{tiny}", recipe_overrides={**recipe, "device": "cuda"},
            out=str(tmp_path / "gpu" / "m"), config_path=str(config),
            warehouse=str(tmp_path / "gpu" / "wh.duckdb"), bench=False,
        )  # fmt: skip
    assert not (tmp_path / "gpu" / "m" / "train.json").exists()
