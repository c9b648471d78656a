"""A Hugging Face Hub stand-in on 127.0.0.1 for the download and upload code paths, spoken to by the
real huggingface_hub client: file resolution (HEAD/GET .../resolve/REV/FILE with the headers the
client reads), repo creation, README metadata validation, pre-upload and commit (regular, base64
files). Plus :func:`populate_cache`, the cache layout huggingface_hub reads offline."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse


@dataclass
class Repo:
    refs: dict[str, str] = field(default_factory=dict)  # branch -> commit
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit -> path -> content

    def commit(self, files: dict[str, bytes], branch: str = "main") -> str:
        base = dict(self.commits.get(self.refs.get(branch, ""), {}))
        base.update(files)
        sha = hashlib.sha1(json.dumps(sorted((k, hashlib.sha256(v).hexdigest()) for k, v in base.items())).encode()
                           + str(len(self.commits)).encode()).hexdigest()
        self.commits[sha] = base
        self.refs[branch] = sha
        return sha

    def resolve(self, revision: str) -> str | None:
        return self.refs.get(revision) or (revision if revision in self.commits else None)


class FakeHub:
    def __init__(self, token: str = "test-token") -> None:
        self.repos: dict[str, Repo] = {}
        self.token = token
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                      head: bool = False) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _json(self, status: int, data) -> None:
                self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json"})

            def _error(self, status: int, code: str, head: bool = False) -> None:
                self._send(status, json.dumps({"error": code}).encode(),
                           {"X-Error-Code": code, "X-Error-Message": code, "Content-Type": "application/json"}, head)

            def _resolve(self, head: bool) -> None:
                path = unquote(urlparse(self.path).path)
                match = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
                if not match:
                    return self._error(404, "EntryNotFound", head)
                repo_id, revision, filename = match.groups()
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._error(404, "RepoNotFound", head)
                commit = repo.resolve(revision)
                if commit is None:
                    return self._error(404, "RevisionNotFound", head)
                files = repo.commits[commit]
                if filename not in files:
                    return self._error(404, "EntryNotFound", head)
                body = files[filename]
                etag = hashlib.sha256(body).hexdigest()
                self._send(200, body, {"X-Repo-Commit": commit, "ETag": f'"{etag}"',
                                       "Content-Type": "application/octet-stream"}, head)

            def do_HEAD(self) -> None:  # noqa: N802
                hub.requests.append(("HEAD", self.path))
                self._resolve(head=True)

            def do_GET(self) -> None:  # noqa: N802
                hub.requests.append(("GET", self.path))
                self._resolve(head=False)

            def do_POST(self) -> None:  # noqa: N802
                hub.requests.append(("POST", self.path))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("authorization") != f"Bearer {hub.token}":
                    return self._error(401, "Unauthorized")
                path = urlparse(self.path).path
                base = f"http://{self.headers.get('Host')}"
                if path == "/api/repos/create":
                    data = json.loads(body)
                    repo_id = f"{data['organization']}/{data['name']}" if data.get("organization") else data["name"]
                    if repo_id in hub.repos:
                        return self._json(409, {"error": "You already created this model repo"})
                    hub.repos[repo_id] = Repo()
                    return self._json(200, {"url": f"{base}/{repo_id}"})
                if path == "/api/validate-yaml":
                    return self._json(200, {"errors": [], "warnings": []})
                match = re.match(r"^/api/models/([^/]+/[^/]+)/(preupload|commit)/(.+)$", path)
                if not match:
                    return self._error(404, "EntryNotFound")
                repo_id, action, revision = match.groups()
                repo = hub.repos.get(repo_id)
                if repo is None:
                    return self._error(404, "RepoNotFound")
                if action == "preupload":
                    files = json.loads(body)["files"]
                    return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                       "shouldIgnore": False} for f in files]})
                added = {}
                for line in body.decode().splitlines():
                    item = json.loads(line)
                    if item["key"] == "file":
                        added[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                sha = repo.commit(added, unquote(revision))
                return self._json(200, {"commitUrl": f"{base}/{repo_id}/commit/{sha}", "commitOid": sha,
                                        "pullRequestUrl": None})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, repo_id: str, files: dict[str, bytes | Path]) -> str:
        """Publish ``files`` (contents or paths) in ``repo_id``; the new commit."""
        data = {k: v.read_bytes() if isinstance(v, Path) else v for k, v in files.items()}
        return self.repos.setdefault(repo_id, Repo()).commit(data)

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def populate_cache(cache: Path, repo_id: str, files: dict[str, bytes | Path], commit: str = "a" * 40,
                   ref: str = "main") -> Path:
    """Write ``files`` into a huggingface_hub cache directory (``HF_HUB_CACHE``) as a download would
    have: blobs by hash, a snapshot of symlinks for ``commit``, ``refs/REF``. The snapshot folder."""
    root = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = root / "snapshots" / commit
    for name, content in files.items():
        data = content.read_bytes() if isinstance(content, Path) else content
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("../" * (len(Path(name).parts) + 1)) / "blobs" / blob.name)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / ref).write_text(commit)
    return snapshot
