"""What the curated view may show: the enabled stages, their settings, and their pending work.

The view `v_curated_entries` fails closed: an entry is in it only when every stage enabled in
`stage_state` decided it for its current content under the recorded settings. A run (and an
export) records its config's stages first, so a config change makes the entries it affects
pending rather than silently stale. `pending_work` tells the export what is still undecided.
"""

from __future__ import annotations

from collections.abc import Callable

from globmed_data.config import LoadedConfig
from globmed_data.warehouse import Warehouse, now

Log = Callable[[str], None]
CLUSTERS = "dedup:clusters"  # pending_work's key when only dedup's clusters are out of date


class PendingWork(RuntimeError):
    """A stage has entries it has not decided yet: exporting now would publish a guess."""

    def __init__(self, pending: dict[str, int]) -> None:
        self.pending = pending
        listed = ", ".join(
            "dedup clusters out of date" if stage == CLUSTERS else f"{stage} {n:,} entries undecided"
            for stage, n in pending.items()
        )
        super().__init__(
            f"stages have pending work ({listed}): run them first with "
            "`globmed run -c CONFIG`, or `globmed export -c CONFIG --run-stages`"
        )


def stage_settings(loaded: LoadedConfig) -> dict[str, tuple[bool, str]]:
    """stage -> (enabled, the settings hash its stored decisions must carry)."""
    from globmed_data.dedup.stage import index_hash
    from globmed_data.langid.stage import stage_hash
    from globmed_data.quality.evaluate import settings_hash
    from globmed_data.translate.stage import translate_hash

    c = loaded.config
    return {
        "langid": (c.langid.enabled, stage_hash(c.langid, loaded)),
        "quality": (c.quality.enabled, settings_hash(c.quality)),
        "translate": (c.translate.enabled, translate_hash(c.translate)),
        "dedup": (c.dedup.enabled, index_hash(c.dedup)),
    }


def record_stage_settings(wh: Warehouse, loaded: LoadedConfig) -> None:
    """Make the config's stages the ones the curated view requires decisions from."""
    rows = [(stage, on, h, now()) for stage, (on, h) in stage_settings(loaded).items()]
    with wh.transaction() as con:
        con.executemany("INSERT OR REPLACE INTO stage_state VALUES (?, ?, ?, ?)", rows)


def pending_work(wh: Warehouse, loaded: LoadedConfig) -> dict[str, int]:
    """Entries each stage the config enables has yet to decide (only stages with some), and
    whether dedup's clusters are out of date."""
    from globmed_data.dedup import stage as dedup_stage
    from globmed_data.translate import stage as translate_stage

    enabled = {stage: h for stage, (on, h) in stage_settings(loaded).items() if on}
    counts = _undecided(wh, enabled)
    if "translate" in enabled:
        counts["translate"] = translate_stage.pending(wh, loaded)
    if "dedup" in enabled and not counts["dedup"]:
        counts[CLUSTERS] = int(dedup_stage.clusters_stale(wh, loaded.config.dedup))
    order = ("langid", "quality", "translate", "dedup", CLUSTERS)  # the pipeline's
    return {stage: counts[stage] for stage in order if counts.get(stage)}


def undecided(wh: Warehouse) -> dict[str, int]:
    """Entries each stage recorded enabled in `stage_state` has not decided under its recorded
    settings: pending work seen without the config (`globmed status`). Dedup's clusters being out
    of date needs the config's settings, so only `pending_work` tells that."""
    recorded = dict(wh.query("SELECT stage, settings_hash FROM stage_state WHERE enabled"))
    return {stage: n for stage, n in _undecided(wh, recorded).items() if n}


def _undecided(wh: Warehouse, hashes: dict[str, str]) -> dict[str, int]:
    """Per stage in `hashes` (langid, quality, dedup): active entries with no decision under
    that settings hash."""
    from globmed_data.dedup.stage import unlinked
    from globmed_data.langid import stage as langid_stage
    from globmed_data.quality import stage as quality_stage

    counting = {"langid": langid_stage.pending, "quality": quality_stage.pending, "dedup": unlinked}
    return {stage: count(wh, hashes[stage]) for stage, count in counting.items() if stage in hashes}


def run_stages(wh: Warehouse, loaded: LoadedConfig, run_id: str, log: Log) -> dict[str, object]:
    """The curation stages in the pipeline's order, without Prefect (`globmed export
    --run-stages`): each does only its pending work."""
    from globmed_data.dedup.stage import run_dedup
    from globmed_data.langid.stage import run_langid
    from globmed_data.quality.stage import run_quality
    from globmed_data.translate.stage import run_translate

    c = loaded.config
    steps: list[tuple[str, bool, Callable[[], dict[str, object]]]] = [
        ("langid", c.langid.enabled, lambda: run_langid(wh, loaded, run_id, log=log)),
        ("quality", c.quality.enabled, lambda: run_quality(wh, loaded, run_id, log=log)),
        ("translate", c.translate.enabled, lambda: run_translate(wh, loaded, run_id, log=log)),
        ("langid:translated", c.translate.enabled and c.langid.enabled,
         lambda: run_langid(wh, loaded, run_id, log=log)),
        ("quality:translated", c.translate.enabled and c.quality.enabled,
         lambda: run_quality(wh, loaded, run_id, log=log)),
        ("dedup", c.dedup.enabled, lambda: run_dedup(wh, loaded, run_id, log=log)),
    ]  # fmt: skip
    return {name: work() for name, enabled, work in steps if enabled}
