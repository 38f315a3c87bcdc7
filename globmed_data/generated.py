"""Tables in the docs that are generated from code (the view table of warehouse/README.md, the
rule table of docs/quality.md): the block between two markers is replaced, the rest is kept."""

from __future__ import annotations


def replace_generated(text: str, start: str, end: str, body: str) -> str:
    """`text` with what stands between the markers `start` and `end` replaced by `body`."""
    first, last = text.index(start), text.index(end)
    return text[: first + len(start)] + "\n" + body + "\n" + text[last:]
