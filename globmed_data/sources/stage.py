"""The collect stage as a pipeline stage: a map over the enabled sources (the flow runs one task
per source, side by side), each recorded in run_stages by the collector itself."""

from __future__ import annotations

from typing import Any

from globmed_data.config import LoadedConfig, PipelineConfig
from globmed_data.ids import canonical_json, stable_hash
from globmed_data.pipeline.stage import Context, Report
from globmed_data.sources.collect import SourceReport, collect_source
from globmed_data.warehouse import Warehouse


def source_summary(r: SourceReport | dict[str, Any]) -> str:
    d = r.as_dict() if isinstance(r, SourceReport) else r
    line = (
        f"{d['source']}: {d['status']}; {d['records']} records, +{d['added']} new, {d['updated']} updated, "
        f"{d['quarantined']} quarantined, {d['vanished']} vanished in {d['seconds']:.1f}s"
    )
    return line + (f": {d['error']}" if d.get("error") else "")


class CollectStage:
    name = "collect"
    reads = ("source_state", "source_files")
    writes = ("raw_records", "entries", "quarantine", "source_state", "source_files")
    decides_entries = False
    adds_entries = None

    def settings(self, config: PipelineConfig) -> Any:
        return config.collect

    def settings_hash(self, loaded: LoadedConfig) -> str:
        specs = [s.spec_hash() for s in loaded.config.sources if s.enabled]
        return stable_hash("collect", canonical_json(loaded.config.collect.model_dump()), *specs)

    def pending(self, wh: Warehouse, loaded: LoadedConfig) -> dict[str, int]:
        return {}  # a source's changes are known only by reading it

    def undecided(self, wh: Warehouse, settings_hash: str) -> int | None:
        return None

    def units(self, loaded: LoadedConfig) -> list[str]:
        """The map's items: one per enabled source."""
        return [s.name for s in loaded.config.sources if s.enabled]

    def run_unit(self, context: Context, unit: str) -> Report:
        source = context.loaded.config.source(unit)
        c = context
        report = collect_source(c.wh, c.loaded, source, c.run_id, c.log, c.progress, c.executor)
        return Report(self.name, report.as_dict(), source_summary(report))

    def run(self, context: Context) -> Report:
        with context.wh.bulk_load():
            reports = [self.run_unit(context, unit) for unit in self.units(context.loaded)]
        counts = {"sources": {r.counts["source"]: r.counts for r in reports}}
        failed = sum(r.counts["status"] == "failed" for r in reports)
        added = sum(r.counts["added"] for r in reports)
        return Report(self.name, counts, f"{len(reports)} sources, {failed} failed; +{added} new entries")
