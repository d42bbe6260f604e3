"""A minimal fake Hugging Face Hub on 127.0.0.1, for testing backups with the real ``huggingface_hub`` client.

It answers just what ``HfApi.create_repo``, ``HfApi.upload_file`` (of a small file) and ``hf_hub_download`` ask
of huggingface_hub 2.4, as the Hub answers them:

- ``POST /api/repos/create`` -> ``{"url": ...}``, or 409 when the repo exists (``exist_ok`` relies on it);
- ``POST /api/{type}s/{repo}/preupload/{rev}`` -> every file ``"uploadMode": "regular"`` (so its bytes travel
  base64-encoded inside the commit: no LFS, no Xet), with the ``oid`` (git blob sha1) of the current version,
  which the client compares to skip unchanged files;
- ``POST /api/{type}s/{repo}/commit/{rev}`` (ndjson: a header line, then one ``file`` line per file) ->
  ``{"commitUrl", "commitOid"}``;
- ``GET /api/{type}s/{repo}[/revision/{rev}]`` (repo info, asked when a commit turns out empty);
- ``HEAD``/``GET /{type}s/{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit`` and ``ETag`` (the client refuses a
  file without them) and ``Content-Length``.

Errors carry the Hub's ``X-Error-Code`` header (``RepoNotFound``, ``EntryNotFound``, ``RevisionNotFound``), which
the client turns into its typed exceptions. Every request needs ``Authorization: Bearer <token>``.
Files live in memory, one dict per commit, so an old commit stays downloadable.

:func:`loopback_only_session` points huggingface_hub's shared HTTP client at a client that refuses any host but
127.0.0.1: a test can then prove it never reaches the network. It also bypasses ``HF_HUB_OFFLINE`` (set by
tests/conftest.py), which huggingface_hub enforces in the default client's request hook for every endpoint,
explicit ones included.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx2
import huggingface_hub
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a file, which the Hub uses as the ETag and ``oid`` of a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class FakeRepo:
    repo_type: str
    private: bool
    #: commit sha -> {path: content}, oldest first; the last one is ``main``.
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)

    @property
    def head(self) -> str:
        return next(reversed(self.commits))

    def files(self, revision: str) -> dict[str, bytes] | None:
        if revision == "main":
            return self.commits[self.head]
        return self.commits.get(revision)


@dataclass
class SeenRequest:
    method: str
    path: str
    authorization: str | None


class FakeHfHub:
    """The app and its state. ``repos`` is keyed by ``(repo_type, repo_id)``."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.base_url = ""  # set once the server listens
        self.repos: dict[tuple[str, str], FakeRepo] = {}
        self.requests: list[SeenRequest] = []
        self.app = Starlette(routes=[
            Route("/api/repos/create", self.create_repo, methods=["POST"]),
            Route("/api/{type}s/{ns}/{name}/preupload/{rev}", self.preupload, methods=["POST"]),
            Route("/api/{type}s/{ns}/{name}/commit/{rev}", self.commit, methods=["POST"]),
            Route("/api/{type}s/{ns}/{name}", self.repo_info, methods=["GET"]),
            Route("/api/{type}s/{ns}/{name}/revision/{rev}", self.repo_info, methods=["GET"]),
            Route("/{type}s/{ns}/{name}/resolve/{rev}/{path:path}", self.resolve, methods=["GET", "HEAD"]),
        ])

    # -- helpers --------------------------------------------------------------------------------------
    def file(self, repo_id: str, path: str, repo_type: str = "dataset") -> bytes:
        """The content of ``path`` on ``main`` (for assertions)."""
        repo = self.repos[(repo_type, repo_id)]
        return repo.commits[repo.head][path]

    def _authorised(self, request: Request) -> bool:
        self.requests.append(SeenRequest(request.method, request.url.path, request.headers.get("authorization")))
        return request.headers.get("authorization") == f"Bearer {self.token}"

    @staticmethod
    def _error(status: int, code: str | None, message: str, **headers: str) -> Response:
        if code is not None:
            headers["X-Error-Code"] = code
        headers["X-Error-Message"] = message
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def _unauthorised(self) -> Response:
        return self._error(401, None, "Invalid credentials in Authorization header")

    def _repo(self, request: Request) -> tuple[str, FakeRepo | None]:
        params = request.path_params
        repo_id = f"{params['ns']}/{params['name']}"
        return repo_id, self.repos.get((params["type"], repo_id))

    def _repo_not_found(self) -> Response:
        return self._error(404, "RepoNotFound", "Repository not found")

    # -- endpoints ------------------------------------------------------------------------------------
    async def create_repo(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._unauthorised()
        body = await request.json()
        repo_type = body.get("type") or "model"
        repo_id = f"{body['organization']}/{body['name']}"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.base_url}/{prefix}{repo_id}"
        if (repo_type, repo_id) in self.repos:
            return JSONResponse({"error": "You already created this repo", "url": url}, status_code=409)
        repo = FakeRepo(repo_type, private=body.get("visibility") == "private")
        # The Hub starts every repo with a commit (its .gitattributes).
        repo.commits[hashlib.sha1(repo_id.encode()).hexdigest()] = {}
        self.repos[(repo_type, repo_id)] = repo
        return JSONResponse({"url": url, "name": repo_id})

    async def preupload(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._unauthorised()
        _, repo = self._repo(request)
        if repo is None:
            return self._repo_not_found()
        current = repo.files(request.path_params["rev"]) or {}
        body = await request.json()
        return JSONResponse({"files": [
            {"path": item["path"], "uploadMode": "regular", "shouldIgnore": False,
             "oid": git_blob_sha1(current[item["path"]]) if item["path"] in current else None}
            for item in body["files"]
        ]})

    async def commit(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._unauthorised()
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._repo_not_found()
        if request.path_params["rev"] != "main":
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        files = dict(repo.commits[repo.head])
        for line in (await request.body()).splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "deletedFile":
                files.pop(value["path"], None)
            elif item["key"] != "header":
                return self._error(400, None, f"the fake Hub does not take {item['key']!r} operations")
        sha = hashlib.sha1(f"{repo.head}{time.time_ns()}".encode()).hexdigest()
        repo.commits[sha] = files
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        return JSONResponse({"success": True, "commitOid": sha,
                             "commitUrl": f"{self.base_url}/{prefix}{repo_id}/commit/{sha}"})

    async def repo_info(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._unauthorised()
        repo_id, repo = self._repo(request)
        if repo is None:
            return self._repo_not_found()
        revision = request.path_params.get("rev", "main")
        files = repo.files(revision)
        if files is None:
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        return JSONResponse({"id": repo_id, "sha": repo.head if revision == "main" else revision,
                             "private": repo.private, "siblings": [{"rfilename": path} for path in files]})

    async def resolve(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._repo_not_found()  # the Hub hides private repos from the unauthenticated
        _, repo = self._repo(request)
        if repo is None:
            return self._repo_not_found()
        revision = request.path_params["rev"]
        files = repo.files(revision)
        if files is None:
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        commit = repo.head if revision == "main" else revision
        content = files.get(request.path_params["path"])
        if content is None:
            return self._error(404, "EntryNotFound", "Entry not found", **{"X-Repo-Commit": commit})
        # Starlette answers HEAD on a GET route with the same headers and no body.
        return Response(content, media_type="application/octet-stream",
                        headers={"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(content)}"'})


@contextmanager
def running(hub: FakeHfHub) -> Iterator[str]:
    """Serve ``hub`` with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    hub.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(hub.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake Hub did not start")
        time.sleep(0.01)
    try:
        yield hub.base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _refuse_other_hosts(request: httpx2.Request) -> None:
    if request.url.host != "127.0.0.1":
        raise httpx2.ConnectError(f"test refused a request to {request.url.host}", request=request)


@contextmanager
def loopback_only_session() -> Iterator[None]:
    """huggingface_hub's shared client, for the duration: 127.0.0.1 only, 10 s timeouts."""
    huggingface_hub.set_client_factory(lambda: httpx2.Client(
        event_hooks={"request": [_refuse_other_hosts]}, follow_redirects=True, timeout=10))
    try:
        yield
    finally:
        huggingface_hub.set_client_factory(huggingface_hub.utils._http.default_client_factory)
