"""What a person reads after a benchmark: a leaderboard (markdown) and a per-language accuracy
chart (PNG: one panel per task, bars with 95% intervals, the chance line), both from the views."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any


def leaderboard_rows(scores: list[dict[str, Any]], gaps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, task, split): macro accuracy over languages, items, and the gap."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for s in scores:
        groups[(s["model"], s["task"], s["split"])].append(s)
    gap_of = {(g["model"], g["task"], g["split"]): g for g in gaps}
    rows = []
    for (model, task, split), per_language in groups.items():
        g = gap_of.get((model, task, split))
        rows.append(
            {
                "model": model,
                "task": task,
                "split": split,
                "languages": len(per_language),
                "items": sum(int(s["n"]) for s in per_language),
                "accuracy": sum(s["accuracy"] for s in per_language) / len(per_language),
                "gap": g["gap"] if g else None,
                "gap_ci": f"[{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]" if g else "",
            }
        )
    return sorted(rows, key=lambda r: (r["task"], r["split"], -r["accuracy"], r["model"]))


def leaderboard_markdown(title: str, scores: list[dict[str, Any]], gaps: list[dict[str, Any]]) -> str:
    lines = [
        f"# {title}",
        "",
        "Macro accuracy over languages; gap = mean(high-resource) − mean(low-resource).",
        "",
        "| task | split | model | languages | items | accuracy | gap (95% CI) |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for r in leaderboard_rows(scores, gaps):
        gap = f"{r['gap']:+.3f} {r['gap_ci']}" if r["gap"] is not None else "—"
        lines.append(
            f"| {r['task']} | {r['split']} | `{r['model']}` | {r['languages']} | {r['items']} "
            f"| {r['accuracy']:.3f} | {gap} |"
        )
    lines += [
        "",
        "## Per language",
        "",
        "| model | task | split | language | resource | n | accuracy | 95% CI | invalid |",
        "| --- | --- | --- | --- | --- | ---: | ---: | --- | ---: |",
    ]
    for s in scores:
        lines.append(
            f"| `{s['model']}` | {s['task']} | {s['split']} | {s['language']} | {s['resource']} | {s['n']} "
            f"| {s['accuracy']:.3f} | [{s['ci_low']:.3f}, {s['ci_high']:.3f}] | {s['invalid_rate']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def accuracy_chart(scores: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Bars per (language, model) with their 95% interval, one panel per (task, split); the
    dashed line is chance. Low-resource languages are marked with *."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for s in scores:
        panels[(s["task"], s["split"])].append(s)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * max(1, len(panels))), squeeze=False)
    for ax, ((task, split), rows) in zip(axes[:, 0], sorted(panels.items()), strict=False):
        languages = sorted({r["language"] for r in rows}, key=lambda lang: (_low(rows, lang), lang))
        models = sorted({r["model"] for r in rows})
        width = 0.8 / len(models)
        for k, model in enumerate(models):
            got = {r["language"]: r for r in rows if r["model"] == model}
            xs = [i + (k - (len(models) - 1) / 2) * width for i, lang in enumerate(languages) if lang in got]
            ys = [got[lang]["accuracy"] for lang in languages if lang in got]
            err = [
                # at 0 or 1 the interval's end equals the accuracy up to rounding: never below 0
                [max(0.0, got[lang]["accuracy"] - got[lang]["ci_low"]) for lang in languages if lang in got],
                [max(0.0, got[lang]["ci_high"] - got[lang]["accuracy"]) for lang in languages if lang in got],
            ]
            ax.bar(xs, ys, width=width, yerr=err, capsize=2, label=model)
        chances = [r["chance"] for r in rows if r.get("chance") is not None]
        if chances:
            ax.axhline(
                sum(chances) / len(chances), color="black", linestyle="--", linewidth=1, label="chance"
            )
        ax.set_xticks(range(len(languages)))
        ax.set_xticklabels([f"{lang}*" if _low(rows, lang) else lang for lang in languages])
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy" if task != "open_qa" else "chrF++")
        ax.set_title(f"{task} ({split})  * low-resource", fontsize=10)
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _low(rows: list[dict[str, Any]], language: str) -> bool:
    return any(r["language"] == language and r["resource"] == "low" for r in rows)
