"""Option labels in the scripts exam questions use, and splitting options out of a text.

A question may carry its options in its own text ("Which ...?\\nA. x\\nB. y", "أ- ... ب- ...",
"① ... ② ..."). `split_options` finds a run of labels of one set, in order, each where a label
can stand (the start of a line, or after a space, with its delimiter), and cuts the text there:
the stem before the first label, then one option per label. `label_index` reads an answer
given as such a label.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

# Label sets in their order; the first element is label 0. Full-width Latin letters and digits
# are read through NFKC, so "Ａ．" is "A.".
LABEL_SETS: dict[str, tuple[str, ...]] = {
    "latin": tuple("ABCDEFGHIJ"),
    "latin_lower": tuple("abcdefghij"),
    "digits": tuple(str(i) for i in range(1, 11)),
    "arabic": ("أ", "ب", "ج", "د", "هـ", "و", "ز", "ح"),
    "hebrew": tuple("אבגדהוזח"),
    "cyrillic": tuple("АБВГДЕЖЗ"),
    "greek": tuple("ΑΒΓΔΕΖΗΘ"),
    "katakana": tuple("アイウエオカキク"),
    "circled": tuple("①②③④⑤⑥⑦⑧⑨⑩"),
    "hangul": tuple("ㄱㄴㄷㄹㅁㅂㅅㅇ"),
}
# Sets whose labels are letters of a word-forming alphabet: a delimiter must follow ("A." "(A)"
# "A)"), or "A patient" would start an option. The others may be followed by a space alone.
_NEEDS_DELIMITER = {"latin", "latin_lower", "digits", "arabic", "hebrew", "cyrillic", "greek"}
_OPEN = r"[\(\[（［]"
_CLOSE = r"[\)\]）］]"
_DELIMITER = r"[\.．:：、\)\]）］\-–]"


@cache
def _label_pattern(label: str, delimited: bool, line_start: bool) -> re.Pattern[str]:
    forms = sorted({label, _wide(label)}, key=len, reverse=True)
    body = "|".join(re.escape(f) for f in forms)
    before = r"(?:^|(?<=\n))[ \t\u3000]*" if line_start else r"(?:^|(?<=[\s\u3000]))"
    enclosed = f"{_OPEN}(?:{body}){_CLOSE}"
    marked = f"(?:{body}){_DELIMITER}" if delimited else f"(?:{body})(?:{_DELIMITER}|(?=[\\s\\u3000]))"
    return re.compile(f"{before}(?:{enclosed}|{marked})[ \\t\\u3000]*")


def _wide(label: str) -> str:
    """The full-width form of an ASCII label ("A" -> "Ａ"), else the label itself."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in label)


def split_options(
    text: str, labels: tuple[str, ...] | None = None
) -> tuple[str, list[tuple[str, str]]] | None:
    """(stem, [(label, option text), ...]) for the longest run of labels found in order, at
    least two; None when the text holds no such run. `labels`: one set to look for (default:
    every set in LABEL_SETS). Lines are preferred: a run at line starts beats one inline."""
    sets = {"configured": labels} if labels else LABEL_SETS
    best: tuple[int, list[re.Match[str]], tuple[str, ...]] | None = None
    for name, seq in sets.items():
        delimited = name in _NEEDS_DELIMITER or (labels is not None and all(s.isalnum() for s in seq))
        for line_start in (True, False):
            found = _run(text, seq, delimited, line_start)
            if len(found) >= 2:
                score = len(found) * 2 + line_start
                if best is None or score > best[0]:
                    best = (score, found, seq)
                break
    if best is None:
        return None
    _, found, seq = best
    ends = [m.start() for m in found[1:]] + [len(text)]
    options = [
        (seq[k], text[m.end() : end].strip()) for k, (m, end) in enumerate(zip(found, ends, strict=True))
    ]
    return text[: found[0].start()].strip(), options


def _run(text: str, seq: tuple[str, ...], delimited: bool, line_start: bool) -> list[re.Match[str]]:
    found: list[re.Match[str]] = []
    pos = 0
    for label in seq:
        m = _label_pattern(label, delimited, line_start).search(text, pos)
        if m is None:
            break
        found.append(m)
        pos = m.end()
    return found


def label_index(token: str) -> int | None:
    """The position of an answer label in its set: "ب" -> 1, "③" -> 2, "Ｃ" -> 2; None if the
    token is no single label of a set."""
    raw = token.strip("()[]（）.．:： ")
    folded = unicodedata.normalize("NFKC", raw)
    for name, seq in LABEL_SETS.items():
        if name in ("latin_lower", "digits"):
            continue  # letters and indices are read by the answer style itself
        for form in (raw, folded):  # "③" folds to "3": the raw form first
            if form in seq:
                return seq.index(form)
        if name == "arabic" and folded == "ه":
            return seq.index("هـ")
    return None
