"""Human review of translated entries: export a sample per target language as JSONL, import the
reviewers' verdicts back.

Each exported line holds the parent's text, the machine translation and three fields to fill:
`verdict` (accept | fix | reject), `fixed` ({field: text}, options as a full list) and `note`.
An accepted entry is marked reviewed; a fix replaces the machine output (same option count) and
is marked `fixed`; a rejected entry leaves the dataset (status `rejected`). Reviewed entries are
not translated again unless their parent changes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from globmed_data.ids import content_hash
from globmed_data.translate.segments import SEGMENT_FIELDS
from globmed_data.warehouse import Warehouse

VERDICTS = ("accept", "fix", "reject")
_FIELDS = "question, context, options, premise, hypothesis, answer, rationale"


def export_sample(wh: Warehouse, out: Path, languages: list[str] | None, per_language: int) -> dict[str, int]:
    rows = wh.query_dicts(
        f"""SELECT t.entry_id, t.target_language AS language, p.language AS source_language, e.task,
                   t.backend, t.model, t.parent_entry_id,
                   {", ".join(f"p.{f} AS parent_{f}" for f in _FIELDS.split(", "))},
                   {", ".join(f"e.{f}" for f in _FIELDS.split(", "))}
            FROM translations t JOIN entries e ON e.entry_id = t.entry_id
            JOIN entries p ON p.entry_id = t.parent_entry_id
            WHERE t.status = 'ok' AND t.review IS NULL AND e.status = 'active'"""
    )
    by_lang: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: hashlib.blake2b(r["entry_id"].encode(), digest_size=8).digest()):
        if languages and r["language"] not in languages:
            continue
        bucket = by_lang.setdefault(r["language"], [])
        if len(bucket) < per_language:
            bucket.append(r)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for lang in sorted(by_lang):
            for r in by_lang[lang]:
                fields = SEGMENT_FIELDS[r["task"]]
                line = {
                    "entry_id": r["entry_id"],
                    "language": lang,
                    "source_language": r["source_language"],
                    "task": r["task"],
                    "backend": r["backend"],
                    "model": r["model"],
                    "source": {f: r[f"parent_{f}"] for f in fields if r[f"parent_{f}"] is not None},
                    "translation": {f: r[f] for f in fields if r[f] is not None},
                    "verdict": "",
                    "fixed": {},
                    "note": "",
                }
                fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    return {lang: len(v) for lang, v in sorted(by_lang.items())}


class ReviewError(ValueError):
    pass


def import_verdicts(wh: Warehouse, path: Path) -> dict[str, Any]:
    """Apply every valid line; returns counts and the problems of the lines left out."""
    counts = {"accept": 0, "fix": 0, "reject": 0, "blank": 0}
    problems: list[str] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            verdict = _apply(wh, json.loads(line))
        except (ReviewError, json.JSONDecodeError, KeyError, TypeError) as exc:
            problems.append(f"line {n}: {exc}")
            continue
        counts[verdict or "blank"] += 1
    return {**counts, "problems": problems}


def _apply(wh: Warehouse, item: dict[str, Any]) -> str | None:
    verdict = (item.get("verdict") or "").strip().lower()
    if not verdict:
        return None  # not reviewed yet
    if verdict not in VERDICTS:
        raise ReviewError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
    rows = wh.query_dicts(
        "SELECT * FROM entries WHERE entry_id = ? AND origin = 'translated'", [item["entry_id"]]
    )
    if not rows:
        raise ReviewError(f"{item['entry_id']} is not a translated entry of this warehouse")
    entry = rows[0]
    note = item.get("note") or None
    meta = json.loads(entry["metadata"] or "{}")
    meta.setdefault("translation", {})["reviewed"] = {
        "accept": "accepted",
        "fix": "fixed",
        "reject": "rejected",
    }[verdict]
    updates: dict[str, Any] = {"metadata": json.dumps(meta, ensure_ascii=False)}
    if verdict == "fix":
        updates |= _fixed_fields(entry, item.get("fixed") or {})
        updates["content_hash"] = content_hash({**entry, **updates})
    if verdict == "reject":
        updates["status"] = "rejected"
    review = meta["translation"]["reviewed"]
    with wh.transaction() as con:
        assignments = ", ".join(f"{k} = ?" for k in updates)
        con.execute(
            f"UPDATE entries SET {assignments} WHERE entry_id = ?", [*updates.values(), entry["entry_id"]]
        )
        con.execute(
            "UPDATE translations SET review = ?, reviewer_note = ?, "
            "status = CASE WHEN ? = 'rejected' THEN 'rejected' ELSE status END, "
            "reasons = CASE WHEN ? = 'rejected' THEN ['review_rejected'] ELSE reasons END "
            "WHERE entry_id = ?",
            [review, note, review, review, entry["entry_id"]],
        )
    return verdict


def _fixed_fields(entry: dict[str, Any], fixed: dict[str, Any]) -> dict[str, Any]:
    allowed = SEGMENT_FIELDS[entry["task"]]
    if not fixed:
        raise ReviewError("verdict 'fix' needs `fixed` with the corrected field(s)")
    stray = sorted(set(fixed) - set(allowed))
    if stray:
        raise ReviewError(
            f"cannot fix {', '.join(stray)} of a {entry['task']} entry (fields: {', '.join(allowed)})"
        )
    out: dict[str, Any] = {}
    for field, value in fixed.items():
        if field == "options":
            if not isinstance(value, list) or len(value) != len(entry["options"] or []):
                raise ReviewError(f"fixed options must be a list of {len(entry['options'] or [])} texts")
            if not all(isinstance(v, str) and v.strip() for v in value):
                raise ReviewError("every fixed option must be non-empty text")
        elif not isinstance(value, str) or not value.strip():
            raise ReviewError(f"fixed {field} must be non-empty text")
        out[field] = value
    return out
