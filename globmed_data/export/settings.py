"""Settings of the export stage: splits, card and publishing targets (docs/export.md)."""

from __future__ import annotations

from pydantic import Field, field_validator

from globmed_data.settings import REPO_ID, SPLIT_NAMES, Strict


class SplitSettings(Strict):
    """Seeded split assignment for entries whose source says `split: auto`."""

    seed: int = 0
    ratios: dict[str, float] = Field(default_factory=lambda: {"train": 0.8, "validation": 0.1, "test": 0.1})

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, v: dict[str, float]) -> dict[str, float]:
        stray = sorted(set(v) - set(SPLIT_NAMES))
        if stray:
            raise ValueError(f"unknown split(s) {', '.join(stray)}; use {', '.join(SPLIT_NAMES)}")
        if any(r < 0 for r in v.values()) or abs(sum(v.values()) - 1.0) > 1e-6:
            raise ValueError(f"ratios must be ≥ 0 and sum to 1 (they sum to {sum(v.values()):g})")
        return v


class CardSettings(Strict):
    """What the dataset card says beyond the statistics it computes."""

    pretty_name: str | None = None  # default: the repo name
    description: str = ""
    license: str | None = None  # default: the sources' licenses (`other` when they differ)
    citation: str = ""  # BibTeX, copied into the card verbatim


class LocalTargetSettings(Strict):
    """A git repository per dataset (one commit and tag per version); olah can serve the root."""

    enabled: bool = True
    root: str | None = None  # default: dataset-repos/ next to the warehouse


class HubTargetSettings(Strict):
    """Push to the Hugging Face Hub (or any Hub-compatible endpoint) with huggingface_hub."""

    repo_id: str | None = None  # default: export.repo_id
    endpoint: str | None = None  # default: HF_ENDPOINT, else https://huggingface.co
    private: bool = True
    token_env: str = "HF_TOKEN"  # environment variable that holds the token
    token_secret: str | None = None  # or the name of a Prefect Secret block

    @field_validator("repo_id")
    @classmethod
    def _repo(cls, v: str | None) -> str | None:
        if v is not None and not REPO_ID.match(v):
            raise ValueError(f"'{v}' is not a repo id of the form 'owner/name'")
        return v


class ExportSettings(Strict):
    """Versioned dataset export (docs/export.md)."""

    enabled: bool = True
    repo_id: str = "globmed/globmed-data"
    dir: str | None = None  # version folders; default: exports/ next to the warehouse
    config_per_source: list[str] = Field(default_factory=list)  # sources with a config of their own
    max_shard_mb: float = Field(256, gt=0)  # bound on a shard's uncompressed text
    row_group_rows: int = Field(20_000, ge=100)
    zstd_level: int = Field(9, ge=1, le=22)
    splits: SplitSettings = SplitSettings()
    card: CardSettings = CardSettings()
    local: LocalTargetSettings = LocalTargetSettings()
    hub: HubTargetSettings | None = None  # set to push every new version to the Hub

    @field_validator("repo_id")
    @classmethod
    def _repo(cls, v: str) -> str:
        if not REPO_ID.match(v):
            raise ValueError(f"'{v}' is not a repo id of the form 'owner/name'")
        return v
