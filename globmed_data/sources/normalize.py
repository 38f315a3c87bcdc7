"""Text normalisation applied to every text field of a canonical entry.

The raw record keeps the original text; entries hold the normalised form: HTML entities
decoded, Unicode NFC, mojibake repaired where ftfy is certain, control characters and stray
invisible characters removed (zero-width joiners kept only where a script joins with them),
white space folded, option labels ("(A) ", "B. ") stripped from option text.
"""

from __future__ import annotations

import html
import re
import unicodedata

import ftfy

# Bump when normalisation output changes: sources are then re-collected.
NORMALIZER_VERSION = "2"  # 2: HTML entities decoded; ZWJ/ZWNJ, soft hyphens, word joiners dropped

_FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html=False,  # entities are decoded before, only where a whole entity stands (_ENTITY)
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
# C0/C1 controls except tab and newline, zero-width space, word joiner, soft hyphen, stray BOMs.
_CONTROL = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u00ad\u200b\u2060\ufeff]")
# An entity with its semicolon: "&amp;", "&#39;", "&#x27;". html.unescape alone would also read
# "&not" in "&notes" as "¬": only whole entities are decoded.
_ENTITY = re.compile(r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});")
# ZWJ/ZWNJ carry meaning after a letter of a script that joins (Arabic, Syriac, the Indic
# scripts, Sinhala, Tibetan, Myanmar, Khmer) or inside an emoji sequence; elsewhere (a
# Vietnamese or Latin word, say) they are invisible noise, counted as symbols by the rules.
# Between two Latin letters or digits one stood for a space in the shared data
# ("C-reactive\u200cprotein" in a Japanese exam): there it becomes a space; elsewhere it goes.
_LATIN = "0-9A-Za-z\u00c0-\u024f\u1e00-\u1eff"
_JOINER_AS_SPACE = re.compile(f"(?<=[{_LATIN}])[\u200c\u200d]+(?=[{_LATIN}])")
_STRAY_JOINER = re.compile(
    "(?<![\u0600-\u074f\u0750-\u077f\u08a0-\u08ff\u0900-\u0dff\u0f00-\u0fff\u1000-\u109f"
    "\u1780-\u17ff\ufb50-\ufdff\ufe70-\ufeff\u2600-\u27bf\U0001f000-\U0001faff\ufe0f])[\u200c\u200d]+"
)
# White space folding matches only what changes, and each pattern starts with a character
# class (SRE scans for it quickly): a run of two or more, or a lone one that is not a plain
# space; spaces beside a newline. Matching every single space, as a plain `[...]+` does,
# rebuilt every text and was most of the collect's normalisation time.
_SPACE_CLASS = "[ \t\u00a0\u2000-\u200a\u202f\u205f]"
_SPACES = re.compile(f"{_SPACE_CLASS}(?:(?<! )|{_SPACE_CLASS}){_SPACE_CLASS}*")
_SPACE_AROUND_NEWLINE = re.compile(r"[ \n](?:(?<=\n) +|(?<= ) *\n *)")
_MANY_NEWLINES = re.compile(r"\n{3,}")

# Any character that one of _clean's steps below would change or drop (an entity's "&", "\r",
# a control, a joiner, a space other than " "); with the pairs checked in is_clean, a text
# without any is left as it is by every step but NFC and the mojibake repair.
_CHANGED_BY_CLEAN = re.compile(
    "[&\r\t\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u00a0\u00ad\u2000-\u200d\u202f\u205f\u2060\ufeff]"
)

# "(A) text", "A) text", "A. text", "A: text", "a - text" (the label must be followed by space).
_OPTION_LABEL = re.compile(r"^\s*[\(\[]?([A-Za-z]|\d{1,2})[\)\]\.:：．、\-]\s+")


def clean_text(text: str) -> str:
    """Normalise one text field; idempotent (clean_text(clean_text(x)) == clean_text(x))."""
    if not text:
        return ""
    # Printable ASCII with no entity and no double space has nothing to change but its ends
    # (no control, newline, tab, mojibake or joiner; NFC leaves it as it is): a third of the
    # shared data's fields, at a tenth of the cost.
    if text.isascii() and text.isprintable() and "&" not in text and "  " not in text:
        return text.strip()
    if is_clean(text):  # nearly all the other texts of the shared data: a third of _clean's cost
        return text.strip()
    return _clean(text)


def is_clean(text: str) -> bool:
    """Whether _clean would only strip the text's ends (clean_text(text) == text.strip())."""
    return (
        not _CHANGED_BY_CLEAN.search(text)
        and "  " not in text
        and " \n" not in text
        and "\n " not in text
        and "\n\n\n" not in text
        and unicodedata.is_normalized("NFC", text)
        and (text.isascii() or not _MOJIBAKE_HINT.search(text))
    )


def _clean(text: str) -> str:
    """clean_text for any text."""
    if "&" in text:
        text = _decode_entities(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isascii() and _MOJIBAKE_HINT.search(text):
        text = ftfy.fix_text(text, _FTFY_CONFIG)
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    if "\u200c" in text or "\u200d" in text:
        text = _STRAY_JOINER.sub("", _JOINER_AS_SPACE.sub(" ", text))
    text = _SPACES.sub(" ", text)
    if "\n" in text:
        text = _SPACE_AROUND_NEWLINE.sub("\n", text)
        if "\n\n\n" in text:
            text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


def _decode_entities(text: str) -> str:
    """Whole HTML entities decoded, again until none is left ("&amp;lt;" is "<"), so that
    clean_text stays idempotent. Each pass shortens the text, so it ends."""
    while True:
        decoded = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
        if decoded == text:
            return text
        text = decoded


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
