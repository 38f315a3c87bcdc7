"""`globmed pull`: download a version with huggingface_hub and check it is what was published."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from globmed_data.export.layout import MANIFEST, VerificationError, verify_folder


def pull_version(
    repo_id: str,
    revision: str,
    out: Path,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    expected_fingerprint: str | None = None,
) -> dict[str, Any]:
    """snapshot_download the revision into `out`, then verify files and fingerprint; returns the manifest."""
    from huggingface_hub import snapshot_download

    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise FileExistsError(f"{out} is not empty and holds no pulled version: choose an empty folder")
        shutil.rmtree(out / "data", ignore_errors=True)  # a previous pull: its shards must not linger
    from globmed_data.ops.retry import hub_timeouts, with_retries

    hub_timeouts()
    with_retries(
        f"pull {repo_id}@{revision}",
        lambda: snapshot_download(
            repo_id,
            repo_type="dataset",
            revision=revision,
            endpoint=endpoint,
            local_dir=out,
            token=token or False,
        ),
    )
    manifest = verify_folder(out)
    if revision.startswith("v") and manifest.get("tag") != revision:
        raise VerificationError(f"{revision} holds the manifest of {manifest.get('tag')}")
    if expected_fingerprint and manifest["fingerprint"] != expected_fingerprint:
        raise VerificationError(
            f"fingerprint {manifest['fingerprint']} is not the expected {expected_fingerprint}"
        )
    return manifest
