"""What a training run leaves beside its adapter: the model card (README.md, with the Hub's YAML
front matter) and the loss curve (loss.png)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from globmed_data.bench.dataset import DatasetVersion
from globmed_data.bench.prompts import PROMPT_VERSION
from globmed_data.settings import REPO_ID
from globmed_data.train.recipe import Recipe


@dataclass(frozen=True)
class CardFacts:
    model_id: str
    base: str  # the base's model spec
    version: DatasetVersion
    recipe: Recipe
    losses: list[dict[str, float]]
    figures: dict[str, Any]  # steps, train_tokens, tokens_per_second, device
    examples_per_language: dict[str, int]
    gains: list[dict[str, Any]] = field(default_factory=list)  # v_model_gain rows, once measured


def model_card(facts: CardFacts) -> str:
    """README.md of the model folder: front matter for the Hub, then provenance and figures."""
    front: dict[str, Any] = {}
    target = facts.base.removeprefix("hf:")
    if REPO_ID.match(target) and not Path(target).exists():  # the Hub links a card to a Hub id only
        front["base_model"] = target
    front |= {
        "library_name": "peft" if facts.recipe.method == "lora" else "transformers",
        "datasets": [facts.version.repo_id],
        "tags": ["globmed", "medical", "multilingual", "trl", "sft"],
        "language": sorted(facts.examples_per_language),
    }
    front_matter = yaml.safe_dump(front, sort_keys=False, allow_unicode=True).strip()
    return "\n".join(["---", front_matter, "---", "", *card_body(facts)]) + "\n"


def card_body(facts: CardFacts) -> list[str]:
    """The card without its front matter (the Prefect artifact shows this part)."""
    version, recipe, losses, figures = facts.version, facts.recipe, facts.losses, facts.figures
    examples_per_language, gains, base = facts.examples_per_language, facts.gains, facts.base
    first = f"{losses[0]['loss']:.4f}" if losses else "n/a"
    last = f"{losses[-1]['loss']:.4f}" if losses else "n/a"
    out = [
        f"# {facts.model_id}",
        "",
        f"{_method(recipe)} of `{base}` on the train split of the dataset `{version.repo_id}` "
        f"v{version.version} (fingerprint `{version.fingerprint}`), with TRL's SFTTrainer. The prompts "
        f"are the benchmark's generative prompts (version {PROMPT_VERSION}); the loss covers the "
        "answer only. No entry of the version's validation or test splits, nor any entry linked to "
        "one (translations, dedup clusters), was trained on.",
        "",
        "## Training",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{base}` |",
        f"| dataset | `{version.repo_id}` v{version.version} |",
        f"| fingerprint | `{version.fingerprint}` |",
        f"| recipe hash | `{recipe.digest()}` |",
        f"| examples | {sum(examples_per_language.values())} |",
        f"| steps | {figures.get('steps')} |",
        f"| tokens | {figures.get('train_tokens')} |",
        f"| tokens/s | {figures.get('tokens_per_second', 0):.1f} on {figures.get('device')} |",
        f"| loss | {first} → {last} |",
        "",
        "Examples per language: "
        + ", ".join(f"{lang} {n}" for lang, n in sorted(examples_per_language.items()))
        + ".",
        "",
        "## Recipe",
        "",
        "```yaml",
        yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=True).strip(),
        "```",
    ]
    if gains:
        out += [
            "",
            "## Against the base model (test splits)",
            "",
            "| task | language | n | base | trained | delta [95% CI] |",
            "|---|---|---:|---:|---:|---|",
        ]
        for g in gains:
            star = "*" if g["resource"] == "low" else ""
            out.append(
                f"| {g['task']} | {g['language']}{star} | {g['n']} | {g['base_accuracy']:.3f} | "
                f"{g['trained_accuracy']:.3f} | {g['delta']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}] |"
            )
        out += ["", "\\* low-resource language"]
    return out


def _method(recipe: Recipe) -> str:
    if recipe.method == "full":
        return "A full fine-tune"
    return f"A LoRA adapter (r={recipe.lora.r}, alpha={recipe.lora.alpha})"


def loss_chart(losses: list[dict[str, float]], path: Path, title: str) -> Path | None:
    """Training loss per step (PNG); None when nothing was logged."""
    if not losses:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.plot([p["step"] for p in losses], [p["loss"] for p in losses], marker="." if len(losses) < 60 else "")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (completion tokens)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
