"""Writing systems: which script a text is in, and which scripts each language is written in.

The script ranges are plain ranges of literal characters: the compiled passes read them as
code point ranges (text_metrics), and as regex classes (SCRIPT_CLASS) they work alike in
Python's `re` and in polars, where the tests' reference definitions use them.
"""

from __future__ import annotations

SCRIPT_RANGES: dict[str, str] = {
    "Latin": "A-Za-z\u00c0-\u024f\u1e00-\u1eff",
    "Han": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
    "Kana": "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f",
    "Hangul": "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af",
    "Cyrillic": "\u0400-\u04ff\u0500-\u052f",
    "Arabic": "\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff",
    "Devanagari": "\u0900-\u097f",
    "Bengali": "\u0980-\u09ff",
    "Thai": "\u0e00-\u0e7f",
    "Greek": "\u0370-\u03ff",
    "Hebrew": "\u0590-\u05ff",
    "Ethiopic": "\u1200-\u139f",
    "Georgian": "\u10a0-\u10ff",
    "Armenian": "\u0530-\u058f",
    "Tamil": "\u0b80-\u0bff",
}
SCRIPT_CLASS = {name: f"[{chars}]" for name, chars in SCRIPT_RANGES.items()}


# Scripts a language is normally written in. Japanese mixes Kanji and Kana; Korean may use Hanja.
LANGUAGE_SCRIPTS: dict[str, tuple[str, ...]] = {
    "zh": ("Han",),
    "ja": ("Han", "Kana"),
    "ko": ("Hangul", "Han"),
    "ru": ("Cyrillic",),
    "uk": ("Cyrillic",),
    "bg": ("Cyrillic",),
    "sr": ("Cyrillic", "Latin"),
    "ar": ("Arabic",),
    "fa": ("Arabic",),
    "ur": ("Arabic",),
    "hi": ("Devanagari",),
    "mr": ("Devanagari",),
    "ne": ("Devanagari",),
    "bn": ("Bengali",),
    "th": ("Thai",),
    "el": ("Greek",),
    "he": ("Hebrew",),
    "am": ("Ethiopic",),
    "ka": ("Georgian",),
    "hy": ("Armenian",),
    "ta": ("Tamil",),
}
# Any language not listed above is taken to be written in Latin script.
DEFAULT_SCRIPTS: tuple[str, ...] = ("Latin",)

# Languages without spaces between words: lengths are counted in characters, shingles too.
UNSPACED_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo"})


def scripts_of(language: str) -> tuple[str, ...]:
    return LANGUAGE_SCRIPTS.get(language, DEFAULT_SCRIPTS)
