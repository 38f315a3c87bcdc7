"""Where versions are published: a local git repository (one commit and tag per version) or the
Hugging Face Hub. Publishing is idempotent: a tag that already holds this version's manifest is
success, a tag that holds anything else is an error (tags never move)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Protocol

from globmed_data import faults
from globmed_data.export.layout import MANIFEST, read_manifest
from globmed_data.export.settings import HubTargetSettings
from globmed_data.secrets import credential, redact


class PublishError(RuntimeError):
    pass


class Target(Protocol):
    name: str
    location: str

    def publish(self, folder: Path, version: str, created_at: datetime) -> str:
        """Commit the version folder and tag it v{version}; return the tagged commit sha."""
        ...


def git_blob_sha(data: bytes) -> str:
    """The id git (and the Hub) give a file's content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def version_files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


class LocalGitTarget:
    """`<root>/datasets/<owner>/<name>`: the layout olah serves as local mirrors (`mirrors-path`)."""

    name = "local"

    def __init__(self, root: Path, repo_id: str) -> None:
        self.path = root / "datasets" / repo_id
        self.location = str(self.path)

    def _git(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
        done = self._run(*args, env=env)
        if check and done.returncode != 0:
            raise PublishError(f"git {' '.join(args)} failed in {self.path}: {done.stderr.strip()}")
        return done.stdout.strip()

    def _run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        # Named outright: a damaged .git must fail, never send git up to an enclosing repository.
        base |= {"GIT_DIR": str(self.path / ".git"), "GIT_WORK_TREE": str(self.path)}
        return subprocess.run(
            [
                "git",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "tag.gpgsign=false",
                "-c",
                "core.autocrlf=false",
                *args,
            ],
            cwd=self.path,
            env={**base, **(env or {})},
            capture_output=True,
            text=True,
        )

    def tag_commit(self, tag: str) -> str | None:
        out = self._git("rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}", check=False)
        return out or None

    def publish(self, folder: Path, version: str, created_at: datetime) -> str:
        if shutil.which("git") is None:
            raise PublishError("git is not installed: install it, or set export.local.enabled: false")
        tag = f"v{version}"
        self.path.mkdir(parents=True, exist_ok=True)
        self._repair()
        if not (self.path / ".git").exists():
            self._git("init", "-q", "-b", "main")
        fingerprint = read_manifest(folder)["fingerprint"]
        existing = self.tag_commit(tag)
        if existing:
            return self._check_tagged(tag, existing, fingerprint)
        for child in self.path.iterdir():  # the work tree becomes exactly the version folder
            if child.name != ".git":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        for rel, src in version_files(folder).items():
            dest = self.path / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        stamp = created_at.isoformat()
        env = {
            "GIT_AUTHOR_NAME": "globmed-data",
            "GIT_AUTHOR_EMAIL": "globmed-data@localhost",
            "GIT_COMMITTER_NAME": "globmed-data",
            "GIT_COMMITTER_EMAIL": "globmed-data@localhost",
            "GIT_AUTHOR_DATE": stamp,
            "GIT_COMMITTER_DATE": stamp,
        }
        self._git("add", "-A")
        faults.point("export.git_added")
        message = f"globmed-data {tag}"
        if not self._committed(message):  # a run killed between commit and tag made it already
            self._git("commit", "-q", "--allow-empty", "--no-verify", "-m", message, env=env)
        faults.point("export.git_committed")
        self._git("tag", tag)
        return self._git("rev-parse", "HEAD")

    def _committed(self, message: str) -> bool:
        """HEAD is this version's commit, and the index holds exactly its files."""
        head = self._run("log", "-1", "--format=%s", "HEAD")
        if head.returncode != 0 or head.stdout.strip() != message:
            return False
        return self._run("diff", "--cached", "--quiet", "HEAD").returncode == 0

    def _repair(self) -> None:
        """Undo what a killed git leaves behind, so one kill never blocks every later publish.

        Locks: the warehouse's writer is the only process that publishes to this repository,
        so a lock file found now was left by a killed git. A repository whose `git init` was
        killed (no HEAD) and that holds no tag yet is made again; one with tags is never
        deleted: it gets its HEAD back, or a clear error.
        """
        git_dir = self.path / ".git"
        if not git_dir.is_dir():
            return
        for lock in git_dir.rglob("*.lock"):
            lock.unlink(missing_ok=True)
        if self._run("rev-parse", "--git-dir").returncode == 0 and (git_dir / "HEAD").is_file():
            return
        tags = git_dir / "refs" / "tags"
        packed = git_dir / "packed-refs"
        has_tags = (tags.is_dir() and any(tags.iterdir())) or (
            packed.is_file() and "refs/tags/" in packed.read_text(errors="replace")
        )
        if not has_tags:
            shutil.rmtree(git_dir)
            return
        (git_dir / "HEAD").write_text("ref: refs/heads/main\n")
        check = self._run("rev-parse", "--git-dir")
        if check.returncode != 0:
            raise PublishError(
                f"the git repository {self.path} is damaged ({check.stderr.strip()}) and holds "
                "published tags: move it aside and publish again, or repair it with git"
            )

    def _check_tagged(self, tag: str, commit: str, fingerprint: str) -> str:
        shown = self._git("show", f"{tag}:{MANIFEST}", check=False)
        if f'"fingerprint": "{fingerprint}"' not in shown:
            raise PublishError(
                f"tag {tag} already exists in {self.path} with other content; tags never move: "
                "delete the tag by hand if it was made by mistake"
            )
        return commit


def hub_token(settings: HubTargetSettings) -> str | None:
    return credential(settings.token_env, settings.token_secret)


class HubTarget:
    """The Hugging Face Hub (or a Hub-compatible endpoint), through huggingface_hub's HfApi."""

    name = "hub"

    def __init__(self, settings: HubTargetSettings, repo_id: str) -> None:
        self.settings = settings
        self.repo_id = settings.repo_id or repo_id
        self.endpoint = settings.endpoint or os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
        self.location = f"{self.endpoint.rstrip('/')}/datasets/{self.repo_id}"

    def publish(self, folder: Path, version: str, created_at: datetime) -> str:
        token = hub_token(self.settings)
        from globmed_data.ops.retry import hub_timeouts, with_retries

        hub_timeouts()
        try:
            # Safe to repeat: a version already tagged is checked, not committed again.
            return with_retries(
                f"publish v{version} to {self.location}", lambda: self._publish(folder, version, token)
            )
        except PublishError:
            raise
        except Exception as exc:  # the Hub client raises many kinds; keep the message, hide the token
            raise PublishError(redact(f"{type(exc).__name__}: {exc}", token)) from None

    def _publish(self, folder: Path, version: str, token: str | None) -> str:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
        from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

        api = HfApi(endpoint=self.endpoint, token=token)
        tag = f"v{version}"
        repo = {"repo_id": self.repo_id, "repo_type": "dataset"}
        api.create_repo(**repo, private=self.settings.private, exist_ok=True)
        tagged = {t.name: t.target_commit for t in api.list_repo_refs(**repo).tags}
        files = version_files(folder)
        if tag in tagged:
            return self._check_tagged(api, tag, tagged[tag], files[MANIFEST].read_bytes())
        try:
            remote = set(api.list_repo_files(**repo))
        except (EntryNotFoundError, RevisionNotFoundError):
            remote = set()
        stale = sorted(p for p in remote - set(files) if p != ".gitattributes")
        operations = [CommitOperationDelete(path_in_repo=p) for p in stale] + [
            CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)) for rel, path in files.items()
        ]
        info = api.create_commit(**repo, operations=operations, commit_message=f"globmed-data {tag}")
        faults.point("export.hub_committed")  # a kill here: the next publish commits again, then tags
        api.create_tag(**repo, tag=tag, revision=info.oid, exist_ok=True)
        tagged = {t.name: t.target_commit for t in api.list_repo_refs(**repo).tags}
        if tag not in tagged:
            raise PublishError(f"the Hub accepted the commit but tag {tag} is not there")
        return self._check_tagged(api, tag, tagged[tag], files[MANIFEST].read_bytes())

    def _check_tagged(self, api: object, tag: str, commit: str, manifest: bytes) -> str:
        from huggingface_hub import HfApi

        assert isinstance(api, HfApi)
        info = api.get_paths_info(self.repo_id, [MANIFEST], repo_type="dataset", revision=tag)
        remote = info[0].blob_id if info else None
        if remote != git_blob_sha(manifest):
            raise PublishError(
                f"tag {tag} already exists on {self.location} with other content; tags never move"
            )
        return commit
