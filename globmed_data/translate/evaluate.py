"""`globmed translate eval`: score a backend against reference translations (TICO-19) with
chrF++ and BLEU (sacrebleu), per language, through the same masking, cache and backend as the
stage; the scores are stored in `translation_evals`."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from globmed_data.translate.segments import Segment
from globmed_data.translate.stage import Log, Translator, segment_hash
from globmed_data.warehouse import now

# TICO-19 file suffixes that are not plain ISO codes.
TICO_CODES = {"es-LA": "es", "pt-BR": "pt"}
DEFAULT_LANGUAGES = ("sw", "ha", "zu", "fr", "es", "ar", "zh", "ru", "hi", "pt")
# sacrebleu tokenizers that need no download: words are not spaced in these scripts.
BLEU_TOKENIZE = {"zh": "zh", "ja": "char", "th": "char"}


def tico_pairs(folder: Path, language: str, limit: int) -> list[tuple[str, str]]:
    """(English, reference) pairs for one target language, in file order."""
    names = [n for n, code in TICO_CODES.items() if code == language] or [language]
    for name in names:
        path = folder / f"tico19_en-{name}.jsonl"
        if path.is_file():
            pairs = []
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    rec = json.loads(line)
                    pairs.append((rec["en"], rec["tgt"]))
                    if len(pairs) >= limit:
                        break
            return pairs
    raise FileNotFoundError(
        f"no TICO-19 file for '{language}' in {folder} (looked for tico19_en-{names[0]}.jsonl)"
    )


def evaluate(
    translator: Translator, backend: str, folder: Path, languages: list[str], limit: int, log: Log
) -> list[dict[str, Any]]:
    import sacrebleu

    eval_id = uuid.uuid4().hex[:12]
    model = translator.s.backends[backend].model
    rows = []
    for lang in languages:
        pairs = tico_pairs(folder, lang, limit)
        segments = []
        for en, _ in pairs:
            masked, spans = translator.protector.mask(en)
            segments.append(Segment("question", None, en, masked, spans))
        started = time.perf_counter()
        outputs = translator.segment_outputs(backend, [("en", s) for s in segments], lang)
        seconds = time.perf_counter() - started
        hyps = []
        for seg in segments:
            raw = outputs.get(("en", segment_hash(seg.masked))) if seg.needs_model else seg.masked
            hyps.append("" if raw is None else translator.protector.restore(raw, seg.spans)[0])
        refs = [[ref for _, ref in pairs]]
        chrf = sacrebleu.corpus_chrf(hyps, refs, word_order=2).score
        bleu = sacrebleu.corpus_bleu(hyps, refs, tokenize=BLEU_TOKENIZE.get(lang, "13a")).score
        row = {
            "eval_id": eval_id,
            "backend": backend,
            "model": model,
            "prompt_version": translator.s.prompt_version,
            "dataset": "tico19",
            "source_language": "en",
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
