"""Find the files a source reads: local globs, or a Hub dataset snapshot."""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from globmed_data.config import LoadedConfig
from globmed_data.sources.settings import FileSource, HubSource


class SourceError(RuntimeError):
    """The source cannot be read at all (missing files, unreachable Hub repo...)."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: Path  # absolute
    rel: str  # stable name inside the source (used in keys, split/language patterns)
    size: int

    def sha256(self) -> str:
        with self.path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()


@dataclass(frozen=True, slots=True)
class Located:
    files: list[SourceFile]
    revision: str | None  # Hub commit sha; None for local files
    unreadable: tuple[tuple[str, str], ...] = ()  # (name, why): matched, but cannot be opened


def _split(pattern: str) -> tuple[Path, list[str]]:
    """The folder part of a glob before its first wildcard, and the parts from there on."""
    parts = Path(pattern).parts
    first = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts))
    return (Path(*parts[:first]) if first else Path(".")), list(parts[first:])


def _static_root(pattern: str) -> Path:
    """The folder file names are taken relative to: the glob's part before its first wildcard."""
    root, wild = _split(pattern)
    return root.parent if root.is_file() or not wild else root


def locate_files(source: FileSource, loaded: LoadedConfig) -> Located:
    found: dict[str, SourceFile] = {}
    unreadable: dict[str, str] = {}
    for raw in source.paths:
        pattern = str(loaded.resolve(raw))
        if glob.has_magic(pattern):
            matches = match_files(pattern)
            if not matches:
                raise SourceError(f"source '{source.name}': no files match {raw!r} (resolved to {pattern})")
        else:
            if not os.path.lexists(pattern):
                raise SourceError(f"source '{source.name}': file not found: {raw!r} (resolved to {pattern})")
            matches = [pattern]
        root = _static_root(pattern)
        for match in matches:
            path = Path(match)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if _excluded(rel, source.exclude):
                continue
            try:  # a symlink loop or a dangling link fails here, for this file alone
                if path.is_dir():
                    continue
                real, size = Path(os.path.realpath(path, strict=True)), path.stat().st_size
            except OSError as exc:
                unreadable[rel] = f"{path}: {exc.strerror or exc}"
                continue
            if rel in found and found[rel].path != real:
                raise SourceError(
                    f"source '{source.name}': two files share the name {rel!r} "
                    f"({found[rel].path} and {path}); split them into two sources"
                )
            found[rel] = SourceFile(real, rel, size)
    if not found and not unreadable:
        raise SourceError(f"source '{source.name}': every matching file was excluded")
    return Located(sorted(found.values(), key=lambda f: f.rel), None, tuple(sorted(unreadable.items())))


def check_sources(loaded: LoadedConfig) -> list[str]:
    """What would fail when the local sources are read (a missing file, a folder with no match),
    found without reading them. Hub sources are not contacted."""
    problems = []
    for source in loaded.config.sources:
        if not source.enabled:
            continue
        try:
            if isinstance(source, FileSource):
                located = locate_files(source, loaded)
                problems += [f"source '{source.name}': {why}" for _, why in located.unreadable]
            elif source.local_path:
                locate_hub(source, loaded, None)
        except SourceError as exc:
            problems.append(str(exc))
    return problems


def match_files(pattern: str) -> list[str]:
    """`glob.glob(pattern, recursive=True)` for files, except that a folder reached through
    symbolic links is read once (a link loop under `**` would list each file once per lap).
    Real paths are preferred to linked ones; hidden names match only a pattern part that starts
    with a dot, as in glob."""
    root, wanted = _split(pattern)
    depth = None if "**" in wanted else len(wanted)
    skip_hidden = not any(p.startswith(".") for p in wanted)
    return sorted(
        str(path) for names, path in _walk(root, depth, skip_hidden) if _matches(wanted, list(names))
    )


