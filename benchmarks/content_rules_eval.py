"""Recall and precision of the `missing_image` rule per language, on real items labelled by hand.

    .venv/bin/python benchmarks/content_rules_eval.py [--warehouse PATH]
    .venv/bin/python benchmarks/content_rules_eval.py --sample 12 > /tmp/to-label.tsv

The pool: every collected item of ../shared/data (configs/shared-real.yaml) with a picture word
in any language ("image", "figura", "図", "рисунок", "صورة", "चित्र", ...: `NET`), in two strata
per language: the rule fires (`hit`) or it does not (`net`). benchmarks/labels/missing_image.tsv
holds a seeded sample of each stratum, read by eye and labelled 1 (the item points to an image it
does not carry) or 0, by source and record key only (no text of the shared data is copied).
Each stratum's share of true references is scaled to the stratum's size, so:
  precision = true references among the rule's hits
  recall    = the hits' true references / (those + the true references in the net stratum)
Items with no picture word at all are taken to hold no reference (not labelled). `--sample N`
prints N new items per stratum and language to label (text included, for reading only).

A second truth comes with the data: IgakuQA marks each question `text_only` (false: it needs the
image booklet). Its Japanese items and their English translations (which inherit the parent's
mark) are scored on all items, not a sample.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
from pathlib import Path

import polars as pl
from _corpus import ROOT, collected

from globmed_data.config import load_config
from globmed_data.quality.evaluate import image_refs
from globmed_data.quality.metrics import metrics
from globmed_data.quality.phrases import language_patterns

LABELS = ROOT / "benchmarks" / "labels" / "missing_image.tsv"
# A picture word alone, in the languages of the shared data: wider than the rule by design.
NET = (
    r"(?i)\b(?:image|figure|fig\.|picture|photo|photograph|radiograph|x-ray|diagram|exhibit|supplement)s?\b"
    r"|imagen|figura|fotograf|radiograf|imagem|\bphoto|\bfigure|\bimage|图|圖|照片|写真|画像|図|別冊"
    r"|рисун|рис\.|изображ|фото|снимк|صورة|الصورة|الشكل|चित्र|छवि|तस्वीर"
)


def pool(warehouse: Path | None) -> pl.DataFrame:
    loaded = load_config(ROOT / "configs" / "shared-real.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        wh = collected(warehouse or Path(tmp) / "wh.duckdb")
        frame = pl.from_arrow(
            wh.arrow(
                "SELECT e.entry_id, e.source, e.record_key, e.task, e.language, e.question, e.context, "
                "e.options, e.answer_indices, e.label, e.premise, e.hypothesis, e.answer, e.rationale, "
                "p.task AS parent_task, p.language AS parent_language, p.question AS parent_question, "
                "p.premise AS parent_premise, "
                "p.hypothesis AS parent_hypothesis, p.options AS parent_options, "
                "coalesce(json_extract_string(e.metadata, '$.text_only'), "
                "json_extract_string(p.metadata, '$.text_only')) AS text_only "
                "FROM entries e LEFT JOIN entries p ON p.entry_id = e.parent_entry_id "
                "WHERE e.status = 'active'"
            )
        )
        wh.close()
    assert isinstance(frame, pl.DataFrame)
    measured = metrics(frame)
    hit = image_refs(measured, loaded.config.quality)
    net = measured["_item"].fill_null("").str.contains(NET)
    return frame.with_columns(
        hit=hit, net=net, stratum=pl.when(hit).then(pl.lit("hit")).otherwise(pl.lit("net"))
    )


def read_labels() -> pl.DataFrame:
    with LABELS.open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader((line for line in fh if not line.startswith("#")), delimiter="\t")]
    return pl.DataFrame(rows).with_columns(pl.col("label").cast(pl.Int8))


def text_only_truth(frame: pl.DataFrame) -> None:
    print("\nIgakuQA's own mark (text_only = false: needs the image booklet), every item:")
    print("| source | items | need an image | caught | false hits | precision | recall |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for source in ("igakuqa", "igakuqa_en"):
        part = frame.filter((pl.col("source") == source) & pl.col("text_only").is_not_null())
        truth = part["text_only"] == "false"
        tp, fp = int((part["hit"] & truth).sum()), int((part["hit"] & ~truth).sum())
        print(f"| {source} | {len(part):,} | {int(truth.sum()):,} | {tp:,} | {fp:,} | "
              f"{tp / max(tp + fp, 1):.3f} | {tp / max(int(truth.sum()), 1):.3f} |")  # fmt: skip


def report(frame: pl.DataFrame) -> None:
    text_only_truth(frame)
    frame = frame.filter(pl.col("net") | pl.col("hit"))
    labels = read_labels()
    sizes = frame.group_by("language", "stratum").len("size")
    labelled = frame.join(
        labels.select("source", "record_key", pl.col("label").alias("truth")), on=["source", "record_key"]
    )
    print(f"{len(frame):,} items with a picture word; {len(labelled)} labelled ({LABELS.relative_to(ROOT)})")
    print("| language | hits | net only | labelled (hit / net) | precision | recall |")
    print("| --- | ---: | ---: | --- | ---: | ---: |")
    for lang in sorted(frame["language"].unique().to_list()):
        n = {s: 0 for s in ("hit", "net")} | dict(
            sizes.filter(pl.col("language") == lang).select("stratum", "size").iter_rows()
        )
        mine = labelled.filter(pl.col("language") == lang)
        share, count = {}, {}
        for s in ("hit", "net"):
            part = mine.filter(pl.col("stratum") == s)["truth"]
            count[s] = len(part)
            share[s] = float(part.mean()) if len(part) else None  # type: ignore[arg-type]
        true_hits = n["hit"] * share["hit"] if share["hit"] is not None else None
        missed = n["net"] * share["net"] if share["net"] is not None else (0.0 if n["net"] == 0 else None)
        precision = f"{share['hit']:.2f}" if share["hit"] is not None else "–"
        if true_hits is None or missed is None:
            recall = "–"
        else:
            recall = f"{true_hits / (true_hits + missed):.2f}" if true_hits + missed else "–"
        counts = f"{n['hit']:,} | {n['net']:,} | {count['hit']} / {count['net']}"
        print(f"| {lang} | {counts} | {precision} | {recall} |")


def sample(frame: pl.DataFrame, per: int) -> None:
    known = set(read_labels()["record_key"].to_list()) if LABELS.exists() else set()
    search, _ = language_patterns(
        load_config(ROOT / "configs" / "shared-real.yaml").config.quality.image_phrases
    )
    rng = random.Random(11)
    out = csv.writer(sys.stdout, delimiter="\t")
    out.writerow(["source", "record_key", "language", "stratum", "label", "text"])
    for (lang, stratum), part in sorted(frame.group_by("language", "stratum"), key=lambda g: g[0]):
        rows = [r for r in part.iter_rows(named=True) if r["record_key"] not in known]
        for r in rng.sample(rows, min(per, len(rows))):
            own = " | ".join([r["question"] or "", *(r["options"] or [])]).replace("\n", " ")
            parent = " | ".join([r["parent_question"] or "", *(r["parent_options"] or [])]).replace("\n", " ")
            text = _around(own, search.get(lang, search["default"]) if stratum == "hit" else NET)
            if r["parent_question"]:
                pattern = search.get(r["parent_language"] or "", search["default"])
                text += f" || parent: {_around(parent, pattern)}"
            out.writerow([r["source"], r["record_key"], lang, stratum, "", text])


def _around(text: str, pattern: str, width: int = 160) -> str:
    """The text near the pattern's first match (or its start), for reading."""
    at = pl.Series([text]).str.find(pattern).item() or 0  # a byte offset
    raw = text.encode()
    return raw[max(0, at - width * 2) : at + width * 2].decode(errors="ignore")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", type=Path)
    ap.add_argument("--sample", type=int, help="print this many unlabelled items per stratum to label")
    args = ap.parse_args()
    frame = pool(args.warehouse)
    if args.sample:
        sample(frame.filter(pl.col("net") | pl.col("hit")), args.sample)
    else:
        report(frame)


if __name__ == "__main__":
    main()
