"""A local stand-in for the Hugging Face Hub, on 127.0.0.1, for the fetch path's tests.

It answers the routes huggingface_hub 0.36 uses for a dataset repo (and a model repo: the same routes
without the `datasets/` part, from `Hub.models`), so the real client code runs:
  GET  /api/datasets/{repo}/revision/{rev}     repo info: the commit sha and the files, each with its size,
                                               git blob id and, for an LFS file, `lfs.sha256` (HfApi.repo_info)
  HEAD /datasets/{repo}/resolve/{rev}/{path}   X-Repo-Commit, ETag, Content-Length; an LFS file also
                                               X-Linked-Etag (its sha256) and X-Linked-Size (get_hf_file_metadata)
  GET  /datasets/{repo}/resolve/{rev}/{path}   the bytes, honouring `Range: bytes=N-` (http_get's resume)
As on the Hub, a file is stored with LFS unless it is a .md or .gitattributes file (or in `Repo.in_git`);
an LFS file's ETag is its sha256, a git file's is its blob id (sha1 of "blob <size>\\0" + bytes).

And the routes of an upload (HfApi.create_repo, then create_commit; huggingface_hub 0.36 hf_api.py,
_commit_api.py, lfs.py), for a model repo, so `oda-sft push` runs the real client:
  POST /api/repos/create                       a new repo ({"name", "organization", "private"}); 409 if it exists
  POST /api/validate-yaml                      the README's front matter: 400 when it is not a YAML mapping
  POST /api/models/{repo}/preupload/{rev}      each file's uploadMode: lfs or regular, by the rule above
  POST /{repo}.git/info/lfs/objects/batch      the LFS batch API: "basic" transfer (never xet), an upload
                                               action (PUT /lfs-objects/{oid}) for each object not stored yet
  PUT  /lfs-objects/{oid}                      the bytes of one LFS object: 400 unless their sha256 is oid
  POST /api/models/{repo}/commit/{rev}         the NDJSON commit: header, then file (base64) and lfsFile lines
Every request's Authorization header is kept in `Hub.authorizations`.
Errors carry the X-Error-Code header huggingface_hub maps to its exceptions. A file listed in `cut_once`
is cut off halfway through its first GET (the connection is closed), to test a resumed download; a file in
`corrupt` is served with one byte changed (same size) while its hashes are advertised for the true bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml


@dataclass
class Repo:
    sha: str
    files: dict[str, bytes]
    refs: dict[str, str] = field(default_factory=dict)  # branch/tag -> sha (main -> sha by default)
    in_git: set[str] = field(default_factory=set)  # data files stored in git itself, not with LFS

    def lfs(self, path: str) -> bool:
        return path not in self.in_git and not path.endswith((".md", ".gitattributes"))

    @staticmethod
    def blob_id(data: bytes) -> str:
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def commit(self, revision: str) -> str | None:
        if revision == self.sha:
            return self.sha
        return {"main": self.sha, **self.refs}.get(revision)


@dataclass
class Hub:
    repos: dict[str, Repo] = field(default_factory=dict)
    cut_once: set[str] = field(default_factory=set)  # repo paths to cut off on their first GET
    corrupt: set[str] = field(default_factory=set)  # repo paths served with one byte changed
    models: dict[str, Repo] = field(default_factory=dict)
    gated: set[str] = field(default_factory=set)  # repo ids whose files need accepted terms (403 GatedRepo)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Range header)
    url: str = ""
    lfs_objects: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes, uploaded before a commit
    private: set[str] = field(default_factory=set)  # repos created private
    commits: list[dict[str, Any]] = field(default_factory=list)  # each commit's header line, as posted
    authorizations: list[str] = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)  # repos the token may not write to (403 on create and commit)


def _handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self._send(status, body, {"X-Error-Code": code, "X-Error-Message": message})

        def _route(self) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append((self.command, path, self.headers.get("Range", "")))
            hub.authorizations.append(self.headers.get("Authorization", ""))
            if self.command in ("POST", "PUT"):
                return _upload_route(hub, self, path, self._body())
            repos = hub.models if not path.startswith(("/api/datasets/", "/datasets/")) else hub.repos
            if path.startswith(("/api/datasets/", "/api/models/")) and "/revision/" in path:
                repo_id, revision = path.split("/", 3)[3].split("/revision/", 1)
                self._info(repos, repo_id, revision)
            elif "/resolve/" in path:
                repo_id, rest = path.removeprefix("/datasets").lstrip("/").split("/resolve/", 1)
                revision, file = rest.split("/", 1)
                self._file(repos, repo_id, revision, file)
            else:
                self._error(404, "EntryNotFound", f"no route {path}")

        def _at(self, repos: dict[str, Repo], repo_id: str, revision: str) -> tuple[Repo, str] | None:
            """The repo and the commit a revision names; else the Hub's 404 is sent and None returned."""
            repo = repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
                return None
            sha = repo.commit(revision)
            if sha is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                return None
            return repo, sha

        def _info(self, repos: dict[str, Repo], repo_id: str, revision: str) -> None:
            if (found := self._at(repos, repo_id, revision)) is None:
                return
            repo, sha = found
            siblings = [_sibling(p, b, repo.lfs(p)) for p, b in sorted(repo.files.items())]
            body = json.dumps({"id": repo_id, "sha": sha, "siblings": siblings, "private": False}).encode()
            self._send(200, body, {"Content-Type": "application/json"})

        def _file(self, repos: dict[str, Repo], repo_id: str, revision: str, file: str) -> None:
            if (found := self._at(repos, repo_id, revision)) is None:
                return
            repo, sha = found
            if file not in repo.files:
                return self._error(404, "EntryNotFound", f"{file} does not exist at {revision}")
            if repo_id in hub.gated:
                return self._error(403, "GatedRepo", f"Access to {repo_id} is restricted")
            data = repo.files[file]
            headers = {"X-Repo-Commit": sha}
            if repo.lfs(file):
                digest = hashlib.sha256(data).hexdigest()
                headers.update({"ETag": f'"{digest}"', "X-Linked-Etag": f'"{digest}"', "X-Linked-Size": str(len(data))})
            else:
                headers["ETag"] = f'"{Repo.blob_id(data)}"'
            if file in hub.corrupt:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            start = 0
            ranged = self.headers.get("Range", "")
            if self.command == "GET" and ranged.startswith("bytes="):
                start = int(ranged[len("bytes=") :].split("-", 1)[0])
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            if self.command == "GET" and file in hub.cut_once:
                hub.cut_once.discard(file)
                self.send_response(200)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # the connection drops mid-body
                return
            self._send(206 if start else 200, data[start:], headers)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(parts)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def json_reply(self, status: int, data: Any) -> None:
            self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json"})

        do_GET = _route
        do_HEAD = _route
        do_POST = _route
        do_PUT = _route

    return Handler


