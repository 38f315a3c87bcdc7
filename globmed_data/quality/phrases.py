"""Phrases by which a question refers to an image it does not carry, one list per language.

The `missing_image` rule searches an entry's text with English's list and its own language's
(an English phrase turns up in any language's exam, "see Figure 2" say). Each list is a few
regexes (Rust syntax, matched case-insensitively) of a picture word next to a pointing word:
"the image below", "in figure 3", "as shown", never the picture word alone, which also means
imaging, a clinical picture or a figure (number). `NOT_IMAGE` removes such senses before the
search. The config's `quality.image_phrases` adds regexes per language (docs/quality.md).
Recall and precision per language, on labelled real items: benchmarks/content_rules_eval.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

_B = r"(?-u:\b)"  # an ASCII word boundary (fast); Latin-script lists also use \b on non-ASCII

IMAGE_PHRASES: dict[str, tuple[str, ...]] = {
    "en": (
        rf"{_B}(?:see|shown in|refer to|depicted in|illustrated in) (?:the )?(?:accompanying |following "
        rf"|attached )?(?:figure|image|picture|photo(?:graph)?|diagram|illustration|exhibit)s?{_B}",
        rf"{_B}(?:in|on) the (?:accompanying |following |attached )?(?:figure|image|picture|photo(?:graph)?"
        rf"|diagram|illustration)(?: \d+[a-z]?)?(?: |,|\.|$)",
        rf"{_B}(?:figure|fig\.|image|picture|photograph|photo|exhibit)s? "
        rf"(?:below|above|shown|provided|attached){_B}",
        rf"{_B}the (?:image|figure|picture|photograph|photo|radiograph|x-ray)s? (?:below|above|shows?){_B}",
        rf"{_B}the following (?:image|figure|picture|photograph|photo)s?{_B}",  # not "radiographs would..."
        rf"{_B}(?:photomicrograph|micrograph|photograph|photo|radiograph|x-ray|image|ecg|electrocardiogram|"
        rf"scan|smear|specimen|tracing)s?{_B}[^.?]{{0,80}} (?:is|are) shown\s*[.:]",
        rf"{_B}indicated by (?:the )?arrows?{_B}|{_B}(?:the )?arrows? (?:indicates?|points? to|shows?){_B}",
        rf"{_B}(?:in |see )?(?:figure|fig\.|image|photo|exhibit) ?(?:no\. ?)?\d+[a-z]?{_B}",
        rf"{_B}(?:is|are) (?:shown|given|attached|presented) separately{_B}",
    ),
    "es": (
        r"\b(?:la|el|las|los) (?:figura|imagen|fotograf[ií]a|radiograf[ií]a)s? (?:adjunta|siguiente|que se "
        r"muestra|de abajo|anterior|superior|inferior)",
        r"\b(?:ver|v[ée]ase|observe|observa) (?:la )?(?:figura|imagen|fotograf[ií]a)\b",
        r"\bse muestra en la (?:figura|imagen)|\b(?:asociad[ao]|correspondiente)s? a la (?:figura|imagen)",
        r"\ben la (?:figura|imagen|fotograf[ií]a)(?: n?[º°]? ?\d+)?(?: |,|\.|$)",
        r"\b(?:figura|imagen) n?[º°]? ?\d+\b",
    ),
    "pt": (
        r"\b(?:a|na|da) (?:figura|imagem|foto(?:grafia)?|radiografia) "
        r"(?:abaixo|acima|a seguir|anexa|seguinte)",
        r"\bimagem a seguir|\b(?:veja|observe|ver) a (?:figura|imagem|foto)\b",
        r"\b(?:mostrad|apresentad|ilustrad)[ao]s? na (?:figura|imagem)",
        r"\bna (?:figura|imagem)(?: \d+)?(?: |,|\.|$)|\b(?:figura|imagem) \d+\b",
    ),
    "fr": (
        r"\b(?:voir|cf\.?) (?:la |l')?(?:figure|image|photo)\b",
        r"\b(?:la figure|l'image|la photo(?:graphie)?|la radiographie) "
        r"(?:ci-(?:dessous|dessus|jointe)|suivante)",
        r"\b(?:sur|dans) (?:la |l')(?:figure|image|photo(?:graphie)?)(?: \d+)?(?: |,|\.|$)",
        r"\b(?:figure|image|photo) n?°? ?\d+\b",
    ),
    "de": (
        r"\b(?:siehe|s\.) (?:die )?(?:Abbildung|Abb\.|Bild|Foto)",
        r"\b(?:in|auf) (?:der|dem) (?:folgenden |obigen |unteren |beigefügten )?(?:Abbildung|Abb\.|Bild|Foto"
        r"|Röntgenbild|Aufnahme)\b",
        r"\b(?:Abbildung|Abb\.|Bild) \d+\b|\babgebildete[nrs]?\b|\b(?:ist|sind) abgebildet",
    ),
    "it": (
        r"\b(?:vedi|vedere|osserva(?:re)?) (?:la )?(?:figura|immagine|foto)\b",
        r"\bnella (?:figura|immagine|foto(?:grafia)?)(?: seguente| sotto| sopra| allegata| \d+)?(?: |,|\.|$)",
        r"\b(?:figura|immagine) (?:seguente|sotto|sopra|allegata|\d+)\b|\bmostrat[ao] in figura",
    ),
    "ru": (
        r"на рисунке|рисун(?:ок|ке|ка) ?\d|рис\. ?\d|(?:на )?изображени[еи] ниже|на фото|на снимке",
        r"(?:см\.?|смотрите) (?:рис|изображени|фото)",
    ),
    "ja": (
        r"別冊|次の(?:写真|画像|図)|(?:写真|画像|図)を示す|(?:写真|画像|図)\s*[（(]?\s*[A-Z0-9０-９]\s*[）)]?\s*を",
        r"図に示す|下図|を別に示す|(?:写真|画像|図)のような",  # 別に示す: "shown separately" (the booklet)
    ),
    "zh": (r"如图|下图|见图|附图|图中所示|图[ 　]?\d|(?:图片|照片|影像图)(?:中|所示|显示)",),
    "ko": (r"다음 (?:그림|사진|영상)|아래 (?:그림|사진)|(?:그림|사진) ?\d",
           r"(?:그림|사진)(?:에서|과 같이|에 보이는)"),
    "ar": (
        r"في الصورة|الصورة (?:أدناه|التالية|المرفقة)|انظر (?:إلى )?(?:الصورة|الشكل)",
        r"الشكل (?:أدناه|التالي|المرفق|رقم|\d)|موضح(?:ة)? في (?:الصورة|الشكل)",
    ),
    "he": (r"בתמונה|בתרשים|באיור|(?:ראה|ראו) (?:תמונה|איור|תרשים)|התמונה (?:הבאה|המצורפת)|איור \d",),
    "hi": (r"चित्र में|नीचे (?:दिए गए |दी गई |दिखाए गए )?(?:चित्र|छवि|तस्वीर)",
           r"(?:चित्र|छवि|तस्वीर) (?:देखें|में दिखा)|चित्र \d"),
    "bn": (r"চিত্রে|ছবিতে|নিচের (?:চিত্র|ছবি)|চিত্র \d",),
    "th": (r"ภาพ(?:ด้าน)?ล่าง|ดังภาพ|จากภาพ|ในภาพ|ดังรูป|จากรูป|รูป(?:ที่)? ?\d",),
    "vi": (
        r"\b(?:hình|ảnh) (?:dưới đây|bên dưới|sau đây|bên trên)|\b(?:xem|quan sát|như) hình\b",
        r"\btrong (?:hình|ảnh) (?:\d|sau|dưới|bên|trên)|\bhình \d+\b",
    ),
    "id": (r"\b(?:lihat|perhatikan) (?:gambar|foto)\b|\b(?:pada|seperti) gambar\b",
           r"\bgambar (?:di bawah|berikut|di atas|\d+)"),
    "ms": (r"\b(?:lihat|perhatikan) (?:gambar|rajah|foto)\b|\b(?:pada|dalam) (?:gambar|rajah)\b",
           r"\b(?:gambar|rajah) (?:di bawah|berikut|di atas|\d+)"),
    "sw": (r"\b(?:tazama|angalia) (?:picha|mchoro|kielelezo)\b|\bkatika (?:picha|kielelezo)\b",
           r"\bpicha (?:hapa chini|ifuatayo|iliyo hapo)|\bkielelezo \d"),
    "yo": (r"\b(?:wo|wò) (?:àwòrán|aworan)|\b(?:nínú|ninu) (?:àwòrán|aworan)",
           r"(?:àwòrán|aworan) (?:ìsàlẹ̀|isale|yìí|yii|tó wà)"),
    "zu": (r"\b(?:bheka|buka) (?:isithombe|umdwebo)|\besithombeni\b",
           r"\bisithombe (?:esingezansi|esilandelayo)"),
}  # fmt: skip

# Senses of the picture words that are not an image: removed from the text before the search.
NOT_IMAGE: dict[str, tuple[str, ...]] = {
    "en": (rf"{_B}figures? (?:of|for|on|from|show(?:ing|ed)?|suggest|indicate)(?: the)? "
           rf"(?:new |recent |total |the )?"
           rf"(?:cases?|deaths?|patients?|people|population|incidence|mortality|prevalence|rates?){_B}",
           rf"{_B}clinical picture{_B}|{_B}picture of health{_B}|{_B}body image{_B}|{_B}mirror image{_B}"),
    "es": (r"\bcuadro cl[ií]nico\b|\bimagen corporal\b|\bdiagn[óo]stico por (?:la )?imagen\b",),
    "pt": (r"\bquadro cl[ií]nico\b|\bimagem corporal\b|\bdiagn[óo]stico por imagem\b",),
    "fr": (r"\btableau clinique\b|\bimage corporelle\b|\bimagerie\b",),
    "he": (r"(?:ה)?תמונה (?:ה)?קלינית|בתמונה (?:ה)?קלינית",),
}  # fmt: skip


def language_patterns(
    extra: Mapping[str, Sequence[str]] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """(search, remove): one case-insensitive regex per language, English's phrases in each, the
    config's phrases added. A language with no list of its own gets English's ("default")."""
    lists = {lang: list(p) for lang, p in IMAGE_PHRASES.items()}
    for lang, phrases in (extra or {}).items():
        lists.setdefault(lang, []).extend(phrases)
    english = lists["en"]
    search = {lang: _join(english + ([] if lang == "en" else p)) for lang, p in lists.items()}
    search["default"] = _join(english)
    remove = {lang: _join(list(NOT_IMAGE["en"]) + ([] if lang == "en" else list(NOT_IMAGE.get(lang, ()))))
              for lang in search}  # fmt: skip
    return search, remove


def _join(patterns: list[str]) -> str:
    return "(?i)" + "|".join(f"(?:{p})" for p in patterns)
