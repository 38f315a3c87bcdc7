"""The rule table of docs/quality.md, generated from the registry (`python -m
globmed_data.quality.docs --write` rewrites it; a test checks it is current)."""

from __future__ import annotations

from globmed_data.generated import replace_generated
from globmed_data.quality.rules import RULES
from globmed_data.quality.settings import QualityThresholds

DOCS_START = (
    "<!-- rules:start (generated from quality/rules.py: python -m globmed_data.quality.docs --write) -->"
)
DOCS_END = "<!-- rules:end -->"


def docs_table() -> str:
    """The rule table of docs/quality.md, from the registry (thresholds with their defaults)."""
    defaults = QualityThresholds()

    def shown(name: str) -> str:
        value = getattr(defaults, name)
        if isinstance(value, dict):
            value = "; ".join(f"{k} {v:g}" for k, v in value.items())
        return f"`{name}` ({value})"

    lines = ["| code | group | default | what fires it | thresholds (defaults) | examples |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in RULES.values():
        thresholds = ", ".join(shown(t) for t in r.thresholds)
        examples = ", ".join(
            f"`{e if e.isprintable() else e.encode('unicode_escape').decode()}`" for e in r.examples
        )
        default = "langid policy" if r.code == "language_mismatch" else r.action
        lines.append(f"| `{r.code}` | {r.group} | {default} | {r.what} | {thresholds} | {examples} |")
    return "\n".join(lines)


def render_docs(text: str) -> str:
    return replace_generated(text, DOCS_START, DOCS_END, docs_table())


if __name__ == "__main__":
    import sys
    from pathlib import Path

    if sys.argv[1:] == ["--write"]:
        doc = Path(__file__).resolve().parents[2] / "docs" / "quality.md"
        doc.write_text(render_docs(doc.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"wrote the rule table of {doc}")
    else:
        print(docs_table())