def _upload_route(hub: Hub, handler: Any, path: str, body: bytes) -> None:
    """The routes of an upload (see the module's docstring); `handler` answers."""
    if path == "/api/repos/create":
        asked = json.loads(body)
        repo_id = f"{asked.get('organization') or 'stub-user'}/{asked['name']}"
        if repo_id in hub.forbidden:
            return handler._error(403, "Forbidden", "You don't have the rights to create a model under this namespace")
        if repo_id in hub.models:  # the Hub's 409 names the repo's URL too (create_repo(exist_ok=True) reads it)
            message = "You already created this model repo"
            body = json.dumps({"error": message, "url": f"{hub.url}/{repo_id}"}).encode()
            return handler._send(409, body, {"X-Error-Code": "RepoExists", "X-Error-Message": message})
        hub.models[repo_id] = Repo(hashlib.sha1(repo_id.encode()).hexdigest(), {".gitattributes": b""})
        if asked.get("private"):
            hub.private.add(repo_id)
        return handler.json_reply(200, {"url": f"{hub.url}/{repo_id}", "name": repo_id})
    if path == "/api/validate-yaml":
        content = json.loads(body)["content"]
        front = content.split("---\n")[1] if content.startswith("---\n") else ""
        if not isinstance(yaml.safe_load(front), dict):
            return handler.json_reply(400, {"errors": [{"message": "no metadata"}], "warnings": []})
        return handler.json_reply(200, {"errors": [], "warnings": []})
    if path.startswith("/lfs-objects/"):
        oid = path.rsplit("/", 1)[1]
        if hashlib.sha256(body).hexdigest() != oid:
            return handler._error(400, "BadRequest", "the uploaded bytes do not have this sha256")
        hub.lfs_objects[oid] = body
        return handler._send(200)
    if path.endswith(".git/info/lfs/objects/batch"):
        asked = json.loads(body)
        objects = [
            {**o, "authenticated": True}
            if o["oid"] in hub.lfs_objects
            else {**o, "authenticated": True, "actions": {"upload": {"href": f"{hub.url}/lfs-objects/{o['oid']}"}}}
            for o in asked["objects"]
        ]
        return handler.json_reply(200, {"transfer": "basic", "objects": objects})
    if not path.startswith("/api/models/"):
        return handler._error(404, "EntryNotFound", f"no route {path}")
    repo_id, action = path.removeprefix("/api/models/").rsplit("/", 2)[0], path.rsplit("/", 2)[1]
    repo = hub.models.get(repo_id)
    if repo is None:
        return handler._error(404, "RepoNotFound", f"Repository {repo_id} not found")
    if action == "preupload":
        files = json.loads(body)["files"]
        modes = [{"path": f["path"], "uploadMode": "lfs" if repo.lfs(f["path"]) else "regular",
                  "shouldIgnore": False} for f in files]  # fmt: skip
        return handler.json_reply(200, {"files": modes})
    if action != "commit":
        return handler._error(404, "EntryNotFound", f"no route {path}")
    if repo_id in hub.forbidden:
        return handler._error(403, "Forbidden", "You don't have the rights to push to this repo")
    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
    for line in lines[1:]:
        value = line["value"]
        if line["key"] == "file":
            repo.files[value["path"]] = base64.b64decode(value["content"])
        elif line["key"] == "lfsFile":
            if value["oid"] not in hub.lfs_objects:
                return handler._error(400, "BadRequest", f"LFS object {value['oid']} was never uploaded")
            repo.files[value["path"]] = hub.lfs_objects[value["oid"]]
    hub.commits.append(lines[0]["value"])
    repo.sha = hashlib.sha1(repo.sha.encode() + body).hexdigest()
    url = f"{hub.url}/{repo_id}/commit/{repo.sha}"
    return handler.json_reply(200, {"commitUrl": url, "commitOid": repo.sha, "pullRequestUrl": None})


