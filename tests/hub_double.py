"""TEST DOUBLE of the Hugging Face Hub *write* API, for push tests (the public Hub cannot be
reached here). It speaks the HTTP endpoints huggingface_hub's HfApi calls to create a repo, commit
files, tag and list refs, and stores every dataset repo as a real git repository under
`root/datasets/<owner>/<name>`: the layout `olah` serves read-only, so what is pushed here is
pulled back through olah with the real client.

Only what HfApi.create_repo / create_commit ("regular" uploads) / create_tag / list_repo_refs /
list_repo_files / get_paths_info / repo_info need is implemented. `fail_next_commit` makes the
next commit fail (HTTP 400) to test failed pushes; `lose_next_commit_answer` stores the next
commit but answers 503, as when a connection drops after the Hub did the work.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

_REPO = r"/api/datasets/(?P<owner>[^/]+)/(?P<name>[^/]+)"
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "hub-double",
    "GIT_AUTHOR_EMAIL": "hub-double@localhost",
    "GIT_COMMITTER_NAME": "hub-double",
    "GIT_COMMITTER_EMAIL": "hub-double@localhost",
}


def _git(repo: Path, *args: str, data: bytes | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | _GIT_ENV
    done = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
        cwd=repo,
        env=env,
        input=data,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {args}: {done.stderr.decode()}")
    return done.stdout.decode().strip()


class HubWriteDouble:
    def __init__(self, root: Path, token: str) -> None:
        self.root = root
        self.token = token
        self.fail_next_commit: str | None = None
        self.lose_next_commit_answer = False
        self.commits = 0
        self.seen_tokens: set[str] = set()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HubWriteDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def repo(self, owner: str, name: str) -> Path:
        return self.root / "datasets" / owner / name

    # -- handlers -----------------------------------------------------------------
    def create_repo(self, body: dict[str, Any]) -> tuple[int, Any]:
        owner, name = body.get("organization"), body["name"]
        path = self.repo(owner, name)
        url = {"url": f"{self.url}/datasets/{owner}/{name}"}
        if path.exists():
            return 409, {"error": "You already created this dataset repo", **url}
        path.mkdir(parents=True)
        _git(path, "init", "-q", "-b", "main")
        (path / ".gitattributes").write_text("*.parquet binary\n")
        _git(path, "add", "-A")
        _git(path, "commit", "-q", "-m", "initial commit")  # the real Hub starts repos this way
        return 200, url

    def refs(self, path: Path) -> tuple[int, Any]:
        def listed(prefix: str) -> list[dict[str, str]]:
            out = _git(path, "for-each-ref", "--format=%(refname) %(objectname) %(*objectname)", prefix)
            rows = []
            for line in filter(None, out.splitlines()):
                ref, obj, *peeled = line.split(" ")
                target = (peeled[0] if peeled and peeled[0] else obj) or obj
                rows.append({"name": ref.split("/", 2)[2], "ref": ref, "targetCommit": target})
            return rows

        return 200, {"branches": listed("refs/heads/"), "tags": listed("refs/tags/"), "converts": []}

    def blob(self, path: Path, rev: str, file: str) -> tuple[str, int] | None:
        out = _git(path, "ls-tree", "-l", rev, "--", file)
        if not out:
            return None
        meta, _ = out.split("\t", 1)
        _, _, oid, size = meta.split()
        return oid, int(size)

    def preupload(self, path: Path, rev: str, body: dict[str, Any]) -> tuple[int, Any]:
        files = []
        for f in body["files"]:
            existing = self.blob(path, rev, f["path"])
            files.append(
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                 "oid": existing[0] if existing else None}
            )  # fmt: skip
        return 200, {"files": files}

    def tree(self, path: Path, rev: str) -> tuple[int, Any]:
        out = _git(path, "ls-tree", "-r", "-l", rev)
        rows = []
        for line in filter(None, out.splitlines()):
            meta, file = line.split("\t", 1)
            _, _, oid, size = meta.split()
            rows.append({"type": "file", "oid": oid, "size": int(size), "path": file})
        return 200, rows

    def commit(self, path: Path, rev: str, payload: bytes) -> tuple[int, Any]:
        if self.fail_next_commit:
            reason, self.fail_next_commit = self.fail_next_commit, None
            return 400, {"error": reason}
        summary = "commit"
        for line in filter(None, payload.splitlines()):
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value["summary"]
            elif key == "file":
                target = path / value["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(base64.b64decode(value["content"]))
            elif key == "deletedFile":
                (path / value["path"]).unlink()
            elif key == "lfsFile":
                return 400, {"error": "this test double accepts regular uploads only"}
        _git(path, "add", "-A")
        _git(path, "commit", "-q", "--allow-empty", "-m", summary)
        self.commits += 1
        oid = _git(path, "rev-parse", "HEAD")
        if self.lose_next_commit_answer:
            self.lose_next_commit_answer = False
            return 503, {"error": "the answer was lost"}
        return 200, {"commitUrl": f"{self.url}/datasets/{path.parent.name}/{path.name}/commit/{oid}",
                     "commitOid": oid}  # fmt: skip

    def tag(self, path: Path, rev: str, body: dict[str, Any]) -> tuple[int, Any]:
        if _git(path, "tag", "-l", body["tag"]):
            return 409, {"error": f"tag {body['tag']} already exists"}
        _git(path, "tag", body["tag"], rev)
        return 200, {}

    def paths_info(self, path: Path, rev: str, form: dict[str, list[str]]) -> tuple[int, Any]:
        rows = []
        for file in form.get("paths", []):
            found = self.blob(path, rev, file)
            if found:
                rows.append({"type": "file", "path": file, "oid": found[0], "size": found[1]})
        return 200, rows

    def route(self, method: str, url: str, headers: Any, body: bytes) -> tuple[int, Any]:
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer "):
            self.seen_tokens.add(auth[7:])
        if method == "POST" and auth != f"Bearer {self.token}":
            return 401, {"error": "Invalid credentials in Authorization header"}
        parsed = urlparse(url)
        p = parsed.path
        if p == "/api/repos/create":
            return self.create_repo(json.loads(body))
        if p == "/api/validate-yaml":
            return 200, {"errors": [], "warnings": []}
        m = re.match(_REPO + r"(?P<rest>/.*)?$", p)
        if not m:
            return 404, {"error": f"no route {method} {p}"}
        path = self.repo(m["owner"], m["name"])
        if not path.exists():
            return 404, {"error": "Repository not found"}
        rest = unquote(m["rest"] or "")
        if method == "GET" and rest == "/refs":
            return self.refs(path)
        if method == "GET" and rest.startswith("/tree/"):
            return self.tree(path, rest.split("/")[2])
        if method == "GET" and rest.startswith("/revision/"):
            rev = rest.split("/", 2)[2]
            return 200, {"id": f"{m['owner']}/{m['name']}", "sha": _git(path, "rev-parse", rev)}
        kind, _, rev = rest.lstrip("/").partition("/")
        if method == "POST" and kind == "preupload":
            return self.preupload(path, rev, json.loads(body))
        if method == "POST" and kind == "commit":
            return self.commit(path, rev, body)
        if method == "POST" and kind == "tag":
            return self.tag(path, rev, json.loads(body))
        if method == "POST" and kind == "paths-info":
            return self.paths_info(path, rev, parse_qs(body.decode()))
        return 404, {"error": f"no route {method} {p}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with double._lock:
                    status, payload = double.route(method, self.path, self.headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if status >= 400:
                    self.send_header("x-error-message", str(payload.get("error", ""))[:200])
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, *args: object) -> None:
                pass

        return Handler
