"""A local cache of model arrays that are slow to unpack (py3langid's compressed model,
langdetect's JSON profiles): built once, then read in milliseconds by every later process.

Where: $GLOBMED_CACHE_DIR, else $XDG_CACHE_HOME/globmed-data, else ~/.cache/globmed-data.
An entry is named for what it was built from (path, size and modification time of the source
file, or of every file in a source folder), so an upgraded package builds a new one. A cache
that cannot be written is not an error: the arrays are then built in every process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

CACHE_VERSION = "1"
log = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray]


def cache_dir() -> Path:
    if os.environ.get("GLOBMED_CACHE_DIR"):
        return Path(os.environ["GLOBMED_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "globmed-data"


def cached_arrays(name: str, source: Path, build: Callable[[], Arrays]) -> Arrays:
    """The arrays `build` makes from `source`, from the cache when it holds them."""
    path = cache_dir() / f"{name}-{_fingerprint(source)}.npz"
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        pass  # not cached yet, or unreadable (a truncated or foreign file): build it again
    arrays = build()
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as fh:
            tmp = fh.name
            np.savez(fh, **arrays)
        os.replace(tmp, path)  # whole or not at all, even with processes racing
    except OSError as exc:
        log.debug("model cache not written (%s): %s", path, exc)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)  # a disk that filled up keeps no half file
    return arrays


def _fingerprint(source: Path) -> str:
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    h = hashlib.sha256(f"{CACHE_VERSION}\0{source.resolve()}".encode())
    for f in files:
        st = f.stat()
        h.update(f"\0{f.name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]
