"""Parallel corpora: reference translations read for `globmed translate eval`.

TICO-19's own layout is built in; any other layout is described in the config as a
`translate.eval_sets` entry: files (json, jsonl, csv, tsv, parquet, found as a source's are), the
fields holding the source text and its translation, and where each side's language comes from
(a constant, a record field, or a regex group of the file path, with a map), as for sources.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from globmed_data.sources.locate import locate_files
from globmed_data.sources.mapping import RecordMapper, get_field
from globmed_data.sources.readers import detect_format, read_file

if TYPE_CHECKING:
    from globmed_data.config import LoadedConfig
    from globmed_data.sources.settings import ValueSpec
    from globmed_data.translate.settings import ParallelSet

# TICO-19 file suffixes that are not plain ISO codes.
TICO_CODES = {"es-LA": "es", "pt-BR": "pt"}


@dataclass(frozen=True)
class Pair:
    source_language: str
    source: str
    reference: str


class TicoCorpus:
    """TICO-19's layout: tico19_en-<lang>.jsonl with `en` and `tgt`."""

    def __init__(self, folder: Path) -> None:
        self.name, self.folder = "tico19", folder

    def pairs(self, language: str, limit: int) -> list[Pair]:
        names = [n for n, code in TICO_CODES.items() if code == language] or [language]
        for name in names:
            path = self.folder / f"tico19_en-{name}.jsonl"
            if path.is_file():
                pairs = []
                with path.open(encoding="utf-8") as fh:
                    for line in fh:
                        rec = json.loads(line)
                        pairs.append(Pair("en", rec["en"], rec["tgt"]))
                        if len(pairs) >= limit:
                            break
                return pairs
        raise FileNotFoundError(
            f"no TICO-19 file for '{language}' in {self.folder} (looked for tico19_en-{names[0]}.jsonl)"
        )


class ConfiguredCorpus:
    """A parallel set described in the config: its pairs for one target language, in file order."""

    def __init__(self, spec: ParallelSet, loaded: LoadedConfig) -> None:
        self.name, self.spec, self.loaded = spec.name, spec, loaded

    def pairs(self, language: str, limit: int) -> list[Pair]:
        spec, pairs = self.spec, []
        for file in locate_files(spec, self.loaded).files:
            fmt = detect_format(file.path, spec.format)
            items = read_file(file.path, fmt, encoding=spec.encoding, record_path=spec.record_path,
                              max_record_bytes=1 << 24)  # fmt: skip
            for item in items:
                if item.record is None:
                    continue
                extra = {"_file": file.rel, **item.extra}
                target = _language(spec.target_language, file.rel, item.record, extra)
                src, ref = (
                    get_field(item.record, spec.source_text, extra),
                    get_field(item.record, spec.target_text, extra),
                )
                if target != language or not src or not ref:
                    continue
                source = _language(spec.source_language, file.rel, item.record, extra) or "en"
                pairs.append(Pair(source, str(src), str(ref)))
                if len(pairs) >= limit:
                    return pairs
        if not pairs:
            raise FileNotFoundError(f"eval set '{spec.name}' has no pairs into '{language}'")
        return pairs


def _language(spec: ValueSpec, rel_path: str, record: dict, extra: dict) -> str | None:
    """A side's language, as a source's `language` is read: from the path, else the record."""
    return RecordMapper.record_value(spec, RecordMapper.path_value(spec, rel_path), record, extra)
