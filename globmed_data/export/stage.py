"""The export step: snapshot → (new version? files, record) → publish to each target → event."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from globmed_data import faults
from globmed_data.config import LoadedConfig, PipelineConfig
from globmed_data.export.card import CardInputs, render_card
from globmed_data.export.events import emit_published
from globmed_data.export.layout import CARD, read_manifest, write_version_folder
from globmed_data.export.settings import ExportSettings
from globmed_data.export.snapshot import Snapshot, take_snapshot
from globmed_data.export.targets import HubTarget, LocalGitTarget, PublishError, Target
from globmed_data.export.versions import (
    bump_kind,
    diff_indexes,
    get_version,
    latest_version,
    next_version,
    record_event,
    record_publication,
    record_version,
    settle_status,
    version_index,
)
from globmed_data.ids import stable_hash
from globmed_data.pipeline.curation import PendingWork, pending_work, record_stage_settings
from globmed_data.pipeline.stage import Context, Report
from globmed_data.warehouse import Warehouse

Log = Callable[[str], None]


def export_dir(wh: Warehouse, loaded: LoadedConfig) -> Path:
    s = loaded.config.export
    return loaded.resolve(s.dir) if s.dir else wh.path.resolve().parent / "exports"


def targets(wh: Warehouse, loaded: LoadedConfig) -> list[Target]:
    s = loaded.config.export
    out: list[Target] = []
    if s.local.enabled:
        root = loaded.resolve(s.local.root) if s.local.root else wh.path.resolve().parent / "dataset-repos"
        out.append(LocalGitTarget(root, s.repo_id))
    if s.hub is not None:
        out.append(HubTarget(s.hub, s.repo_id))
    return out


def pipeline_counts(wh: Warehouse, origins: list[dict[str, Any]]) -> dict[str, Any]:
    """What the filters and dedup removed, for the card (current warehouse state), and the
    snapshot's entries by origin (`Snapshot.origins`)."""
    one = lambda sql: int(wh.query(sql)[0][0] or 0)  # noqa: E731
    langid = dict(
        wh.query(
            "SELECT l.decision, count(*) FROM langid_results l JOIN entries e USING (entry_id) "
            "WHERE e.status = 'active' AND l.content_hash = e.content_hash GROUP BY 1"
        )
    )
    dedup = dict(
        wh.query("SELECT method, count(*) FROM dedup_members WHERE decision = 'duplicate' GROUP BY 1")
    )
    return {
        "quarantined": one("SELECT count(*) FROM quarantine"),
        "langid_rejected": int(langid.get("reject", 0)),
        "langid_flagged": int(langid.get("flag", 0)),
        "langid_relabelled": int(langid.get("relabel", 0)),
        "quality_rejected": one("SELECT count(*) FROM v_quality WHERE NOT passed"),
        "quality_reasons": wh.query_dicts(
            "SELECT reason, count(*)::INTEGER AS entries FROM v_quality_hits WHERE kind = 'reject' "
            "GROUP BY 1 ORDER BY 2 DESC, 1"
        ),
        "duplicates_exact": int(dedup.get("exact", 0)),
        "duplicates_near": int(dedup.get("near", 0)),
        "contaminated": one("SELECT count(*) FROM dedup_members WHERE decision = 'contaminated'"),
        "origin": origins,
    }


def source_revisions(wh: Warehouse, sources: list[str]) -> dict[str, str]:
    rows = wh.query("SELECT source, coalesce(revision, fingerprint) FROM source_state ORDER BY source")
    return {s: r for s, r in rows if s in set(sources)}


