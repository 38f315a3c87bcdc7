"""Text normalisation applied to every text field of a canonical entry.

The raw record keeps the original text; entries hold the normalised form:
Unicode NFC, mojibake repaired where ftfy is certain, control characters removed,
white space folded, option labels ("(A) ", "B. ") stripped from option text.
"""

from __future__ import annotations

import re
import unicodedata

import ftfy

# Bump when normalisation output changes: sources are then re-collected.
NORMALIZER_VERSION = "1"

_FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html=False,  # "&lt;" in a question may be meant; the quality stage flags markup
    remove_terminal_escapes=True,
    fix_encoding=True,
    restore_byte_a0=True,
    replace_lossy_sequences=False,
    decode_inconsistent_utf8=True,
    fix_c1_controls=True,
    fix_latin_ligatures=False,
    fix_character_width=False,  # full-width forms are normal in CJK text
    uncurl_quotes=False,
    fix_line_breaks=True,
    fix_surrogates=True,
    remove_control_chars=True,
    normalization="NFC",
    explain=False,
)

# UTF-8 mojibake (UTF-8 bytes decoded as Latin-1 or cp1252) always shows a lead byte
# (Â..ô) followed by a continuation byte (\x80..\xbf, or its cp1252 glyph). Text without
# such a pair cannot hold it, so ftfy (slow) only sees the few strings that might.
_MOJIBAKE_HINT = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192"
    "\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
# C0/C1 controls except tab and newline, plus zero-width space and stray BOMs.
# ZWJ/ZWNJ are kept: they carry meaning in Indic and Arabic-script languages.
_CONTROL = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f]+")
_SPACE_AROUND_NEWLINE = re.compile(r" *\n *")
_MANY_NEWLINES = re.compile(r"\n{3,}")

# "(A) text", "A) text", "A. text", "A: text", "a - text" (the label must be followed by space).
_OPTION_LABEL = re.compile(r"^\s*[\(\[]?([A-Za-z]|\d{1,2})[\)\]\.:：．、\-]\s+")


def clean_text(text: str) -> str:
    """Normalise one text field; idempotent (clean_text(clean_text(x)) == clean_text(x))."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii() and _MOJIBAKE_HINT.search(text):
        text = ftfy.fix_text(text, _FTFY_CONFIG)
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_AROUND_NEWLINE.sub("\n", text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


def _label_rank(label: str) -> int:
    return int(label) - 1 if label.isdigit() else ord(label.upper()) - ord("A")


def strip_option_labels(options: list[str]) -> list[str]:
    """Remove leading labels only when every option carries the expected one in sequence.

    Requiring the whole sequence (A, B, C... or 1, 2, 3...) avoids eating text that
    merely starts like a label, such as "A. fumigatus" standing alone.
    """
    if len(options) < 2:
        return options
    matches = [_OPTION_LABEL.match(o) for o in options]
    if not all(matches):
        return options
    ranks = [_label_rank(m.group(1)) for m in matches if m]
    if ranks != list(range(len(options))):
        return options
    return [o[m.end() :].strip() for o, m in zip(options, matches, strict=True) if m]


_LABELLED_LINE = re.compile(r"(?:^|\n)\s*\(([A-Za-z])\)\s*")


def split_labelled_options(text: str) -> list[tuple[str, str]]:
    """Parse "(A) first\\n(B) second" into [("A", "first"), ("B", "second")]."""
    parts = _LABELLED_LINE.split(text)
    # parts = [before, label1, text1, label2, text2, ...]
    pairs = []
    for i in range(1, len(parts) - 1, 2):
        pairs.append((parts[i].upper(), parts[i + 1].strip()))
    return pairs
