import random
import re

import pytest

from globmed_data.sources.normalize import _clean, clean_text, split_labelled_options, strip_option_labels


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Fi\u00c3\u00a8vre \u00c3\u00a9lev\u00c3\u00a9e", "Fièvre élevée"),  # UTF-8 read as Latin-1
        ("â€œquotedâ€\x9d", "“quoted”"),  # via cp1252
        ("fièvre élevée", "fièvre élevée"),  # correct accents are left alone
        ("Cafe\u0301", "Café"),  # NFD -> NFC
        ("  a\t\tb \u00a0 c  ", "a b c"),
        ("line\r\nbreak\rhere", "line\nbreak\nhere"),
        ("bell\x07 and zero\u200bwidth\ufeff", "bell and zerowidth"),
        ("a\n\n\n\n\nb", "a\n\nb"),
        ("患儿，1岁半。\u3000发热", "患儿，1岁半。\u3000发热"),  # full-width forms are kept
        ("", ""),
        ("It&apos;s 5 &amp; 6 &#39;mg&#x27; &lt;b&gt;", "It's 5 & 6 'mg' <b>"),  # whole entities
        ("double &amp;lt;escaped&amp;gt;", "double <escaped>"),
        ("R&D, AT&T, &notes, &unknown; &#xZZ;", "R&D, AT&T, &notes, &unknown; &#xZZ;"),  # not entities
        ("a&nbsp;b", "a b"),
        ("Bệnh\u200c nhân\u200d nam", "Bệnh nhân nam"),  # stray joiners in Vietnamese
        ("CRP(C-reactive\u200cprotein)の測定, 30\u200cml/kg", "CRP(C-reactive protein)の測定, 30 ml/kg"),
        ("'\u200c発熱性好中球減少症", "'発熱性好中球減少症"),  # between Latin letters: a space; else gone
        ("gly\u00adcaemia and word\u2060joiner", "glycaemia and wordjoiner"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected
    assert clean_text(clean_text(raw)) == expected  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "क्\u200dष",  # ZWJ carries meaning in Devanagari
        "می\u200cخواهم",  # ZWNJ in Persian
        "👩\u200d⚕️",  # an emoji sequence (health worker)
    ],
)
def test_zero_width_joiners_kept_where_a_script_joins(text) -> None:
    assert clean_text(text) == text


def _fold_reference(text: str) -> str:
    """White space folding as first written: every run matched, one substitution per run."""
    text = re.sub(r"[ \t\u00a0\u2000-\u200a\u202f\u205f]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def test_white_space_folding_equals_the_plain_patterns() -> None:
    """The faster patterns (only what changes is matched) give the plain patterns' output."""
    rng = random.Random(7)
    alphabet = ["a", "b", "é", "病", " ", " ", "\t", "\u00a0", "\u2003", "\u202f", "\n", "\n"]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert clean_text(text) == _fold_reference(text), repr(text)


def test_the_plain_ascii_shortcut_equals_the_whole_normalisation() -> None:
    rng = random.Random(11)
    alphabet = ["a", "Z", "0", " ", " ", "&", "amp;", "#39;", "\t", "\r", "\n", "\x7f", "\x01", "~", "."]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        assert clean_text(text) == _clean(text), repr(text)


def test_the_already_clean_shortcut_equals_the_whole_normalisation() -> None:
    """Any text, not only ASCII, that _clean would only strip is returned stripped at once: the
    shortcut must never keep what a step changes (spaces, newlines, NFD, controls, joiners,
    entities, mojibake)."""
    rng = random.Random(13)
    alphabet = [
        "a", "é", "病", "ب", "ệ", " ", " ", "\n", "\t", "\r", "\u00a0", "\u2003", "\u202f", "\u205f",
        "e\u0301", "\u00c3\u00a9", "â€œ", "&amp;", "&", "\x07", "\x85", "\u00ad", "\u200b", "\u200c",
        "\u200d", "\u2060", "\ufeff", "\u3000", "\U0001f600",
    ]  # fmt: skip
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert clean_text(text) == _clean(text), repr(text)


def test_strip_option_labels_only_full_sequence() -> None:
    assert strip_option_labels(["(A) Liver", "(B) Spleen"]) == ["Liver", "Spleen"]
    assert strip_option_labels(["A. one", "B. two", "C. three"]) == ["one", "two", "three"]
    assert strip_option_labels(["1) one", "2) two"]) == ["one", "two"]
    # Out of sequence or partial: text that merely starts like a label is left alone.
    assert strip_option_labels(["A. fumigatus", "C. albicans"]) == ["A. fumigatus", "C. albicans"]
    assert strip_option_labels(["A. fumigatus", "Candida"]) == ["A. fumigatus", "Candida"]
    assert strip_option_labels(["Vitamin A", "Vitamin B"]) == ["Vitamin A", "Vitamin B"]


def test_split_labelled_options() -> None:
    text = "(A) Poly lactic acid.\n(B) PTFE.\n(C) Collagen (type I)."
    assert split_labelled_options(text) == [
        ("A", "Poly lactic acid."),
        ("B", "PTFE."),
        ("C", "Collagen (type I)."),
    ]
