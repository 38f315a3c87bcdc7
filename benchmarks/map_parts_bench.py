"""The collect's map, and the parts of it any mapper must pay, per record, in one process.

    .venv/bin/python benchmarks/map_parts_bench.py [--config configs/shared-real.yaml] [--repeat 3]

Prints CPU seconds (best of --repeat, process time) and µs a record for:
- the map: `map_file_whole` over every file of the config, as a pool worker runs it;
- reading: the same files through the same readers, each record's payload text made;
- hashing: the ids, content hashes and raw hashes of the rows the map made;
- Arrow: the map's entry and raw tables built again from Python rows (an upper bound: the map
  builds them from columns).
What the map spends beyond the three is the mapping's own Python (keys, fields, options,
answers, normalisation checks): the most a faster mapper written in Python could save, and what
a compiled one would have to replace (docs/scaling.md, "The collect's CPU, and the 40,000 entries/s goal").
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from globmed_data.config import load_config
from globmed_data.ids import CONTENT_FIELDS, content_hashes, entry_ids, raw_hashes
from globmed_data.schema import RAW_SCHEMA
from globmed_data.sources.locate import locate_files
from globmed_data.sources.mapped import MappedBatch, map_file_whole
from globmed_data.sources.readers import detect_format, read_file


def best_cpu(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/shared-real.yaml")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    loaded = load_config(Path(args.config))
    settings = loaded.config.collect
    jobs = [(s, f) for s in loaded.config.sources for f in locate_files(s, loaded).files]
    gc.freeze()  # as a pool worker does (pipeline/executor.py)
    batches: list[MappedBatch] = []

    def mapped() -> None:
        batches.clear()
        for s, f in jobs:
            batches.extend(map_file_whole(s, f.rel, f.path, settings, f.size))

    def read() -> None:
        for s, f in jobs:
            fmt = detect_format(f.path, s.format)
            for item in read_file(f.path, fmt, encoding=s.encoding, record_path=s.resolved_record_path(),
                                  max_record_bytes=settings.max_record_bytes):  # fmt: skip
                if item.record is not None:
                    item.text()

    t_map = best_cpu(mapped, args.repeat)
    records = sum(b.records for b in batches)
    t_read = best_cpu(read, args.repeat)
    entries = [b.entries for b in batches if b.entries.num_rows]
    raws = [b.raws for b in batches if b.raws.num_rows]
    columns = [{c: e.column(c).to_pylist() for c in (*CONTENT_FIELDS, "record_key")} for e in entries]
    payloads = [r.column("payload").to_pylist() for r in raws]

    def hashed() -> None:
        for c in columns:
            content_hashes(c)
            entry_ids("source", c["record_key"])
        for p in payloads:
            raw_hashes(p)

    entry_rows = [(e.schema, e.to_pylist()) for e in entries]
    raw_rows = [r.to_pylist() for r in raws]

    def tables() -> None:
        for schema, rows in entry_rows:
            pa.Table.from_pylist(rows, schema=schema)
        for rows in raw_rows:
            pa.Table.from_pylist(rows, schema=RAW_SCHEMA)

    t_hash = best_cpu(hashed, args.repeat)
    t_arrow = best_cpu(tables, args.repeat)
    rest = t_map - t_read - t_hash - t_arrow
    print(f"map_parts_bench: {args.config}, {len(jobs)} files, {records:,} records, best of {args.repeat}")
    parts = {"map": t_map, "reading": t_read, "hashing": t_hash, "Arrow tables (bound)": t_arrow,
             "the mapping's own Python": rest}  # fmt: skip
    for name, t in parts.items():
        print(f"{name:26s} {t:6.2f} CPU-s  {t / records * 1e6:6.1f} µs/record  {t / t_map:6.1%}")


if __name__ == "__main__":
    main()
