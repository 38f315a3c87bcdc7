"""Language-ID accuracy on labelled real text, per language, side by side with single detectors.

    .venv/bin/python benchmarks/langid_eval.py [--per-language 1000] [--warehouse PATH]

Texts: TICO-19 sentences (every target language, plus the English side) and exam entries from
../shared/data (collected with configs/shared-real.yaml; the text is what the stage reads:
question + options, or the NLI pair). The label is the declared language.

Detectors, all given the same prepared text (digits, punctuation and URLs removed):
  globmed     the stage as configured by default: lid.176 (fastText), langdetect where unsure
  lid.176     fastText lid.176.ftz alone
  langdetect  langdetect alone (seeded)
  py3langid / pycld2   when installed, for comparison only
"pipeline false flags" is the share of correctly labelled entries the stage would flag as a
mismatch (with the default thresholds); "unsupported" languages are never flagged unless the
text is confidently a widely used language.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from _corpus import collected, tico_pairs

from globmed_data.langid.identify import LanguageIdentifier, entry_text, family, judge, prepare


def tico_samples(per_language: int, rng: random.Random) -> dict[str, list[str]]:
    by_lang: dict[str, list[str]] = defaultdict(list)
    english: set[str] = set()
    for lang, en, tgt in tico_pairs():
        by_lang[lang].append(tgt)
        english.add(en)
    by_lang["en"] = sorted(english)
    return {lang: rng.sample(texts, min(per_language, len(texts))) for lang, texts in by_lang.items()}


def exam_samples(wh_path: Path, per_language: int, rng: random.Random) -> dict[str, list[str]]:
    with collected(wh_path) as wh:
        rows = wh.query_dicts(
            "SELECT language, task, question, options, premise, hypothesis, answer, context "
            "FROM entries WHERE status = 'active'"
        )
    by_lang: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        by_lang[r["language"]].append(entry_text(r))
    return {lang: rng.sample(texts, min(per_language, len(texts))) for lang, texts in by_lang.items()}


def detectors(stage: LanguageIdentifier) -> dict[str, Callable[[str, str], str | None]]:
    found: dict[str, Callable[[str, str], str | None]] = {
        "globmed": lambda t, lang: stage.detect(t, lang).language,
        "lid.176": lambda t, _: stage.model.top(prepare(t, 1000)[0], k=1)[0][0],
    }
    from langdetect import DetectorFactory, detect
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0

    def langdetect_alone(text: str, _: str) -> str | None:
        try:
            return {"zh-cn": "zh", "zh-tw": "zh"}.get(code := detect(prepare(text, 1000)[0]), code)
        except LangDetectException:
            return None

    found["langdetect"] = langdetect_alone
    try:
        import py3langid

        found["py3langid"] = lambda t, _: py3langid.classify(prepare(t, 1000)[0])[0]
    except ImportError:
        pass
    try:
        import pycld2

        def cld2(text: str, _: str) -> str | None:
            try:
                code = pycld2.detect(prepare(text, 1000)[0])[2][0][1]
            except pycld2.error:
                return None
            return {"zh-Hant": "zh", "un": None}.get(code, code)

        found["pycld2"] = cld2
    except ImportError:
        pass
    return found


def evaluate(name: str, samples: dict[str, list[str]], stage: LanguageIdentifier) -> None:
    dets = detectors(stage)
    print(f"\n== {name}: accuracy per language (n = texts) ==")
    print(
        f"{'lang':6} {'n':>5} {'model':>7} "
        + " ".join(f"{d:>10}" for d in dets)
        + "  false-flags  top confusions (globmed)"
    )
    for lang in sorted(samples):
        texts = samples[lang]
        acc = {}
        confusions: Counter[str] = Counter()
        for d, fn in dets.items():
            hits = 0
            for t in texts:
                got = fn(t, lang)
                if family(got) == lang:
                    hits += 1
                elif d == "globmed":
                    confusions[str(got)] += 1
            acc[d] = hits / len(texts)
        supported = stage.supports(lang)
        flags = sum(
            judge(
                lang, stage.detect(t, lang), supported=supported, min_confidence=0.5, policy="flag"
            ).decision
            == "flag"
            for t in texts
        )
        conf = ", ".join(f"{k} {v}" for k, v in confusions.most_common(3))
        print(
            f"{lang:6} {len(texts):>5} {'yes' if supported else 'NO':>7} "
            + " ".join(f"{acc[d]:>10.1%}" for d in dets)
            + f"  {flags / len(texts):>10.1%}  {conf}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-language", type=int, default=1000)
    ap.add_argument("--warehouse", type=Path, help="a collected shared-real warehouse (else a temp one)")
    args = ap.parse_args()
    rng = random.Random(7)
    stage = LanguageIdentifier()
    t0 = time.perf_counter()
    evaluate("TICO-19 sentences", tico_samples(args.per_language, rng), stage)
    with tempfile.TemporaryDirectory() as tmp:
        evaluate(
            "exam entries (shared data)",
            exam_samples(args.warehouse or Path(tmp) / "wh.duckdb", args.per_language, rng),
            stage,
        )
    print(f"\n({time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
