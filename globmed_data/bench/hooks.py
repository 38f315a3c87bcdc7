"""The functions the generated harness tasks name (`!function globmed_data.bench.hooks.…`):
what lm-evaluation-harness lacks for this dataset, and nothing it already does.

- `process_docs_with` turns an exported row into a harness document (the task folder's generated
  `globmed_hooks.py` calls it with the benchmark's settings): the rendered prompt, the
  choice continuations, the gold index (the harness's own `acc` needs one) and the gold set;
- `results_loglik`: the option with the highest log-likelihood, right only when the gold set is
  exactly that option (multi-answer items cannot be right in this mode: documented);
- `results_generate`: the reply parsed by `prompts.parse_letters`, right only on exact set
  equality; an unparseable reply is invalid (and wrong);
- `results_open_qa`: chrF++ (sacrebleu) of the reply against the reference, in [0, 1];
- `results_judge`: a judge model's yes/no verdict on an open-QA reply (bench/judge.py).
"""

from __future__ import annotations

from typing import Any

from globmed_data.bench.prompts import LETTERS, parse_letters, render


def _doc(doc: dict[str, Any], instruction: str) -> dict[str, Any]:
    r = render(doc, instruction)
    return {
        **doc,
        "prompt": r.prompt,
        "prompt_language": r.prompt_language,
        "choices": list(LETTERS[: len(r.options)]),  # the harness adds its " " delimiter
        "shown_options": r.options,
        "gold": r.gold[0] if r.gold else 0,
        "gold_set": r.gold,
        "reference": r.reference,
    }


def process_docs_with(dataset: Any, *, instruction: str, limit: int | None) -> Any:
    """Render the split's rows into harness documents. With a limit, only the first `limit` rows:
    the harness's own limit takes the same first rows after this hook, so rendering the rest
    would be wasted (it was most of a chance baseline's time on a large split)."""
    if limit is not None and len(dataset) > limit:
        dataset = dataset.select(range(limit))
    return dataset.map(lambda doc: _doc(doc, instruction), load_from_cache_file=False)


def results_loglik(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    lls = [float(r[0]) for r in results]
    best = max(range(len(lls)), key=lambda i: lls[i])
    return {"acc": float(doc["gold_set"] == [best]), "invalid": 0.0}


def results_generate(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    picked = parse_letters(str(results[0]), list(doc["shown_options"]))
    return {"acc": float(picked == list(doc["gold_set"])), "invalid": float(picked is None)}


def results_open_qa(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    return {
        "acc": chrf_pp(str(results[0]), str(doc["reference"])),
        "invalid": float(not str(results[0]).strip()),
    }


def results_judge(doc: dict[str, Any], results: list[Any]) -> dict[str, float]:
    from globmed_data.bench.judge import verdict

    said = verdict(str(results[0]))
    return {"acc": float(said is True), "invalid": float(said is None)}


def chrf_pp(hypothesis: str, reference: str) -> float:
    """Sentence chrF++ (character 6-grams plus word bigrams), scaled to [0, 1]."""
    from sacrebleu.metrics import CHRF

    return CHRF(word_order=2).sentence_score(hypothesis.strip(), [reference]).score / 100.0