def _sibling(path: str, data: bytes, lfs: bool) -> dict[str, Any]:
    sibling: dict[str, Any] = {"rfilename": path, "size": len(data)}
    if lfs:  # the blob id of an LFS file is its pointer's, not its bytes'
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(data).hexdigest()}\n"
        pointer += f"size {len(data)}\n"
        sibling["blobId"] = Repo.blob_id(pointer.encode())
        sibling["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": len(pointer)}
    else:
        sibling["blobId"] = Repo.blob_id(data)
    return sibling


@contextmanager
def serve(hub: Hub) -> Iterator[Hub]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()  # waits up to one poll_interval: 0.5 s by default, per test
        server.server_close()


@contextmanager
def online(hub: Hub, monkeypatch: Any, cache: Any) -> Iterator[Hub]:
    """`hub` served on 127.0.0.1 as the Hugging Face Hub that oda-sft talks to: online, with a fresh cache
    (`cache`), whatever HF_HUB_OFFLINE CI set before huggingface_hub was imported."""
    import huggingface_hub.constants
    from huggingface_hub.utils import reset_sessions

    with serve(hub) as stub:
        monkeypatch.setenv("HF_ENDPOINT", stub.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(cache))
        monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        reset_sessions()
        try:
            yield stub
        finally:
            reset_sessions()