def run_export(
    wh: Warehouse, loaded: LoadedConfig, run_id: str | None = None, *, publish: bool = True, log: Log = print
) -> dict[str, Any]:
    s = loaded.config.export
    started = time.perf_counter()
    # Fail closed: the curated view must hold only what every enabled stage decided.
    record_stage_settings(wh, loaded)
    pending = pending_work(wh, loaded)
    if pending:
        raise PendingWork(pending)
    snap = take_snapshot(wh, s)
    faults.point("export.snapshot")
    if snap.entries == 0:
        log("export: the curated view is empty; nothing to export")
        return {"status": "skipped", "entries": 0}
    log(f"export: snapshot of {snap.entries:,} curated entries, fingerprint {snap.fingerprint[:12]}…")
    latest = latest_version(wh, s.repo_id)
    if latest is not None and latest["fingerprint"] == snap.fingerprint:
        version, created = latest["version"], False
        log(f"export: content unchanged since v{version}; no new version")
    else:
        version = _create_version(wh, loaded, run_id, snap, latest, log)
        created = True
    record = get_version(wh, s.repo_id, version)
    result: dict[str, Any] = {
        "version": version,
        "created": created,
        "entries": snap.entries,
        "files": record["counts"]["files"],
        "bytes": record["counts"]["bytes"],
        "folder": record["folder"],
        "fingerprint": snap.fingerprint,
    }
    status = record["status"]
    if publish:
        status, published_to = _publish(wh, loaded, record, log)
        faults.point("export.published")
        # Sent once the version is published, and until it was sent (a run killed in between
        # sends it next time: at least once, never before every tag exists).
        if status == "published" and record.get("event_id") is None:
            event = emit_published(
                repo_id=s.repo_id,
                version=version,
                fingerprint=snap.fingerprint,
                entries=snap.entries,
                targets=published_to,
            )
            result["event"] = str(event.id) if event is not None else None
            if event is not None:
                record_event(wh, s.repo_id, version, str(event.id))
            log(
                f"export: v{version} published; event globmed.dataset.published "
                f"{'emitted' if event is not None else 'not emitted (no Prefect API)'}"
            )
    result["status"] = status
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def _create_version(
    wh: Warehouse,
    loaded: LoadedConfig,
    run_id: str | None,
    snap: Snapshot,
    latest: dict[str, Any] | None,
    log: Log,
) -> str:
    s = loaded.config.export
    parent_index = version_index(wh, s.repo_id, latest["version"]) if latest else snap.index.clear()
    changes = diff_indexes(parent_index, snap.index)
    bump = bump_kind(latest, snap.schema_version, changes)
    version = next_version(latest, bump)
    inputs = CardInputs(
        repo_id=s.repo_id,
        version=version,
        parent=latest["version"] if latest else None,
        bump=bump,
        snapshot=snap,
        settings=s,
        low_resource=loaded.config.languages.low_resource,
        pipeline=pipeline_counts(wh, snap.origins),
        changes=changes,
    )
    folder = export_dir(wh, loaded) / s.repo_id.replace("/", "__") / f"v{version}"
    manifest = write_version_folder(
        snap,
        folder,
        repo_id=s.repo_id,
        version=version,
        render_card=lambda files: render_card(inputs, files),
        max_shard_mb=s.max_shard_mb,
        row_group_rows=s.row_group_rows,
        zstd_level=s.zstd_level,
    )
    faults.point("export.written")
    counts = {
        "entries": snap.entries,
        "files": len(manifest["files"]),
        "bytes": sum(f["bytes"] for f in manifest["files"]),
        "by_config": {c: int(n) for c, n in snap.index["config"].value_counts().sort("config").iter_rows()},
        "by_language": {
            c: int(n) for c, n in snap.index["language"].value_counts().sort("language").iter_rows()
        },
        "by_split": {c: int(n) for c, n in snap.index["split"].value_counts().sort("split").iter_rows()},
    }
    record_version(
        wh,
        repo_id=s.repo_id,
        version=version,
        snapshot=snap,
        parent=inputs.parent,
        bump=bump,
        config_hash=loaded.config.config_hash(),
        source_revisions=source_revisions(wh, snap.index["source"].unique().to_list()),
        counts=counts,
        changes=changes,
        folder=str(folder),
        run_id=run_id,
    )
    faults.point("export.recorded")
    log(
        f"export: v{version} ({bump}) written to {folder}: {counts['files']} files, "
        f"{counts['bytes'] / 1e6:.1f} MB; +{changes['added']:,} −{changes['removed']:,} "
        f"~{changes['changed']:,} against {('v' + inputs.parent) if inputs.parent else 'nothing'}"
    )
    return version


def _publish(
    wh: Warehouse, loaded: LoadedConfig, record: dict[str, Any], log: Log
) -> tuple[str, dict[str, dict[str, Any]]]:
    s = loaded.config.export
    folder = Path(record["folder"])
    read_manifest(folder)  # a clear error if the version's files were removed
    chosen = targets(wh, loaded)
    published: dict[str, dict[str, Any]] = {}
    for target in chosen:
        revision, error = None, None
        try:
            revision = target.publish(folder, record["version"], record["created_at"])
        except PublishError as exc:
            error = str(exc)
        faults.point("export.tagged")
        record_publication(
            wh,
            repo_id=s.repo_id,
            version=record["version"],
            target=target.name,
            location=target.location,
            revision=revision,
            error=error,
        )
        if error is not None:
            log(f"export: publishing v{record['version']} to {target.name} failed: {error}")
            continue
        published[target.name] = {"location": target.location, "revision": revision}
        log(f"export: v{record['version']} tagged in {target.name} ({target.location}) at {revision[:12]}")
    status = settle_status(wh, s.repo_id, record["version"], [t.name for t in chosen])
    return status, published


def card_text(record: dict[str, Any]) -> str:
    return (Path(record["folder"]) / CARD).read_text(encoding="utf-8")


def export_summary(e: dict[str, Any]) -> str:
    if e.get("status") == "skipped":
        return "nothing curated to export"
    what = "new version" if e["created"] else "unchanged"
    return (
        f"v{e['version']} ({what}), {e['entries']} entries in {e['files']} files, "
        f"{e['bytes'] / 1e6:.1f} MB, {e['status']}; {e['folder']}"
    )


class ExportStage:
    name = "export"
    reads = ("v_curated_entries", "dataset_versions")
    writes = ("dataset_versions", "dataset_version_entries", "dataset_publications", "export_splits")
    decides_entries = False
    adds_entries = None

    def settings(self, config: PipelineConfig) -> ExportSettings:
        return config.export

    def settings_hash(self, loaded: LoadedConfig) -> str:
        return stable_hash("export", loaded.config.export.model_dump_json())

    def pending(self, wh: Warehouse, loaded: LoadedConfig) -> dict[str, int]:
        return {}  # whether the curated view changed is known once it is snapshot

    def undecided(self, wh: Warehouse, settings_hash: str) -> int | None:
        return None

    def run(self, context: Context) -> Report:
        e = run_export(context.wh, context.loaded, context.run_id, log=context.log)
        return Report(self.name, e, export_summary(e))
