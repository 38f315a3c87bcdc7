"""What the curated view may show: the stages that decide entries, their settings, and their
pending work.

The view `v_curated_entries` fails closed: an entry is in it only when every deciding stage
enabled in `stage_state` decided it for its current content under the recorded settings. A run
(and an export) records its config's stages first, so a config change makes the entries it
affects pending rather than silently stale. `pending_work` tells the export what is undecided.
"""

from __future__ import annotations

from globmed_data.config import LoadedConfig
from globmed_data.dedup.stage import DedupStage
from globmed_data.langid.stage import LangIdStage
from globmed_data.pipeline.stage import PendingWork, Stage, enabled
from globmed_data.quality.stage import QualityStage
from globmed_data.translate.stage import TranslateStage
from globmed_data.warehouse import Warehouse, now

# The stages that decide entries, in pipeline order (the registry places them between collect
# and export). Kept apart from the registry so that the export stage can check them.
CURATION: tuple[Stage, ...] = (LangIdStage(), QualityStage(), TranslateStage(), DedupStage())

__all__ = ["CURATION", "PendingWork", "pending_work", "record_stage_settings", "undecided"]


def record_stage_settings(wh: Warehouse, loaded: LoadedConfig) -> None:
    """Make the config's stages the ones the curated view requires decisions from."""
    c = loaded.config
    rows = [(s.name, enabled(s, c), s.settings_hash(loaded), now()) for s in CURATION]
    with wh.transaction() as con:
        con.executemany("INSERT OR REPLACE INTO stage_state VALUES (?, ?, ?, ?)", rows)


def pending_work(wh: Warehouse, loaded: LoadedConfig) -> dict[str, int]:
    """Work each deciding stage the config enables has yet to do (only stages with some)."""
    found: dict[str, int] = {}
    for s in CURATION:
        if enabled(s, loaded.config):
            found.update(s.pending(wh, loaded))
    return {kind: n for kind, n in found.items() if n}


def undecided(wh: Warehouse) -> dict[str, int]:
    """Entries each stage recorded enabled in `stage_state` has not decided under its recorded
    settings: pending work seen without the config (`globmed status`)."""
    recorded = dict(wh.query("SELECT stage, settings_hash FROM stage_state WHERE enabled"))
    counts = {s.name: s.undecided(wh, recorded[s.name]) for s in CURATION if s.name in recorded}
    return {name: n for name, n in counts.items() if n}
