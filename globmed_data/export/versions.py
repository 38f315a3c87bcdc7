"""Dataset versions in the warehouse: numbering (semver), records, publication state and diffs."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from globmed_data.warehouse import Warehouse, now

_INDEX_COLUMNS = ("entry_id", "row_hash", "config", "language", "split", "source", "task")


class VersionNotFound(LookupError):
    pass


def parse_semver(text: str) -> tuple[int, int, int]:
    parts = text.removeprefix("v").split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"'{text}' is not a version like 1.4.0 or v1.4.0")
    major, minor, patch = (int(p) for p in parts)
    return major, minor, patch


def bump_kind(parent: dict[str, Any] | None, schema_version: int, changes: dict[str, Any]) -> str:
    """major: schema changed; minor: entries added or removed; patch: entries changed (fixes)."""
    if parent is None:
        return "initial"
    if int(parent["schema_version"]) != schema_version:
        return "major"
    return "minor" if changes["added"] or changes["removed"] else "patch"


def next_version(parent: dict[str, Any] | None, bump: str) -> str:
    if parent is None:
        return "1.0.0"
    major, minor, patch = parse_semver(parent["version"])
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("counts", "changes", "source_revisions"):
        if isinstance(row.get(key), str):
            row[key] = json.loads(row[key])
    return row


def list_versions(wh: Warehouse, repo_id: str | None = None) -> list[dict[str, Any]]:
    rows = wh.query_dicts(
        "SELECT * FROM dataset_versions WHERE $repo IS NULL OR repo_id = $repo ORDER BY repo_id, created_at",
        {"repo": repo_id},
    )
    rows = [_decoded(r) for r in rows]
    return sorted(rows, key=lambda r: (r["repo_id"], parse_semver(r["version"])))


def latest_version(wh: Warehouse, repo_id: str) -> dict[str, Any] | None:
    versions = list_versions(wh, repo_id)
    return versions[-1] if versions else None


def get_version(wh: Warehouse, repo_id: str, version: str) -> dict[str, Any]:
    version = version.removeprefix("v")
    rows = wh.query_dicts(
        "SELECT * FROM dataset_versions WHERE repo_id = ? AND version = ?", [repo_id, version]
    )
    if not rows:
        known = ", ".join("v" + r["version"] for r in list_versions(wh, repo_id)) or "none"
        raise VersionNotFound(f"{repo_id} has no version v{version} (versions: {known})")
    return _decoded(rows[0])


def version_index(wh: Warehouse, repo_id: str, version: str) -> pl.DataFrame:
    table = wh.arrow(
        f"SELECT {', '.join(_INDEX_COLUMNS)} FROM dataset_version_entries "
        "WHERE repo_id = ? AND version = ? ORDER BY entry_id",
        [repo_id, version.removeprefix("v")],
    )
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def diff_indexes(old: pl.DataFrame, new: pl.DataFrame) -> dict[str, Any]:
    """Added, removed, changed (row hash) and moved (split) entries, in total and per group."""
    joined = old.select(_INDEX_COLUMNS).join(
        new.select(_INDEX_COLUMNS), on="entry_id", how="full", suffix="_new", coalesce=True
    )
    kind = (
        pl.when(pl.col("row_hash").is_null())
        .then(pl.lit("added"))
        .when(pl.col("row_hash_new").is_null())
        .then(pl.lit("removed"))
        .when(pl.col("row_hash") != pl.col("row_hash_new"))
        .then(pl.lit("changed"))
        .otherwise(pl.lit("same"))
    )
    joined = joined.with_columns(
        kind=kind,
        moved=pl.col("split").is_not_null()
        & pl.col("split_new").is_not_null()
        & (pl.col("split") != pl.col("split_new")),
        language=pl.coalesce("language_new", "language"),
        task=pl.coalesce("task_new", "task"),
        source=pl.coalesce("source_new", "source"),
    )
    counted = joined.filter(pl.col("kind") != "same")
    by_group = (
        (
            counted.group_by("language", "task", "source", "kind")
            .len()
            .pivot(on="kind", index=["language", "task", "source"], values="len")
            .sort("language", "task", "source")
        )
        if counted.height
        else pl.DataFrame()
    )
    for k in ("added", "removed", "changed"):
        if by_group.height and k not in by_group.columns:
            by_group = by_group.with_columns(pl.lit(0, dtype=pl.UInt32).alias(k))
    if by_group.height:
        by_group = by_group.select("language", "task", "source", "added", "removed", "changed").fill_null(0)
    totals = joined["kind"].value_counts()
    count = dict(zip(totals["kind"].to_list(), totals["count"].to_list(), strict=True))
    return {
        "added": int(count.get("added", 0)),
        "removed": int(count.get("removed", 0)),
        "changed": int(count.get("changed", 0)),
        "unchanged": int(count.get("same", 0)),
        "moved_split": int(joined["moved"].sum()),
        "by_group": by_group.to_dicts(),
    }


def record_version(
    wh: Warehouse,
    *,
    repo_id: str,
    version: str,
    snapshot: Any,
    parent: str | None,
    bump: str,
    config_hash: str,
    source_revisions: dict[str, Any],
    counts: dict[str, Any],
    changes: dict[str, Any],
    folder: str,
    run_id: str | None,
) -> None:
    """The version row, its entries and the new split assignments, in one transaction."""
    entries = snapshot.index.select(_INDEX_COLUMNS).with_columns(
        repo_id=pl.lit(repo_id), version=pl.lit(version)
    )
    splits = snapshot.new_splits.with_columns(first_version=pl.lit(version))
    summary = {k: v for k, v in changes.items() if k != "by_group"} | {
        "by_group": changes.get("by_group", [])
    }
    with wh.transaction() as con:
        con.execute(
            "INSERT INTO dataset_versions (repo_id, version, fingerprint, schema_version, parent_version, "
            "bump, config_hash, source_revisions, counts, changes, status, folder, run_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'draft', ?, ?, ?)",
            [
                repo_id,
                version,
                snapshot.fingerprint,
                snapshot.schema_version,
                parent,
                bump,
                config_hash,
                json.dumps(source_revisions, sort_keys=True),
                json.dumps(counts, sort_keys=True),
                json.dumps(summary, sort_keys=True, default=int),
                folder,
                run_id,
                now(),
            ],
        )
        con.register("v_rows", entries.to_arrow())
        con.register("v_splits", splits.to_arrow())
        try:
            con.execute(
                "INSERT INTO dataset_version_entries BY NAME "
                "SELECT repo_id, version, entry_id, row_hash, config, language, split, source, task "
                "FROM v_rows"
            )
            con.execute(
                "INSERT INTO export_splits SELECT entry_id, split, first_version FROM v_splits "
                "ON CONFLICT DO NOTHING"
            )
        finally:
            con.unregister("v_rows")
            con.unregister("v_splits")


def record_publication(
    wh: Warehouse,
    *,
    repo_id: str,
    version: str,
    target: str,
    location: str,
    revision: str | None,
    error: str | None,
) -> None:
    status = "failed" if error else "published"
    with wh.transaction() as con:
        con.execute(
            "INSERT OR REPLACE INTO dataset_publications VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [repo_id, version, target, location, status, revision, error, now()],
        )


def record_event(wh: Warehouse, repo_id: str, version: str, event_id: str) -> None:
    with wh.transaction() as con:
        con.execute(
            "UPDATE dataset_versions SET event_id = ? WHERE repo_id = ? AND version = ?",
            [event_id, repo_id, version],
        )


def settle_status(wh: Warehouse, repo_id: str, version: str, targets: list[str]) -> str:
    """published when every target's tag exists; failed (with the error) when any push failed."""
    rows = wh.query_dicts(
        "SELECT target, status, error FROM dataset_publications WHERE repo_id = ? AND version = ?",
        [repo_id, version],
    )
    by_target = {r["target"]: r for r in rows}
    failed = [
        f"{t}: {by_target[t]['error']}" for t in targets if by_target.get(t, {}).get("status") == "failed"
    ]
    done = all(by_target.get(t, {}).get("status") == "published" for t in targets)
    status = "failed" if failed else "published" if done and targets else "draft"
    with wh.transaction() as con:
        con.execute(
            "UPDATE dataset_versions SET status = ?, error = ?, "
            "published_at = CASE WHEN ? = 'published' THEN coalesce(published_at, ?) ELSE published_at END "
            "WHERE repo_id = ? AND version = ?",
            [status, "; ".join(failed) or None, status, now(), repo_id, version],
        )
    return status


def publications(wh: Warehouse, repo_id: str, version: str) -> list[dict[str, Any]]:
    return wh.query_dicts(
        "SELECT target, location, status, revision, error, updated_at FROM dataset_publications "
        "WHERE repo_id = ? AND version = ? ORDER BY target",
        [repo_id, version],
    )
