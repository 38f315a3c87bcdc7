"""The missing_image rule in every language: phrases per language, senses that are not an image,
phrases added in the config, and a translation that inherits its parent's missing image."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from globmed_data.config import load_config
from globmed_data.quality.evaluate import contains, evaluate, without_word_boundaries
from globmed_data.quality.phrases import IMAGE_PHRASES, language_patterns
from globmed_data.quality.settings import QualitySettings
from globmed_data.quality.stage import run_quality
from tests.helpers import collect_all, write_config
from tests.quality.test_quality import GOOD, SCHEMA

# Every language of the shared data, GlobMed's public folders and low-resource defaults, he, vi.
LANGUAGES = ["en", "es", "fr", "ja", "zh", "ru", "ar", "hi", "de", "it", "ko", "th", "pt", "sw", "yo", "zu",
             "bn", "id", "ms", "he", "vi"]  # fmt: skip

REFERS = [
    ("en", "Which structure is marked in the image below?"),
    ("en", "Question linked to image no.31 A 26-year-old woman consulted for fever."),
    ("en", "In image 15, which lesion is seen?"),
    ("en", "A chest X-ray of the patient is shown separately. Which is elevated?"),
    ("en", "A photomicrograph of a section of the brain is shown. What are the inclusions?"),
    ("es", "Pregunta asociada a la imagen 3: ¿cuál es el diagnóstico?"),
    ("es", "Pregunta vinculada a la imagen nº17 ¿Cuál es correcta?"),
    ("pt", "Observe a imagem a seguir e responda qual é o diagnóstico."),
    ("fr", "Sur la radiographie ci-dessous, quelle lésion voyez-vous ?"),
    ("de", "Welche Struktur ist in der folgenden Abbildung markiert?"),
    ("it", "Quale struttura è indicata nella figura seguente?"),
    ("ru", "Какая структура показана на рисунке?"),
    ("ja", "頭部の写真を別に示す。診断はどれか。"),
    ("ja", "胸部エックス線写真（A）と胸部CT（B）を別に示す。"),
    ("zh", "心电图检查结果见图19，首选的处理措施是"),
    ("ko", "다음 사진에서 보이는 병변은 무엇인가?"),
    ("ar", "يظهر فحص الجسم النتائج الموضحة في الصورة. ما التشخيص؟"),
    ("he", "מה רואים בתמונה המצורפת?"),
    ("hi", "नीचे दिए गए चित्र में कौन सी संरचना है?"),
    ("bn", "নিচের চিত্রে কোন অঙ্গটি দেখানো হয়েছে?"),
    ("th", "จากภาพ ผู้ป่วยรายนี้น่าจะเป็นโรคใด"),
    ("vi", "Xem hình dưới đây và cho biết chẩn đoán."),
    ("id", "Perhatikan gambar berikut, apa diagnosisnya?"),
    ("ms", "Berdasarkan rajah di bawah, apakah diagnosisnya?"),
    ("sw", "Tazama picha hapa chini na ueleze ugonjwa huu."),
    ("yo", "Wo àwòrán ìsàlẹ̀ yìí kí o sọ àrùn náà."),
    ("zu", "Bheka isithombe esingezansi bese usho isifo."),
]
NOT_AN_IMAGE = [
    ("en", "What were the figures of new cases of measles in 2020, and what do they suggest?"),
    ("en", "The clinical picture began with syncope; what is the most likely diagnosis?"),
    ("en", "Which of the following radiographs would be most effective to locate the tooth?"),
    ("en", "Blood pressure figures of 160/100 mmHg are obtained; what is the diagnosis?"),
    ("es", "El cuadro clínico comenzó con síncope y la prueba de imagen fue normal."),
    ("he", "התמונה הקלינית מתאימה לאבחנה של דלקת ריאות. מה הטיפול?"),
    ("zh", "诊断冠心病最常用的非创伤性检查方法是超声心动图\n24小时动态心电图"),
    ("vi", "Bệnh nhân có hình thành cục máu đông, chẩn đoán là gì?"),
]


def _hits(
    rows: list[tuple[str, str]], settings: QualitySettings | None = None, **extra: object
) -> list[bool]:
    frame = pl.DataFrame(
        [
            {**GOOD, "entry_id": str(k), "language": lang, "question": text, **extra}
            for k, (lang, text) in enumerate(rows)
        ],
        schema=SCHEMA,
    )
    decided = evaluate(frame, settings or QualitySettings())
    return ["missing_image" in r for r in decided["reasons"].to_list()]


def test_every_language_has_its_own_phrases() -> None:
    assert set(LANGUAGES) <= set(IMAGE_PHRASES)


@pytest.mark.parametrize(("language", "text"), REFERS)
def test_a_reference_to_an_absent_image_is_caught_in_its_language(language: str, text: str) -> None:
    assert _hits([(language, text)]) == [True]


@pytest.mark.parametrize(("language", "text"), NOT_AN_IMAGE)
def test_other_senses_of_the_picture_words_are_not_hits(language: str, text: str) -> None:
    assert _hits([(language, text)]) == [False]


def test_another_languages_phrase_does_not_fire_but_english_does_everywhere() -> None:
    # "בתמונה" is Hebrew's; in a Spanish entry it is not searched. "see the figure" is searched in all.
    assert _hits(
        [("es", "¿Qué dice בתמונה aquí sobre la fiebre del paciente?"), ("es", "see the figure: ¿cuál?")]
    ) == [
        False,
        True,
    ]


def test_the_config_adds_phrases_and_refuses_a_broken_regex() -> None:
    text = [("sw", "Ona mchoro wa moyo, ni ugonjwa gani huu?")]
    assert _hits(text) == [False]
    assert _hits(text, QualitySettings(image_phrases={"sw": [r"\bona mchoro\b"]})) == [True]
    with pytest.raises(ValueError, match=r"image_phrases\.sw: '\(ona' is not a valid regex"):
        QualitySettings(image_phrases={"sw": ["(ona"]})


def test_word_boundaries_are_left_out_of_the_first_search_only() -> None:
    assert without_word_boundaries(r"(?i)(?-u:\b)see\bx\Bq\b{start}y") == "(?i)(?-u:)seexqy"
    assert without_word_boundaries(r"a\\b") is None  # an escaped backslash, then the letter b
    assert without_word_boundaries("no boundary") is None


def test_the_boundary_free_first_search_finds_what_the_exact_pattern_finds() -> None:
    """Every language's search and removal pattern, on texts where a picture word stands next
    to letters, accents, digits, marks and scripts that make and break word boundaries."""
    search, remove = language_patterns({"sw": [r"\bona mchoro\b"]})
    words = [t for _, t in REFERS + NOT_AN_IMAGE]
    glue = ["", " ", "é", "a", "1", "_", "ñ", "-", "、", "ة", "\u0301", "\n"]
    texts = [f"{g}{w}{h}" for w in words for g in glue for h in glue[::3]]
    texts += [w.replace(" ", g) for w in words for g in glue]  # words run together, or apart
    series = pl.Series([*texts, "", "figura", "la figuraé", "éla figura 3", "imagen nº17é"])
    loose_only = 0  # texts the first search finds and the exact pattern then turns down
    for pattern in [*search.values(), *remove.values()]:
        expected = series.str.contains(pattern).to_numpy()
        assert (contains(series, pattern) == expected).all(), pattern
        assert expected.any() or pattern in remove.values()
        loose = without_word_boundaries(pattern)
        loose_only += int(series.str.contains(loose).sum() - expected.sum()) if loose else 0
    assert loose_only > 50


def test_a_translation_inherits_its_parents_missing_image(tmp_path: Path, warehouse) -> None:
    """IgakuQA's English translations say nothing of the booklet their Japanese parents point to;
    a parent edited to carry no reference frees its translation on the next run."""
    data = tmp_path / "d"
    data.mkdir()

    def write(name: str, rows: list[dict]) -> None:
        (data / name).write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )

    ja = "75歳の男性。胸痛を主訴に来院した。頭部の写真を別に示す。診断はどれか。"
    write(
        "ja.jsonl",
        [
            {
                "problem_id": "p1",
                "problem_text": ja,
                "choices": ["心筋梗塞", "狭心症", "肺炎"],
                "answer": ["a"],
            }
        ],
    )
    en = "A 75-year-old man came to the hospital with chest pain. What is the diagnosis?"
    choices = ["MI", "Angina", "Pneumonia"]
    write("en.jsonl", [{"problem_id": "p1", "problem_text_en": en, "choices_en": choices, "answer": ["a"]}])
    config = write_config(
        tmp_path,
        [
            {"name": "ja", "paths": ["d/ja.jsonl"], "language": "ja", "preset": "problem_choices"},
            {"name": "en", "paths": ["d/en.jsonl"], "language": "en", "preset": "problem_choices_en",
             "origin": "translated", "translation_of": {"source": "ja", "key": "problem_id"}},
        ],
        langid={"enabled": False},
    )  # fmt: skip
    loaded = load_config(config)
    collect_all(warehouse, loaded)
    run_quality(warehouse, loaded, "r1")
    reasons = dict(
        warehouse.query("SELECT e.source, q.reasons FROM quality_results q JOIN entries e USING (entry_id)")
    )
    assert "missing_image" in reasons["ja"] and "missing_image" in reasons["en"]

    write("ja.jsonl", [{"problem_id": "p1", "problem_text": ja.replace("頭部の写真を別に示す。", ""),
                        "choices": ["心筋梗塞", "狭心症", "肺炎"], "answer": ["a"]}])  # fmt: skip
    collect_all(warehouse, loaded)
    checked = run_quality(warehouse, loaded, "r2")["checked"]
    reasons = dict(
        warehouse.query("SELECT e.source, q.reasons FROM quality_results q JOIN entries e USING (entry_id)")
    )
    assert checked == 2 and reasons == {"ja": [], "en": []}
