"""A local stand-in for the Hugging Face Hub, on 127.0.0.1, for the fetch path's tests.

It answers the routes huggingface_hub 0.36 uses for a dataset repo, so the real client code runs:
  GET  /api/datasets/{repo}/revision/{rev}     repo info: the commit sha and the files (HfApi.dataset_info)
  HEAD /datasets/{repo}/resolve/{rev}/{path}   X-Repo-Commit, ETag, Content-Length (get_hf_file_metadata)
  GET  /datasets/{repo}/resolve/{rev}/{path}   the bytes, honouring `Range: bytes=N-` (http_get's resume)
Errors carry the X-Error-Code header huggingface_hub maps to its exceptions. A file listed in `cut_once`
is cut off halfway through its first GET (the connection is closed), to test a resumed download.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass
class Repo:
    sha: str
    files: dict[str, bytes]
    refs: dict[str, str] = field(default_factory=dict)  # branch/tag -> sha (main -> sha by default)

    def commit(self, revision: str) -> str | None:
        if revision == self.sha:
            return self.sha
        return {"main": self.sha, **self.refs}.get(revision)


@dataclass
class Hub:
    repos: dict[str, Repo] = field(default_factory=dict)
    cut_once: set[str] = field(default_factory=set)  # repo paths to cut off on their first GET
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Range header)
    url: str = ""


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
            if path.startswith("/api/datasets/") and "/revision/" in path:
                repo_id, revision = path[len("/api/datasets/") :].split("/revision/", 1)
                self._info(repo_id, revision)
            elif path.startswith("/datasets/") and "/resolve/" in path:
                repo_id, rest = path[len("/datasets/") :].split("/resolve/", 1)
                revision, file = rest.split("/", 1)
                self._file(repo_id, revision, file)
            else:
                self._error(404, "EntryNotFound", f"no route {path}")

        def _info(self, repo_id: str, revision: str) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            sha = repo.commit(revision)
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            siblings = [{"rfilename": p, "size": len(b)} for p, b in sorted(repo.files.items())]
            body = json.dumps({"id": repo_id, "sha": sha, "siblings": siblings, "private": False}).encode()
            self._send(200, body, {"Content-Type": "application/json"})

        def _file(self, repo_id: str, revision: str, file: str) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            sha = repo.commit(revision)
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            if file not in repo.files:
                return self._error(404, "EntryNotFound", f"{file} does not exist at {revision}")
            data = repo.files[file]
            headers = {"X-Repo-Commit": sha, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}
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

        do_GET = _route
        do_HEAD = _route

    return Handler


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