def _walk(root: Path, depth: int | None, skip_hidden: bool) -> Iterator[tuple[tuple[str, ...], Path]]:
    """(names under root, path) of every non-folder entry; each real folder is entered once."""
    seen: set[tuple[int, int]] = set()
    real: deque[tuple[Path, tuple[str, ...]]] = deque([(root, ())])
    linked: deque[tuple[Path, tuple[str, ...]]] = deque()
    while real or linked:
        folder, names = real.popleft() if real else linked.popleft()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            child = (*names, entry.name)
            try:
                is_dir = entry.is_dir()
            except OSError:  # a link loop: listed as a file, which then fails alone
                is_dir = False
            if not is_dir:
                yield child, Path(entry.path)
            elif not (skip_hidden and entry.name.startswith(".")) and (depth is None or len(child) < depth):
                (linked if entry.is_symlink() else real).append((Path(entry.path), child))


def _matches(parts: list[str], names: list[str]) -> bool:
    """glob's rules, one path component at a time: `**` spans zero or more visible folders."""
    if not parts:
        return not names
    head, rest = parts[0], parts[1:]
    if head == "**":
        for k in range(len(names) + 1):
            if k and names[k - 1].startswith("."):
                return False
            if _matches(rest, names[k:]):
                return True
        return False
    if not names:
        return False
    name = names[0]
    if glob.has_magic(head):
        if name.startswith(".") and not head.startswith("."):
            return False
        if not fnmatch.fnmatchcase(name, head):
            return False
    elif name != head:
        return False
    return _matches(rest, names[1:])


def _excluded(rel: str, patterns: list[str]) -> bool:
    """Exclude patterns match a file's path under the source root, or its name alone.

    They are never resolved against the config's folder: the same pattern must hold whether the
    source path is relative or comes from an environment variable as an absolute path.
    """
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, x) or fnmatch.fnmatch(name, x) for x in patterns)


def _folder_files(root: Path, patterns: list[str]) -> list[SourceFile]:
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith(".") and any(fnmatch.fnmatch(rel, p) for p in patterns):
            files.append(SourceFile(path.resolve(), rel, path.stat().st_size))
    return files


def hub_revision(source: HubSource) -> str:
    """Resolve the configured revision (branch, tag or sha) to a commit sha."""
    from huggingface_hub import HfApi

    from globmed_data.ops.retry import hub_timeouts, with_retries

    hub_timeouts()
    api = HfApi(endpoint=source.endpoint, token=os.environ.get(source.token_env) or False)
    try:
        info = with_retries(
            f"source '{source.name}': revision of {source.repo_id}",
            lambda: api.repo_info(source.repo_id, repo_type=source.repo_type, revision=source.revision),
        )
    except Exception as exc:  # network errors, 404, auth: all end the source with a clear message
        where = source.endpoint or "the Hugging Face Hub"
        raise SourceError(
            f"source '{source.name}': cannot reach {source.repo_type} repo '{source.repo_id}' "
            f"at revision '{source.revision}' on {where}: {type(exc).__name__}: {exc}"
        ) from None
    if not info.sha:
        raise SourceError(f"source '{source.name}': the Hub gave no commit sha for '{source.revision}'")
    return info.sha


def locate_hub(source: HubSource, loaded: LoadedConfig, revision: str | None) -> Located:
    """Files of a Hub dataset at `revision` (a sha from hub_revision), or of its local snapshot."""
    if source.local_path:
        root = loaded.resolve(source.local_path)
        if not root.is_dir():
            raise SourceError(f"source '{source.name}': local_path {root} is not a folder")
        files = _folder_files(root, source.files)
    else:
        from huggingface_hub import snapshot_download

        from globmed_data.ops.retry import hub_timeouts, with_retries

        hub_timeouts()
        try:
            root = Path(
                with_retries(
                    f"source '{source.name}': download of {source.repo_id}",
                    lambda: snapshot_download(
                        source.repo_id,
                        repo_type=source.repo_type,
                        revision=revision,
                        allow_patterns=source.files,
                        endpoint=source.endpoint,
                        token=os.environ.get(source.token_env) or False,
                    ),
                )
            )
        except Exception as exc:
            raise SourceError(
                f"source '{source.name}': download of '{source.repo_id}'@{revision} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        files = _folder_files(root, source.files)
    if not files:
        raise SourceError(f"source '{source.name}': no files match {source.files} in the snapshot")
    return Located(files, revision)
