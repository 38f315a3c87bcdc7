"""What every stage decided, as content hashes: run the pipeline through the CLI on a config into
a fresh warehouse, then hash each decision table (sorted rows, run ids and timestamps left out)
and list the exported fingerprints. Two digests equal means two code versions decided the same.

    python benchmarks/behaviour_digest.py --config configs/shared-real.yaml --out digest.json
    python benchmarks/behaviour_digest.py --compare before.json after.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
from _corpus import scratch

ROOT = Path(__file__).resolve().parents[1]

# Per table: the columns that carry a decision (ids and timestamps of the run left out).
TABLES = {
    "entries": "entry_id, source, status, task, language, split, origin, content_hash",
    "quarantine": "source, file, locator, record_key, reason, detail",
    "langid_results": "entry_id, content_hash, settings_hash, detected_language, confidence, detector, "
    "runner_up, script, letters, agrees, decision, language",
    # Not the settings hash: since the layout change it is derived from the rule records.
    "quality_results": "entry_id, content_hash, passed, score, reasons, flags, metrics",
    "dedup_signatures": "entry_id, content_hash, settings_hash, exact_key, item_key, numbers, signature",
    "dedup_edges": "a, b, method, similarity",
    "dedup_members": "entry_id, cluster_id, cluster_size, decision, kept_entry_id, method, similarity",
    "contamination": "entry_id, test_item, test_source, method, similarity",
    "v_curated_entries": "entry_id",
    "dataset_version_entries": "repo_id, version, entry_id, row_hash, config, language, split",
}


def _hash_rows(con: duckdb.DuckDBPyConnection, table: str, columns: str) -> dict[str, Any]:
    have = {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}
    cols = ", ".join(c for c in (c.strip() for c in columns.split(",")) if c in have)
    rows = con.execute(f"SELECT {cols} FROM {table} ORDER BY ALL").fetchall()
    digest = hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()[:16]
    return {"rows": len(rows), "sha": digest}


def digest(wh_path: Path) -> dict[str, Any]:
    con = duckdb.connect(str(wh_path), read_only=True)
    out: dict[str, Any] = {}
    for table, columns in TABLES.items():
        try:
            out[table] = _hash_rows(con, table, columns)
        except duckdb.Error as exc:
            out[table] = f"unavailable: {exc}".splitlines()[0]
    out["fingerprints"] = con.execute(
        "SELECT version, fingerprint FROM dataset_versions ORDER BY created_at"
    ).fetchall()
    # Seconds per stage of the last run (collect: the sum over its sources, which run side by side).
    out["stage_seconds"] = {
        stage: round(float(seconds), 2)
        for stage, seconds in con.execute(
            "SELECT stage, sum(seconds) FROM run_stages WHERE run_id = (SELECT run_id FROM runs "
            "ORDER BY started_at DESC LIMIT 1) GROUP BY stage ORDER BY min(started_at)"
        ).fetchall()
    }
    con.close()
    return out


def run(config: Path) -> dict[str, Any]:
    folder = scratch("digest-")
    wh = folder / "warehouse.duckdb"
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "GLOBMED_HOME": str(folder)}
    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("globmed")), "run", "-c", str(config), "-w", str(wh)],
        env=env, cwd=folder, capture_output=True, text=True,
    )  # fmt: skip
    result = {"exit": done.returncode, "seconds": round(time.perf_counter() - started, 1), **digest(wh)}
    if done.returncode not in (0, 3):
        result["stderr"] = done.stderr[-3000:]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--compare", nargs=2, type=Path)
    parser.add_argument("--warehouse", type=Path, help="digest this warehouse instead of running")
    args = parser.parse_args()
    if args.compare:
        a, b = (json.loads(p.read_text()) for p in args.compare)
        keys = sorted(set(a) | set(b))
        timings = ("seconds", "exit", "stage_seconds")
        differ = [k for k in keys if k not in timings and a.get(k) != b.get(k)]
        for k in keys:
            if k in timings:
                print(f"timing  {k}: {a.get(k)} | {b.get(k)}")
                continue
            print(f"{'DIFFERS' if k in differ else 'equal  '} {k}: {a.get(k)} | {b.get(k)}")
        sys.exit(1 if differ else 0)
    result = digest(args.warehouse) if args.warehouse else run(args.config.resolve())
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
