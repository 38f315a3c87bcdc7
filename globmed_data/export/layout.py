"""A version on disk: Parquet shards per config/language/split, the card and a manifest.

    README.md                      dataset card (YAML front matter: configs, languages, ...)
    globmed_version.json           manifest: version, fingerprint, every file with rows and sha256
    data/{config}/{language}/{split}-00000-of-00002.parquet

Files hold no timestamps, rows are sorted by entry id and the writer settings are fixed, so the
same snapshot always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from globmed_data.export.snapshot import TASK_COLUMNS, Snapshot, fingerprint, row_hash

MANIFEST = "globmed_version.json"
CARD = "README.md"


class VerificationError(RuntimeError):
    """A version folder's files do not match its manifest or its fingerprint."""


@dataclass(frozen=True)
class ShardFile:
    path: str  # relative to the version folder, '/'-separated
    config: str
    language: str
    split: str
    rows: int
    bytes: int
    sha256: str


def shard_path(config: str, language: str, split: str, i: int, n: int) -> str:
    return f"data/{config}/{language}/{split}-{i:05d}-of-{n:05d}.parquet"


def shard_bounds(table: pa.Table, max_bytes: int) -> list[tuple[int, int]]:
    """(offset, length) slices so that each shard's text is at most max_bytes plus one row."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    sizes = [
        pl.col(c).str.len_bytes().fill_null(0)
        if dtype == pl.String
        else pl.col(c).list.eval(pl.element().cast(pl.String).str.len_bytes()).list.sum().fill_null(0)
        for c, dtype in frame.schema.items()
        if dtype == pl.String or isinstance(dtype, pl.List)
    ]
    row_bytes = frame.select(pl.sum_horizontal(sizes).cast(pl.Int64).alias("b"))["b"]
    starts = (row_bytes.cum_sum() - row_bytes) // max_bytes
    bounds: list[tuple[int, int]] = []
    for shard in starts.unique(maintain_order=True):
        positions = (starts == shard).arg_true()
        bounds.append((int(positions[0]), len(positions)))
    return bounds or [(0, 0)]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_shards(
    snapshot: Snapshot, folder: Path, *, max_shard_mb: float, row_group_rows: int, zstd_level: int
) -> list[ShardFile]:
    files: list[ShardFile] = []
    max_bytes = max(1, int(max_shard_mb * 1024 * 1024))
    for (config, language, split), table in snapshot.tables.items():
        bounds = shard_bounds(table, max_bytes)
        for i, (offset, length) in enumerate(bounds):
            rel = shard_path(config, language, split, i, len(bounds))
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            # Our own handle, closed even when the write fails: pyarrow's stays open for as long
            # as the error (kept in Prefect's task state) lives, and a full disk stays busy.
            with target.open("wb") as sink:
                pq.write_table(
                    table.slice(offset, length),
                    sink,
                    compression="zstd",
                    compression_level=zstd_level,
                    row_group_size=row_group_rows,
                    use_dictionary=True,
                    write_statistics=True,
                )
            files.append(
                ShardFile(rel, config, language, split, length, target.stat().st_size, sha256_file(target))
            )
    return files


def manifest_dict(
    *, repo_id: str, version: str, snapshot: Snapshot, files: list[ShardFile], card_sha256: str
) -> dict[str, Any]:
    return {
        "format": "globmed-data dataset version",
        "repo_id": repo_id,
        "version": version,
        "tag": f"v{version}",
        "fingerprint": snapshot.fingerprint,
        "schema_version": snapshot.schema_version,
        "entries": snapshot.entries,
        "configs": {c: {"task": t, "columns": list(TASK_COLUMNS[t])} for c, t in snapshot.tasks.items()},
        "card_sha256": card_sha256,
        "files": [asdict(f) for f in files],
    }


def write_version_folder(
    snapshot: Snapshot,
    folder: Path,
    *,
    repo_id: str,
    version: str,
    render_card: Any,
    max_shard_mb: float,
    row_group_rows: int,
    zstd_level: int,
) -> dict[str, Any]:
    """Write the version into `folder` (replacing it) via a sibling staging folder; returns the manifest.

    `render_card(files)` gives the README text once the shards are written.
    """
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    files = write_shards(
        snapshot, staging, max_shard_mb=max_shard_mb, row_group_rows=row_group_rows, zstd_level=zstd_level
    )
    card = render_card(files)
    (staging / CARD).write_text(card, encoding="utf-8", newline="\n")
    manifest = manifest_dict(
        repo_id=repo_id,
        version=version,
        snapshot=snapshot,
        files=files,
        card_sha256=sha256_file(staging / CARD),
    )
    (staging / MANIFEST).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(staging, folder)
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise VerificationError(f"{folder} has no {MANIFEST}: not a globmed-data dataset version")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise VerificationError(f"{path} is not valid JSON: {exc}") from None


def verify_folder(folder: Path) -> dict[str, Any]:
    """Check every file against the manifest and recompute the fingerprint from the rows."""
    manifest = read_manifest(folder)
    problems: list[str] = []
    listed = {f["path"] for f in manifest["files"]}
    present = {p.relative_to(folder).as_posix() for p in (folder / "data").rglob("*.parquet")}
    problems += [f"{p}: not in the manifest" for p in sorted(present - listed)]
    if sha256_file(folder / CARD) != manifest.get("card_sha256"):
        problems.append(f"{CARD}: checksum differs from the manifest")
    rows: list[tuple[str, str, str, str]] = []
    for f in manifest["files"]:
        path = folder / f["path"]
        if not path.is_file():
            problems.append(f"{f['path']}: missing")
            continue
        if sha256_file(path) != f["sha256"]:
            problems.append(f"{f['path']}: checksum differs from the manifest")
            continue
        for row in pq.read_table(path).to_pylist():
            rows.append((row["entry_id"], f["config"], f["split"], row_hash(list(row.values()))))
    if problems:
        raise VerificationError(f"{folder}: " + "; ".join(problems))
    recomputed = fingerprint(int(manifest["schema_version"]), rows)
    if recomputed != manifest["fingerprint"]:
        raise VerificationError(
            f"{folder}: rows give fingerprint {recomputed[:16]}…, "
            f"the manifest says {manifest['fingerprint'][:16]}…"
        )
    return manifest
