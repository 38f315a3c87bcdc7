"""Which dataset version a benchmark reads, found from one string and verified before use.

    ./exports/globmed__demo/v1.0.0      a version folder (as the export writes it, or a pull)
    PATH@v1.0.0                         a tag of a local dataset repository (git), e.g.
                                        dataset-repos/datasets/globmed/demo@v1.0.0
    OWNER/NAME@v1.0.0                   the local repository of that name under `repos` (the
                                        export's local target), else pulled with huggingface_hub
                                        from `endpoint` (globmed pull); files and fingerprint checked

Tags are checked out with `git archive` into the cache folder; every version is verified against
its manifest (files, checksums, fingerprint) before a single item is scored.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from globmed_data.export.layout import MANIFEST, VerificationError, verify_folder
from globmed_data.settings import REPO_ID, ConfigError
from globmed_data.warehouse import resolve_warehouse_path

if TYPE_CHECKING:
    from globmed_data.config import LoadedConfig


class DatasetError(ValueError):
    """The dataset cannot be found or is not a verified globmed-data version."""


@dataclass(frozen=True)
class Shard:
    config: str
    task: str
    language: str
    split: str
    path: Path
    rows: int


@dataclass(frozen=True)
class DatasetVersion:
    folder: Path
    manifest: dict[str, Any]

    @property
    def repo_id(self) -> str:
        return str(self.manifest["repo_id"])

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["fingerprint"])

    def shards(self) -> list[Shard]:
        configs = self.manifest["configs"]
        return [
            Shard(
                f["config"],
                configs[f["config"]]["task"],
                f["language"],
                f["split"],
                self.folder / f["path"],
                int(f["rows"]),
            )
            for f in self.manifest["files"]
        ]


@dataclass(frozen=True)
class Places:
    """Where the flows that read a version (benchmark, training) find it and write their results."""

    warehouse: Path
    repos: Path  # local dataset repositories: export.local.root, else dataset-repos by the warehouse


def places_for(loaded: LoadedConfig | None, warehouse: str | None) -> Places:
    """The warehouse (flag, $GLOBMED_WAREHOUSE, the config's, the default) and the repositories."""
    config = loaded.config if loaded else None
    configured = loaded.resolve(config.warehouse) if loaded and config and config.warehouse else None
    wh_path = resolve_warehouse_path(warehouse, configured)
    root = config.export.local.root if config else None
    repos = loaded.resolve(root) if loaded and root else wh_path.parent / "dataset-repos"
    return Places(wh_path, repos)


def open_version(dataset: str, *, cache: Path, places: Places, endpoint: str | None) -> DatasetVersion:
    """resolve_dataset, its failures as ConfigError (a request that cannot start)."""
    try:
        return resolve_dataset(dataset, cache=cache, repos=places.repos, endpoint=endpoint)
    except (ValueError, OSError, VerificationError) as exc:
        raise ConfigError(str(exc)) from None


_TAGGED = re.compile(r"^(?P<where>.+)@(?P<tag>v\d+\.\d+\.\d+)$")


def resolve_dataset(
    dataset: str, *, cache: Path, repos: Path | None = None, endpoint: str | None = None
) -> DatasetVersion:
    folder = Path(dataset).expanduser()
    if folder.is_dir() and (folder / MANIFEST).is_file():
        return DatasetVersion(folder, verify_folder(folder))
    m = _TAGGED.match(dataset)
    if not m:
        raise DatasetError(
            f"dataset '{dataset}': not a version folder (no {MANIFEST}) and not NAME@vX.Y.Z; give a "
            "folder, a repository path with @tag, or OWNER/NAME@vX.Y.Z"
        )
    where, tag = m["where"], m["tag"]
    local = Path(where).expanduser()
    if not (local / ".git").exists() and repos is not None and REPO_ID.match(where):
        local = repos / "datasets" / where
    target = cache / "versions" / re.sub(r"[^A-Za-z0-9_.-]+", "__", where.strip("/")) / tag
    if (local / ".git").exists():
        _checkout_tag(local, tag, target)
    elif REPO_ID.match(where):
        from globmed_data.export.pull import pull_version

        try:
            pull_version(where, tag, target, endpoint=endpoint)
        except (OSError, ValueError) as exc:  # network errors, unknown repo or revision
            first = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise DatasetError(
                f"dataset '{dataset}': no local repository at {local} and the pull from "
                f"{endpoint or 'the Hub (HF_ENDPOINT)'} failed: {first}"
            ) from None
    else:
        raise DatasetError(f"dataset '{dataset}': {where} is neither a git repository nor OWNER/NAME")
    manifest = verify_folder(target)
    if manifest.get("tag") != tag:
        raise DatasetError(f"dataset '{dataset}': the tag holds the manifest of {manifest.get('tag')}")
    return DatasetVersion(target, manifest)


def _checkout_tag(repo: Path, tag: str, target: Path) -> None:
    """The tag's tree into `target` (replaced), through `git archive`: no work tree is touched."""
    done = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", tag], capture_output=True)
    if done.returncode != 0:
        raise DatasetError(f"{repo}: no tag {tag} ({done.stderr.decode(errors='replace').strip()})")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        tar.extractall(staging, filter="data")
    shutil.rmtree(target, ignore_errors=True)
    staging.replace(target)
