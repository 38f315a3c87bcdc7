"""Options split out of a text, with labels in the scripts exam questions use."""

from __future__ import annotations

import pytest

from globmed_data.sources.option_labels import label_index, split_options


@pytest.mark.parametrize(
    ("text", "stem", "labels", "first"),
    [
        ("Which drug?\nA. Aspirin\nB. Heparin\nC. Warfarin", "Which drug?", "ABC", "Aspirin"),
        ("Which drug? A) Aspirin B) Heparin", "Which drug?", "AB", "Aspirin"),
        ("Which is right? (a) one (b) two (c) three", "Which is right?", "abc", "one"),
        (
            "ما هو العلاج؟ أ- الأسبرين ب- الهيبارين ج- الوارفارين د- لا شيء",
            "ما هو العلاج؟",
            "أبجد",
            "الأسبرين",
        ),
        ("מה הטיפול? א. אספירין ב. הפרין ג. וורפרין", "מה הטיפול?", "אבג", "אספירין"),
        ("Какой препарат? А) аспирин Б) гепарин В) варфарин", "Какой препарат?", "АБВ", "аспирин"),
        ("Τι ισχύει; Α. ένα Β. δύο Γ. τρία", "Τι ισχύει;", "ΑΒΓ", "ένα"),
        (
            "正しいのはどれか。\nア　アスピリン\nイ　ヘパリン\nウ　ワルファリン",
            "正しいのはどれか。",
            "アイウ",
            "アスピリン",
        ),
        ("다음 중 옳은 것은? ① 아스피린 ② 헤파린 ③ 와파린", "다음 중 옳은 것은?", "①②③", "아스피린"),
        ("옳은 것을 고르시오. ㄱ. 가 ㄴ. 나 ㄷ. 다", "옳은 것을 고르시오.", "ㄱㄴㄷ", "가"),
        ("どれか。\nＡ．アスピリン\nＢ．ヘパリン", "どれか。", "AB", "アスピリン"),  # full-width
        ("Q?\n1. one\n2. two\n3. three", "Q?", "123", "one"),
    ],
)
def test_options_split_out_of_a_text_in_any_script(text, stem, labels, first) -> None:
    found = split_options(text)
    assert found is not None
    got_stem, pairs = found
    assert got_stem == stem
    assert "".join(label for label, _ in pairs) == labels
    assert pairs[0][1] == first


@pytest.mark.parametrize(
    "text",
    [
        "Hepatitis A. Which vaccine prevents it?",  # a letter that merely ends a word
        "A patient aged 45 presents with chest pain.",  # no delimiter: not a label
        "Vitamin B. deficiency and vitamin A. excess",  # out of order
    ],
)
def test_text_without_a_run_of_labels_is_left_alone(text) -> None:
    assert split_options(text) is None


def test_a_configured_label_set() -> None:
    found = split_options("Choose: i) one ii) two iii) three", ("i", "ii", "iii"))
    assert found == ("Choose:", [("i", "one"), ("ii", "two"), ("iii", "three")])


@pytest.mark.parametrize(
    ("token", "index"), [("ب", 1), ("(ب)", 1), ("③", 2), ("イ", 1), ("Ｃ", 2), ("ㄷ", 2), ("Г", 3)]
)
def test_answer_labels_of_other_scripts(token, index) -> None:
    assert label_index(token) == index
