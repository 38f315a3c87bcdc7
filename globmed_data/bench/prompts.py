"""Prompts per task and language, versioned: the benchmark's harness tasks and (later) the
training flow's examples render items through this one module, so both see the same format.

Every choice task is shown as lettered options (MCQA its own; yes/no/maybe and NLI their label
sets; a classification item its source's declared labels), so one answer format, one parser
and one chance baseline serve them all:

    <instruction>

    Question: <question>            (NLI: Premise: ... / Hypothesis: ...)
    Context: <context>              (when the item has one)
    A. <option>
    B. <option>
    Answer:

Log-likelihood mode scores the continuations " A", " B", ... after "Answer:"; generate mode
parses the model's reply with `parse_letters` (documented in docs/benchmark.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Part of every stored result: a change to any template or to the parser bumps it.
PROMPT_VERSION = "p1"

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
YES_NO_LABELS = ("yes", "no", "maybe")
NLI_LABELS = ("entailment", "neutral", "contradiction")
CHOICE_TASKS = ("mcqa", "yes_no", "nli", "classification")


@dataclass(frozen=True)
class Template:
    mcqa: str
    yes_no: str
    nli: str
    open_qa: str
    classification: str
    question: str
    context: str
    premise: str
    hypothesis: str
    answer: str
    yes_no_labels: tuple[str, str, str]
    nli_labels: tuple[str, str, str]


TEMPLATES: dict[str, Template] = {
    "en": Template(
        mcqa="The following is a multiple-choice question about medicine. Answer with the letter of "
        "the correct option; if several options are correct, give every correct letter.",
        yes_no="Answer the following medical question with the letter of yes, no or maybe.",
        nli="Does the premise entail the hypothesis, contradict it, or neither? Answer with the letter.",
        open_qa="Answer the following medical question briefly.",
        classification="Which of the following labels fits the medical question? Answer with its letter.",
        question="Question",
        context="Context",
        premise="Premise",
        hypothesis="Hypothesis",
        answer="Answer",
        yes_no_labels=YES_NO_LABELS,
        nli_labels=NLI_LABELS,
    ),
    "es": Template(
        mcqa="La siguiente es una pregunta de opción múltiple sobre medicina. Responda con la letra "
        "de la opción correcta; si varias opciones son correctas, indique todas las letras correctas.",
        yes_no="Responda a la siguiente pregunta médica con la letra de sí, no o quizás.",
        nli="¿La premisa implica la hipótesis, la contradice o ninguna de las dos? Responda con la letra.",
        open_qa="Responda brevemente a la siguiente pregunta médica.",
        classification="¿Cuál de las siguientes etiquetas corresponde a la pregunta médica? "
        "Responda con su letra.",
        question="Pregunta",
        context="Contexto",
        premise="Premisa",
        hypothesis="Hipótesis",
        answer="Respuesta",
        yes_no_labels=("sí", "no", "quizás"),
        nli_labels=("implicación", "neutral", "contradicción"),
    ),
    "fr": Template(
        mcqa="Voici une question à choix multiples sur la médecine. Répondez par la lettre de "
        "l'option correcte ; si plusieurs options sont correctes, donnez toutes les lettres correctes.",
        yes_no="Répondez à la question médicale suivante par la lettre de oui, non ou peut-être.",
        nli="La prémisse implique-t-elle l'hypothèse, la contredit-elle, ou ni l'un ni l'autre ? "
        "Répondez par la lettre.",
        open_qa="Répondez brièvement à la question médicale suivante.",
        classification="Laquelle des étiquettes suivantes correspond à la question médicale ? "
        "Répondez par sa lettre.",
        question="Question",
        context="Contexte",
        premise="Prémisse",
        hypothesis="Hypothèse",
        answer="Réponse",
        yes_no_labels=("oui", "non", "peut-être"),
        nli_labels=("implication", "neutre", "contradiction"),
    ),
    "de": Template(
        mcqa="Es folgt eine Multiple-Choice-Frage zur Medizin. Antworten Sie mit dem Buchstaben der "
        "richtigen Option; sind mehrere Optionen richtig, nennen Sie alle richtigen Buchstaben.",
        yes_no="Beantworten Sie die folgende medizinische Frage mit dem Buchstaben von ja, nein "
        "oder vielleicht.",
        nli="Folgt die Hypothese aus der Prämisse, widerspricht sie ihr, oder keines von beiden? "
        "Antworten Sie mit dem Buchstaben.",
        open_qa="Beantworten Sie die folgende medizinische Frage kurz.",
        classification="Welche der folgenden Kategorien passt zur medizinischen Frage? "
        "Antworten Sie mit ihrem Buchstaben.",
        question="Frage",
        context="Kontext",
        premise="Prämisse",
        hypothesis="Hypothese",
        answer="Antwort",
        yes_no_labels=("ja", "nein", "vielleicht"),
        nli_labels=("Folgerung", "neutral", "Widerspruch"),
    ),
    "zh": Template(
        mcqa="以下是一道关于医学的选择题。请用正确选项的字母作答；如果有多个正确选项，请给出所有正确的字母。",
        yes_no="请用“是”、“否”或“也许”对应的字母回答以下医学问题。",
        nli="前提是否蕴含假设、与之矛盾，还是两者都不是？请用字母作答。",
        open_qa="请简要回答以下医学问题。",
        classification="以下哪个标签符合这个医学问题？请用其字母作答。",
        question="问题",
        context="背景",
        premise="前提",
        hypothesis="假设",
        answer="答案",
        yes_no_labels=("是", "否", "也许"),
        nli_labels=("蕴含", "中立", "矛盾"),
    ),
}


def template_for(language: str, instruction: str) -> tuple[Template, str]:
    """The template and its language: English, or the item's language where a template exists
    (`instruction: item`); otherwise English (the caller logs the fallback)."""
    if instruction == "item" and language in TEMPLATES:
        return TEMPLATES[language], language
    return TEMPLATES["en"], "en"


def task_of(doc: dict[str, Any]) -> str:
    """The task from an exported row's columns (export/snapshot.py's TASK_COLUMNS)."""
    if "options" in doc and "label" in doc:
        return "classification"
    if "options" in doc:
        return "mcqa"
    if "premise" in doc:
        return "nli"
    if "label" in doc:
        return "yes_no"
    return "open_qa"


@dataclass(frozen=True)
class Rendered:
    prompt: str
    options: list[str]  # the option texts shown after the letters (empty for open QA)
    gold: list[int]  # indices of the correct options (empty for open QA)
    reference: str  # open QA's reference answer ("" for choice tasks)
    prompt_language: str


def render(doc: dict[str, Any], instruction: str = "en") -> Rendered:
    task = task_of(doc)
    t, lang = template_for(str(doc.get("language") or "en"), instruction)
    lines: list[str] = [getattr(t, task), ""]
    if task == "nli":
        lines += [f"{t.premise}: {doc['premise']}", f"{t.hypothesis}: {doc['hypothesis']}"]
    else:
        lines.append(f"{t.question}: {doc['question']}")
        if doc.get("context"):
            lines.append(f"{t.context}: {doc['context']}")
    if task == "open_qa":
        lines.append(f"{t.answer}:")
        return Rendered("\n".join(lines), [], [], str(doc.get("answer") or ""), lang)
    options, gold = _choices(task, doc, t)
    lines += [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    lines.append(f"{t.answer}:")
    return Rendered("\n".join(lines), options, gold, "", lang)


def _choices(task: str, doc: dict[str, Any], t: Template) -> tuple[list[str], list[int]]:
    if task == "mcqa":
        return [str(o) for o in doc["options"]], sorted(int(i) for i in doc["answer_indices"])
    if task == "classification":  # its declared label set, in the source's words
        labels = [str(o) for o in doc["options"]]
        return labels, [labels.index(str(doc["label"]))]
    labels = YES_NO_LABELS if task == "yes_no" else NLI_LABELS
    shown = t.yes_no_labels if task == "yes_no" else t.nli_labels
    return list(shown), [labels.index(str(doc["label"]))]


def continuation(i: int) -> str:
    """What log-likelihood mode scores after the prompt for option i."""
    return f" {LETTERS[i]}"


# A reply names its letters at the start ("B", "(B)", "B.", "B) text", "A, C", "A and C", "AC"),
# optionally after "Answer:" / "The answer is"; or it repeats one option's text exactly.
_LEAD = re.compile(r"^\s*(?:(?:the\s+)?(?:correct\s+)?answer(?:\s+is)?\s*[:：]?\s*)?", re.IGNORECASE)
_LETTER_SET = re.compile(
    r"^\(?([A-Z](?:\s*(?:,|、|&|\band\b|\s)\s*\(?[A-Z]\)?)*|[A-Z]{2,})\)?(?=$|[\s.):：,，。])"
)


def parse_letters(reply: str, options: list[str]) -> list[int] | None:
    """Option indices named by a generated reply, or None when it names none validly (an invalid
    answer: counted in the invalid-answer rate and scored wrong)."""
    text = _LEAD.sub("", reply.strip().splitlines()[0] if reply.strip() else "", count=1).strip()
    m = _LETTER_SET.match(text)
    if m:
        letters = re.findall(r"[A-Z]", m.group(1).replace("and", ""))
        picked = sorted({LETTERS.index(x) for x in letters})
        return picked if picked and picked[-1] < len(options) else None
    lowered = text.lower().rstrip(" .。")
    matches = [i for i, o in enumerate(options) if lowered == o.lower()]
    return matches or None
