"""A training run from request to registered model, in the steps the flow (flows/train.py) runs:

1. `plan_train`: the recipe, the base model's spec and the dataset version, all checked before
   any model loads (a bad request costs nothing);
2. `train_model`: the examples (train split only, leak-checked), then `fit` (TRL, the adapter,
   the card, the loss curve) where the executor places models (on Ray a task with a GPU, else
   here), and the registry row (a failed run is recorded failed with its error);
3. `record_gain`: after the benchmark flow scored the base and the trained model on the version's
   test splits, the two runs are linked to the model, and v_model_gain holds the delta.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from globmed_data.bench.dataset import DatasetVersion, open_version, places_for
from globmed_data.bench.specs import parse_spec
from globmed_data.export.layout import sha256_file
from globmed_data.pipeline.executor import Executor, InlineExecutor, device_gpus
from globmed_data.pipeline.settings import ExecutorSettings
from globmed_data.settings import ConfigError
from globmed_data.train import store
from globmed_data.train.examples import ExampleSet, build_examples
from globmed_data.train.leakage import held_out_ids
from globmed_data.train.recipe import Recipe, load_recipe
from globmed_data.train.report import CardFacts, loss_chart, model_card
from globmed_data.train.trainer import train, weights_folder
from globmed_data.warehouse import Warehouse

RUN_FILE = "train.json"  # in the output folder: what the run is, so a re-run resumes only itself


@dataclass(frozen=True)
class TrainPlan:
    model_id: str
    base: str  # the base's model spec, hf:...
    version: DatasetVersion
    recipe: Recipe
    out: Path
    warehouse: Path
    # The config's executor: on Ray, the training runs as a Ray task with a GPU (training_gpus).
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)


def plan_train(
    dataset: str,
    base: str,
    *,
    recipe_path: str | None = None,
    recipe_overrides: dict[str, Any] | None = None,
    out: str | None = None,
    config_path: str | None = None,
    warehouse: str | None = None,
    endpoint: str | None = None,
) -> TrainPlan:
    """Everything a training run needs, validated; raises ConfigError with what to fix."""
    recipe = load_recipe(recipe_path, recipe_overrides)
    try:
        spec = parse_spec(base)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if spec.engine != "hf":
        raise ConfigError(f"base model '{base}': training takes an hf: model (a folder, a .gguf, hf:pkg:...)")
    _check_base(spec.target)
    loaded = None
    if config_path:
        from globmed_data.config import load_config

        loaded = load_config(config_path)
    places = places_for(loaded, warehouse)
    version = open_version(dataset, cache=places.warehouse.parent / "train", places=places, endpoint=endpoint)
    model_id = store.model_id_for(base, version, recipe)
    folder = (Path(out) if out else places.warehouse.parent / "models" / model_id).resolve()
    _check_folder(folder, model_id)
    executor = loaded.config.executor if loaded else ExecutorSettings()
    return TrainPlan(model_id, base, version, recipe, folder, places.warehouse, executor)


def _check_base(target: str) -> None:
    if target.startswith("pkg:"):
        from globmed_data.bench.engines import EngineError, packaged_gguf

        try:
            packaged_gguf(target.removeprefix("pkg:"))
        except EngineError as exc:
            raise ConfigError(f"base model: {exc}") from None
        return
    path = Path(target).expanduser()
    if path.suffix == ".gguf" and not path.is_file():
        raise ConfigError(f"base model: {path}: no such GGUF file")
    if (path.is_absolute() or target.startswith(".")) and not path.exists():
        raise ConfigError(f"base model: {path}: no such folder")


def _check_folder(folder: Path, model_id: str) -> None:
    """An output folder holds one run: a re-run of it resumes; another run is refused."""
    run_file = folder / RUN_FILE
    if run_file.is_file():
        held = json.loads(run_file.read_text()).get("model_id")
        if held != model_id:
            raise ConfigError(
                f"{folder} holds the training run {held}, not {model_id} (another base, version or "
                "recipe): give another --out, or remove the folder"
            )
    elif folder.is_dir() and any(folder.iterdir()):
        raise ConfigError(f"{folder} exists and is not a training run's folder: give an empty or new --out")


def training_gpus(recipe: Recipe, executor: Executor) -> float:
    """The GPUs a training run asks the executor for: one on `cuda`; on `auto`, one where the
    executor has any (the trainer runs in one process, on one device)."""
    if recipe.device == "auto":
        return 1.0 if (executor.gpus_available() or 0) >= 1 else 0.0
    return device_gpus(recipe.device)


def train_model(
    plan: TrainPlan, *, log: Callable[[str], None] = print, executor: Executor | None = None
) -> dict[str, Any]:
    """Build the examples, train, write the card and the loss curve, and register the model.
    Raises after recording the failure in the registry."""
    executor = executor or InlineExecutor()
    gpus = training_gpus(plan.recipe, executor)
    try:
        executor.check_gpus(gpus, f"training {plan.model_id}", plan.recipe.device)
    except RuntimeError as exc:
        raise ConfigError(str(exc)) from None
    plan.out.mkdir(parents=True, exist_ok=True)
    (plan.out / RUN_FILE).write_text(json.dumps(_run_record(plan), indent=2) + "\n")
    with Warehouse(plan.warehouse) as wh:
        store.start(wh, plan.model_id, plan.base, plan.version, plan.recipe)
    try:
        examples = _examples(plan, log)
        # Sent away, the trainer's log lines go to its worker's output: a run's logger stays here.
        there = log if executor.models_here else print
        record = executor.submit_model(fit, gpus, plan, examples, there).result()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        with Warehouse(plan.warehouse) as wh:
            store.fail(wh, plan.model_id, error)
        log(f"{plan.model_id}: failed: {error}")
        raise
    with Warehouse(plan.warehouse) as wh:
        store.finish(wh, plan.model_id, {k: v for k, v in record.items() if k in _REGISTRY_FIELDS})
    return record


_REGISTRY_FIELDS = (
    "examples",
    "examples_per_language",
    "steps",
    "train_tokens",
    "seconds",
    "tokens_per_second",
    "first_loss",
    "final_loss",
    "device",
    "folder",
    "model_spec",
    "artifacts",
)


def _run_record(plan: TrainPlan) -> dict[str, Any]:
    v = plan.version
    return {
        "model_id": plan.model_id,
        "base_model": plan.base,
        "dataset": {
            "repo_id": v.repo_id,
            "version": v.version,
            "fingerprint": v.fingerprint,
            "folder": str(v.folder),
        },
        "recipe_hash": plan.recipe.digest(),
        "recipe": plan.recipe.model_dump(mode="json"),
    }


def _examples(plan: TrainPlan, log: Callable[[str], None]) -> ExampleSet:
    """The train split's examples, leak-checked against the warehouse (read here, by the run)."""
    held_out = held_out_ids(plan.version, plan.warehouse)
    examples = build_examples(plan.version, plan.recipe, held_out)
    if not examples.examples:
        raise ConfigError(
            f"{plan.version.repo_id} v{plan.version.version} has no train entry for tasks "
            f"{plan.recipe.tasks or 'all'}, languages {plan.recipe.languages or 'all'}"
        )
    left_out = ", ".join(f"{n} {why}" for why, n in sorted(examples.excluded.items())) or "none"
    log(
        f"{len(examples.examples)} examples from {sum(examples.available.values())} train entries "
        f"({len(held_out.held)} held out; left out of train: {left_out}); per language: "
        + ", ".join(f"{lang} {n}" for lang, n in examples.mixed.items())
    )
    return examples


