"""`globmed translate eval`: score a backend against reference translations (TICO-19, or a
parallel set of the config: translate/parallel.py) with chrF++ and BLEU (sacrebleu), per
language, through the same masking, cache and backend as the stage; the scores are stored in
`translation_evals`."""

from __future__ import annotations

import time
import uuid
from typing import Any, Protocol

from globmed_data.translate.parallel import Pair
from globmed_data.translate.segments import Segment
from globmed_data.translate.stage import Log, Translator, segment_hash
from globmed_data.warehouse import now

DEFAULT_LANGUAGES = ("sw", "ha", "zu", "fr", "es", "ar", "zh", "ru", "hi", "pt")
# sacrebleu tokenizers that need no download: words are not spaced in these scripts.
BLEU_TOKENIZE = {"zh": "zh", "ja": "char", "th": "char"}


class Corpus(Protocol):
    name: str

    def pairs(self, language: str, limit: int) -> list[Pair]: ...


def evaluate(
    translator: Translator, backend: str, corpus: Corpus, languages: list[str], limit: int, log: Log
) -> list[dict[str, Any]]:
    """Scores per target language against a parallel corpus (parallel.py)."""
    import sacrebleu

    eval_id = uuid.uuid4().hex[:12]
    model = translator.s.backends[backend].model
    rows = []
    for lang in languages:
        pairs = corpus.pairs(lang, limit)
        segments = []
        for pair in pairs:
            masked, spans = translator.protector.mask(pair.source)
            segments.append(Segment("question", None, pair.source, masked, spans))
        started = time.perf_counter()
        asked = [(p.source_language, s) for p, s in zip(pairs, segments, strict=True)]
        outputs = translator.segment_outputs(backend, asked, lang)
        seconds = time.perf_counter() - started
        hyps = []
        for source_language, seg in asked:
            raw = outputs.get((source_language, segment_hash(seg.masked))) if seg.needs_model else seg.masked
            hyps.append("" if raw is None else translator.protector.restore(raw, seg.spans)[0])
        refs = [[p.reference for p in pairs]]
        chrf = sacrebleu.corpus_chrf(hyps, refs, word_order=2).score
        bleu = sacrebleu.corpus_bleu(hyps, refs, tokenize=BLEU_TOKENIZE.get(lang, "13a")).score
        row = {
            "eval_id": eval_id,
            "backend": backend,
            "model": model,
            "prompt_version": translator.s.prompt_version,
            "dataset": corpus.name,
            "source_language": ",".join(sorted({p.source_language for p in pairs})),
            "target_language": lang,
            "segments": len(pairs),
            "chrf_pp": round(chrf, 2),
            "bleu": round(bleu, 2),
            "seconds": round(seconds, 3),
        }
        rows.append(row)
        log(f"eval {backend} en→{lang}: chrF++ {row['chrf_pp']}, BLEU {row['bleu']} on {len(pairs)} segments")
    ts = now()
    with translator.wh.transaction() as con:
        con.executemany(
            "INSERT INTO translation_evals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*r.values(), ts) for r in rows],
        )
    return rows
