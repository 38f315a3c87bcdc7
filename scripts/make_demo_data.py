"""Write the bundled demo data set (data/demo/): medical items written for this project.

Deterministic (seeded): running it again gives byte-identical files. It covers seven
languages (three low-resource), the four task types, five file formats, planted exact and
near duplicates, and planted bad records, so that every pipeline stage visibly acts.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

OUT = Path(__file__).resolve().parents[1] / "data" / "demo"
RNG = random.Random(20260101)

DOSE_TEMPLATES = {
    "en": "A child weighing {w} kg is prescribed {drug} at {d} mg/kg. What single dose should be given?",
    "fr": "Un enfant de {w} kg reçoit {drug} à {d} mg/kg. Quelle dose unique faut-il administrer ?",
    "es": "Un niño de {w} kg recibe {drug} a {d} mg/kg. ¿Qué dosis única se debe administrar?",
    "de": "Ein Kind mit {w} kg Körpergewicht erhält {drug} mit {d} mg/kg. Welche Einzeldosis ist richtig?",
    "sw": "Mtoto mwenye uzito wa kilo {w} ameandikiwa {drug} kwa mg {d} kwa kila kilo. Dozi moja ni kiasi gani?",
    "yo": "Ọmọdé kan tí ó wúwo kílò {w} ni a kọ {drug} fún ní mg {d} fún kílò kọ̀ọ̀kan. Èló ni òògùn ẹ̀ẹ̀kan?",
    "zu": "Ingane enesisindo esingu-{w} kg inikwe i-{drug} ngo-{d} mg nge-kg ngayinye. Uyini umthamo owodwa?",
}
DRUGS = ["paracetamol", "ibuprofen", "amoxicillin", "azithromycin", "ceftriaxone"]

FACTS = [  # (question per language, options, correct index, rationale)
    (
        {
            "en": "Deficiency of which vitamin causes scurvy?",
            "fr": "La carence en quelle vitamine provoque le scorbut ?",
            "es": "¿La deficiencia de qué vitamina causa el escorbuto?",
            "de": "Der Mangel an welchem Vitamin verursacht Skorbut?",
        },
        ["Vitamin A", "Vitamin B12", "Vitamin C", "Vitamin D"],
        2,
        "Vitamin C is needed for collagen synthesis.",
    ),
    (
        {
            "en": "Which organ produces insulin?",
            "fr": "Quel organe produit l'insuline ?",
            "es": "¿Qué órgano produce la insulina?",
            "de": "Welches Organ produziert Insulin?",
        },
        ["Liver", "Pancreas", "Spleen", "Kidney"],
        1,
        "Beta cells of the pancreatic islets secrete insulin.",
    ),
    (
        {
            "en": "Which blood cells carry oxygen?",
            "fr": "Quelles cellules sanguines transportent l'oxygène ?",
            "es": "¿Qué células sanguíneas transportan el oxígeno?",
            "de": "Welche Blutzellen transportieren Sauerstoff?",
        },
        ["Erythrocytes", "Neutrophils", "Platelets", "Lymphocytes"],
        0,
        "Haemoglobin in erythrocytes binds oxygen.",
    ),
    (
        {
            "en": "Which electrolyte disturbance causes peaked T waves on the ECG?",
            "fr": "Quel trouble électrolytique donne des ondes T pointues à l'ECG ?",
            "es": "¿Qué alteración electrolítica produce ondas T picudas en el ECG?",
            "de": "Welche Elektrolytstörung verursacht spitze T-Wellen im EKG?",
        },
        ["Hyponatraemia", "Hyperkalaemia", "Hypocalcaemia", "Hypomagnesaemia"],
        1,
        "Raised potassium makes T waves tall and narrow.",
    ),
    (
        {
            "en": "Which nerve is compressed in carpal tunnel syndrome?",
            "fr": "Quel nerf est comprimé dans le syndrome du canal carpien ?",
            "es": "¿Qué nervio se comprime en el síndrome del túnel carpiano?",
            "de": "Welcher Nerv ist beim Karpaltunnelsyndrom komprimiert?",
        },
        ["Ulnar nerve", "Radial nerve", "Median nerve", "Axillary nerve"],
        2,
        "The median nerve runs through the carpal tunnel.",
    ),
    (
        {
            "en": "Which antibiotics are first-line for uncomplicated cystitis in adult women? (two answers)",
            "fr": "Quels antibiotiques sont de première intention dans la cystite simple de la femme ? (deux réponses)",
            "es": "¿Qué antibióticos son de primera línea en la cistitis no complicada de la mujer? (dos respuestas)",
            "de": "Welche Antibiotika sind erste Wahl bei unkomplizierter Zystitis der Frau? (zwei Antworten)",
        },
        ["Nitrofurantoin", "Fosfomycin", "Vancomycin", "Gentamicin", "Metronidazole"],
        [0, 1],
        "Nitrofurantoin and fosfomycin reach high urinary concentrations.",
    ),
]

HEART = {
    "en": (
        "A normal resting heart rate for adults is 60 to 100 beats per minute.",
        "Is a resting heart rate of {x} beats per minute normal for an adult?",
    ),
    "ja": (
        "成人の安静時心拍数の正常範囲は毎分60〜100回である。",
        "成人で安静時心拍数が毎分{x}回であれば正常か。",
    ),
    "zh": ("成人静息心率的正常范围为每分钟60至100次。", "成人静息心率为每分钟{x}次是否正常？"),
}

FEVER = {
    "en": ("The patient's axillary temperature is {t} °C.", "The patient has a fever."),
    "de": ("Die axillär gemessene Temperatur des Patienten beträgt {t} °C.", "Der Patient hat Fieber."),
}

BMI = {
    "en": "What is the body-mass index of an adult who weighs {w} kg and is {h} m tall?",
    "sw": "Je, BMI ya mtu mzima mwenye uzito wa kilo {w} na urefu wa mita {h} ni kiasi gani?",
}


def dose_items() -> list[dict]:
    items = []
    n = 0
    for lang, template in DOSE_TEMPLATES.items():
        for i in range(28):
            w = 8 + 2 * i
            d = [10, 15, 20, 25][i % 4]
            drug = DRUGS[i % len(DRUGS)]
            total = w * d
            options = [f"{total} mg", f"{total * 2} mg", f"{total // 2} mg", f"{total + 100} mg"]
            RNG.shuffle(options)
            n += 1
            items.append(
                {
                    "id": f"dose-{lang}-{i:03d}",
                    "lang": lang,
                    "question": template.format(w=w, d=d, drug=drug),
                    "choices": options,
                    "answer": "ABCD"[options.index(f"{total} mg")],
                    "explanation": f"{w} kg × {d} mg/kg = {total} mg.",
                }
            )
    return items


def write_dosing(items: list[dict]) -> None:
    lines = [json.dumps(item, ensure_ascii=False) for item in items]
    # Planted problems, each caught with a reason at collect time:
    lines.insert(5, '{"id": "dose-en-bad-json", "lang": "en", "question": "Truncated line", "choices": [')
    lines.insert(
        9,
        json.dumps(
            {
                "id": "dose-en-noanswer",
                "lang": "en",
                "question": "A child weighing 20 kg is prescribed ibuprofen at 10 mg/kg. What single dose?",
                "choices": ["200 mg", "400 mg", "100 mg", "300 mg"],
                "answer": "",
            }
        ),
    )
    lines.insert(
        14,
        json.dumps(
            {
                "id": "dose-fr-range",
                "lang": "fr",
                "question": "Un enfant de 30 kg reçoit du paracétamol à 15 mg/kg. Quelle dose ?",
                "choices": ["450 mg", "900 mg", "225 mg", "550 mg"],
                "answer": "F",
            },
            ensure_ascii=False,
        ),
    )
    lines.insert(
        20,
        json.dumps(
            {
                "id": "dose-es-empty",
                "lang": "es",
                "question": "¿Dosis de amoxicilina?",
                "choices": ["", ""],
                "answer": "A",
            },
            ensure_ascii=False,
        ),
    )
    lines.insert(
        25,
        json.dumps(
            {
                "id": "dose-en-000",
                "lang": "en",
                "question": "Duplicate key of dose-en-000",
                "choices": ["1", "2"],
                "answer": "A",
            }
        ),
    )
    # Mojibake: UTF-8 French read as Latin-1 somewhere upstream; repaired by normalisation.
    broken = "Un enfant de 12 kg reçoit de l'ibuprofène à 10 mg/kg. Quelle dose unique ?"
    broken = broken.encode("utf-8").decode("latin-1")
    lines.insert(
        30,
        json.dumps(
            {
                "id": "dose-fr-mojibake",
                "lang": "fr",
                "question": broken,
                "choices": ["120 mg", "240 mg", "60 mg", "220 mg"],
                "answer": "A",
            },
            ensure_ascii=False,
        ),
    )
    # Wrong declared language: Swahili text declared as Yoruba (the language-ID stage flags it).
    lines.insert(
        40,
        json.dumps(
            {
                "id": "dose-yo-really-sw",
                "lang": "yo",
                "question": DOSE_TEMPLATES["sw"].format(w=50, d=10, drug="paracetamol"),
                "choices": ["500 mg", "1000 mg", "250 mg", "600 mg"],
                "answer": "A",
            },
            ensure_ascii=False,
        ),
    )
    # A record over the demo's max_record_bytes (16 KiB).
    lines.insert(
        45,
        json.dumps(
            {
                "id": "dose-en-huge",
                "lang": "en",
                "question": "Dose? " + "x" * 20000,
                "choices": ["1 mg", "2 mg"],
                "answer": "A",
            }
        ),
    )
    # Well-formed records that the quality stage rejects, one per rule it should visibly apply.
    for item in (
        {
            "id": "dose-en-dup-options",
            "lang": "en",
            "question": "A child weighing 16 kg is prescribed amoxicillin at 25 mg/kg. What single dose?",
            "choices": ["400 mg", "400 mg", "200 mg", "800 mg"],
            "answer": "A",
        },
        {
            "id": "dose-en-figure",
            "lang": "en",
            "question": "As shown in the figure, which syringe holds the correct paracetamol dose for 14 kg?",
            "choices": ["Syringe A", "Syringe B", "Syringe C", "Syringe D"],
            "answer": "B",
        },
        {
            "id": "dose-en-markup",
            "lang": "en",
            "question": "<p>A child weighing 18 kg is prescribed ibuprofen at 10&nbsp;mg/kg. What single dose?</p>",
            "choices": ["180 mg", "360 mg", "90 mg", "280 mg"],
            "answer": "A",
        },
        {
            "id": "dose-de-replacement-chars",
            "lang": "de",
            "question": "Ein Kind mit 22 kg erh\ufffdlt Paracetamol mit 15 mg/kg. Welche Einzeldosis ist richtig?",
            "choices": ["330 mg", "660 mg", "165 mg", "430 mg"],
            "answer": "A",
        },
        {
            "id": "dose-sw-untranslated",
            "lang": "sw",
            "question": DOSE_TEMPLATES["sw"].format(w=24, d=10, drug="ibuprofen"),
            "choices": ["240 mg", "I'm sorry, but there is no text to translate.", "120 mg", "340 mg"],
            "answer": "A",
        },
    ):
        lines.append(json.dumps(item, ensure_ascii=False))
    body = ("\n".join(lines) + "\n").encode("utf-8")
    # A line in Latin-1 (not UTF-8): quarantined as bad_encoding.
    body += json.dumps(
        {
            "id": "dose-de-latin1",
            "lang": "de",
            "question": "Welche Dosis für 20 kg Körpergewicht?",
            "choices": ["200 mg", "400 mg"],
            "answer": "A",
        },
        ensure_ascii=False,
    ).encode("latin-1")
    (OUT / "dosing_mcqa.jsonl").write_bytes(b"\xef\xbb\xbf" + body + b"\n")  # with a BOM


def write_mirror(items: list[dict]) -> None:
    """A second source republishing dosing items: exact copies and near duplicates."""
    rows = []
    for item in items[::9]:
        options = list(item["choices"])
        answer_text = options["ABCD".index(item["answer"])]
        question = item["question"]
        variant = len(rows) % 3
        if variant == 1:  # options reordered
            options = options[::-1]
        elif variant == 2:  # a typo and extra spaces
            question = question.replace("mg/kg", "mg/kg ").replace("weighing", "weihging")
        rows.append(
            {
                "question": question,
                "options": "\n".join(f"({'ABCD'[i]}) {o}" for i, o in enumerate(options)),
                "answer": f"({'ABCD'[options.index(answer_text)]})",
                "language": item["lang"],
            }
        )
    (OUT / "dosing_mirror.json").write_text(
        json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )


def write_facts() -> None:
    with (OUT / "facts_mcqa.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(
            ["qid", "language", "question", "opa", "opb", "opc", "opd", "ope", "correct", "explanation"]
        )
        for i, (questions, options, correct, why) in enumerate(FACTS):
            letters = "".join("ABCDE"[c] for c in (correct if isinstance(correct, list) else [correct]))
            opts = options + [""] * (5 - len(options))
            for lang, q in questions.items():
                w.writerow([f"fact{i}-{lang}", lang, q, *opts, letters, why])
        # Planted: an answer key that is not among the options, and a row with a cell missing.
        w.writerow(
            ["fact-bad-key", "en", "Which organ filters blood?", "Kidney", "Lung", "", "", "", "E", ""]
        )
        fh.write("fact-short-row,en,Which organ pumps blood?,Heart\n")


def write_heart() -> None:
    items = []
    for lang, (context, template) in HEART.items():
        for x in (40, 55, 62, 75, 88, 99, 105, 120, 150, 72):
            items.append(
                {
                    "uid": f"hr-{lang}-{x}",
                    "lang": lang,
                    "context": context,
                    "question": template.format(x=x),
                    "answer": "yes" if 60 <= x <= 100 else "no",
                }
            )
    items.append(
        {
            "uid": "hr-en-bad-label",
            "lang": "en",
            "context": HEART["en"][0],
            "question": "Is 80 beats per minute normal?",
            "answer": "probably",
        }
    )
    doc = {"dataset": "resting heart rate (demo)", "version": 1, "items": items}
    (OUT / "heart_rate_yes_no.json").write_text(
        json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )


def write_fever() -> None:
    rows = {"pair_id": [], "lang": [], "premise": [], "hypothesis": [], "label": []}
    temps = [35.8, 36.4, 36.9, 37.2, 37.6, 38.1, 38.5, 39.0, 39.4, 40.2]
    for lang, (premise, hypothesis) in FEVER.items():
        for t in temps:
            label = "entailment" if t >= 38.0 else "contradiction" if t < 37.5 else "neutral"
            rows["pair_id"].append(f"fever-{lang}-{t}")
            rows["lang"].append(lang)
            rows["premise"].append(premise.format(t=str(t).replace(".", "," if lang == "de" else ".")))
            rows["hypothesis"].append(hypothesis)
            rows["label"].append(label)
    rows["pair_id"].append("fever-en-bad")
    rows["lang"].append("en")
    rows["premise"].append("The temperature is 38.9 °C.")
    rows["hypothesis"].append("The patient has a fever.")
    rows["label"].append("unknown")
    pq.write_table(pa.table(rows), OUT / "fever_nli.parquet", compression="zstd")


def write_bmi() -> None:
    with (OUT / "bmi_open_qa.tsv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["id", "lang", "question", "answer"])
        for lang, template in BMI.items():
            for i, (kg, m) in enumerate(
                [(50, 1.6), (60, 1.7), (70, 1.75), (80, 1.8), (95, 1.7), (45, 1.55), (110, 1.85), (65, 1.65)]
            ):
                bmi = kg / (m * m)
                w.writerow([f"bmi-{lang}-{i}", lang, template.format(w=kg, h=m), f"{bmi:.1f} kg/m²"])
        w.writerow(["bmi-en-noanswer", "en", "What is the BMI of a 70 kg adult?", ""])


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    items = dose_items()
    write_dosing(items)
    write_mirror(items)
    write_facts()
    write_heart()
    write_fever()
    write_bmi()
    for path in sorted(OUT.iterdir()):
        print(f"{path.relative_to(OUT.parent.parent)}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