def fit(plan: TrainPlan, examples: ExampleSet, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train on the examples and write the card and the loss curve: no warehouse, so it runs
    wherever the executor places it (the output folder must be the driver's: shared storage)."""
    from globmed_data.bench.engines import model_path

    base_path = Path(model_path(plan.base.removeprefix("hf:")))
    log(f"training {plan.base} ({base_path}) with {plan.recipe.method}")
    result = train(examples.examples, base_path, plan.recipe, plan.out, log=log)
    log(
        f"{result.steps} steps, {result.train_tokens} tokens in {result.seconds:.1f} s "
        f"({result.tokens_per_second:.0f} tokens/s on {result.device})"
    )
    if result.dropped:
        log(f"{result.dropped} examples longer than max_seq_length lost their answer and were not trained on")
    figures = {
        "steps": result.steps,
        "train_tokens": result.train_tokens,
        "seconds": result.seconds,
        "tokens_per_second": result.tokens_per_second,
        "device": result.device,
    }
    write_card(plan, figures, examples.mixed)
    loss_chart(result.losses, plan.out / "loss.png", f"{plan.model_id}: training loss")
    return {
        "model_id": plan.model_id,
        "status": "trained",
        "examples": len(examples.examples),
        "examples_per_language": examples.mixed,
        "excluded": {**examples.excluded, **({"too_long": result.dropped} if result.dropped else {})},
        **figures,
        "first_loss": result.losses[0]["loss"] if result.losses else None,
        "final_loss": result.losses[-1]["loss"] if result.losses else None,
        "resumed_from": result.resumed_from,
        "folder": str(plan.out),
        "adapter": str(result.adapter),
        "merged": str(result.merged) if result.merged else None,
        "model_spec": f"hf:{result.adapter}",
        "artifacts": checksums(plan.out),
    }


def write_card(
    plan: TrainPlan,
    figures: dict[str, Any],
    examples_per_language: dict[str, int],
    gains: list[dict[str, Any]] | None = None,
) -> None:
    """README.md of the output folder (and of the adapter folder); losses from losses.json."""
    card = model_card(card_facts(plan, figures, examples_per_language, gains))
    (plan.out / "README.md").write_text(card, encoding="utf-8")
    target = weights_folder(plan.out, plan.recipe)
    if target.is_dir():  # the card travels with the adapter when only that folder is shared
        (target / "README.md").write_text(card, encoding="utf-8")


def card_facts(
    plan: TrainPlan,
    figures: dict[str, Any],
    examples_per_language: dict[str, int],
    gains: list[dict[str, Any]] | None = None,
) -> CardFacts:
    losses_file = plan.out / "losses.json"
    return CardFacts(
        model_id=plan.model_id,
        base=plan.base,
        version=plan.version,
        recipe=plan.recipe,
        losses=json.loads(losses_file.read_text()) if losses_file.is_file() else [],
        figures=figures,
        examples_per_language=examples_per_language,
        gains=gains or [],
    )


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file of the adapter (or model), merged model, card and losses."""
    out: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and rel.parts[0] != "checkpoints":
            out[str(rel)] = sha256_file(path)
    return out


def plan_for_model(
    model_id: str,
    *,
    config_path: str | None = None,
    warehouse: str | None = None,
    endpoint: str | None = None,
) -> tuple[TrainPlan, dict[str, Any]]:
    """A registered, trained model's plan and record, to measure its gain in a later run (the
    `bench-on-trained` deployment, on `globmed.model.trained`)."""
    loaded = None
    if config_path:
        from globmed_data.config import load_config

        loaded = load_config(config_path)
    places = places_for(loaded, warehouse)
    with Warehouse(places.warehouse, what=f"gain of {model_id}") as wh:
        rows = wh.query_dicts("SELECT * FROM models WHERE model_id = ?", [model_id])
    if not rows:
        raise ConfigError(f"no model '{model_id}' in {places.warehouse}: see `globmed train list`")
    row = rows[0]
    if row["status"] != "trained":
        raise ConfigError(f"model '{model_id}' is {row['status']}, not trained: nothing to benchmark")
    recipe = Recipe(**json.loads(row["recipe"]))
    if recipe.digest() != row["recipe_hash"]:
        raise ConfigError(
            f"model '{model_id}': its stored recipe no longer hashes to {row['recipe_hash'][:12]}"
        )
    version = open_version(
        _dataset_of(row), cache=places.warehouse.parent / "train", places=places, endpoint=endpoint
    )
    if version.fingerprint != row["fingerprint"]:
        raise ConfigError(f"model '{model_id}': {version.folder} is not the version it was trained on")
    plan = TrainPlan(model_id, row["base_model"], version, recipe, Path(row["folder"]), places.warehouse)
    record = {k: row[k] for k in _REGISTRY_FIELDS if k not in ("examples_per_language", "artifacts")}
    record["examples_per_language"] = json.loads(row["examples_per_language"] or "{}")
    return plan, record


def _dataset_of(row: dict[str, Any]) -> str:
    """The version folder the run read (train.json), while it exists; else OWNER/NAME@vX.Y.Z."""
    try:
        folder = json.loads((Path(row["folder"]) / RUN_FILE).read_text())["dataset"]["folder"]
        if Path(folder).is_dir():
            return str(folder)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"{row['repo_id']}@v{row['version']}"


def bench_overrides(plan: TrainPlan, limit: int | None) -> dict[str, Any]:
    """The benchmark that measures the gain: generative (the format the model was trained on), on
    the test splits of what it was trained on."""
    return {
        "mode": "generate",
        "splits": ["test"],
        "tasks": list(plan.recipe.tasks),
        "languages": list(plan.recipe.languages),
        "instruction": plan.recipe.instruction,
        "limit": limit,
    }


def record_gain(
    plan: TrainPlan, record: dict[str, Any], bench_summary: dict[str, Any]
) -> list[dict[str, Any]]:
    """Link the base's and the trained model's benchmark runs to the model; the per-language gain
    (v_model_gain), also written into the card."""
    run_of = {r["model"]: r for r in bench_summary["runs"] if r["status"] == "succeeded"}
    base_run, trained_run = run_of.get(plan.base), run_of.get(record["model_spec"])
    with Warehouse(plan.warehouse) as wh:
        store.set_bench_runs(
            wh,
            plan.model_id,
            base_run["bench_run_id"] if base_run else None,
            trained_run["bench_run_id"] if trained_run else None,
        )
        gains = store.gains(wh, plan.model_id)
        if gains:  # the card gains its table: its checksum changes with it
            write_card(plan, record, record["examples_per_language"], gains)
            store.set_artifacts(wh, plan.model_id, checksums(plan.out))
    return gains
