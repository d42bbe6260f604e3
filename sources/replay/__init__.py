"""``DATA_SOURCE=replay``: every provider answered from recorded responses of its real format.

An httpx transport, so replayed bodies travel the very path live ones do (fetcher, normalize, pool, service).
Each provider's folder has a ``routes.json`` (or several ``routes*.json``) mapping a request (method, URL without
query, and for JSON-RPC the ``method`` in the body, and its ``params`` where an entry names them) to one or more
recorded files in that folder, each with the status and content type it
was recorded with, and its capture time (``recorded_at``, ISO-8601), which the answer carries in the
:data:`RECORDED_AT` header so that every update made from it can say when its data was captured.
``SOURCES.md`` says where every file came from.
Several recordings of one request are served in turn, so a replayed stream moves. A request with no recording
gets a 404, which the provider then reports like any other failure.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

HERE = Path(__file__).parent
#: The response header a replayed answer carries its capture time in (ISO-8601); the fetcher reads it.
RECORDED_AT = "x-replay-recorded-at"


@dataclass(frozen=True)
class Recording:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


Key = tuple[str, str, str | None, str | None]


def _key(method: str, url: str, rpc_method: str | None = None, rpc_params: Any = None) -> Key:
    """Method, URL without query, and for JSON-RPC the body's ``method`` and (where a recording names them) its
    ``params``, compared as canonical JSON."""
    params = orjson.dumps(rpc_params).decode() if rpc_params is not None else None
    return method.upper(), url.split("?", 1)[0].rstrip("/"), rpc_method, params


class ReplayTransport(httpx.AsyncBaseTransport):
    """Every ``routes*.json`` of every provider folder: several tables may share a folder (and a URL), each entry
    matching a request by method, URL and, for JSON-RPC, ``rpc_method`` and optionally ``rpc_params``."""

    def __init__(self, root: Path = HERE) -> None:
        routes: dict[Key, list[Recording]] = {}
        for table in sorted(root.glob("*/routes*.json")):
            for entry in orjson.loads(table.read_bytes()):
                recording = Recording(
                    status=int(entry.get("status", 200)),
                    content_type=entry.get("content_type", "application/json"),
                    body=(table.parent / entry["file"]).read_bytes(),
                    headers=tuple((k, v) for k, v in entry.get("headers", {}).items())
                    + (((RECORDED_AT, entry["recorded_at"]),) if entry.get("recorded_at") else ()),
                )
                key = _key(entry.get("method", "GET"), entry["url"], entry.get("rpc_method"), entry.get("rpc_params"))
                routes.setdefault(key, []).append(recording)
        self._cycles: dict[Key, Iterator[Recording]] = {
            key: itertools.cycle(recordings) for key, recordings in routes.items()}

    @staticmethod
    def _rpc_call(request: httpx.Request) -> tuple[str | None, Any]:
        """The JSON-RPC ``method`` and ``params`` of a request; (None, None) for anything else."""
        if request.method != "POST" or not request.content:
            return None, None
        try:
            body: Any = orjson.loads(request.content)
        except orjson.JSONDecodeError:
            return None, None
        if isinstance(body, dict):
            method = body.get("method")
            return (method, body.get("params")) if isinstance(method, str) else (None, None)
        return None, None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        rpc_method, rpc_params = self._rpc_call(request)
        exact = _key(request.method, str(request.url), rpc_method, rpc_params)
        cycle = (self._cycles.get(exact) or self._cycles.get((*exact[:3], None))
                 or self._cycles.get((*exact[:2], None, None)))
        if cycle is None:
            body = orjson.dumps({"error": f"no recording for {request.method} {exact[1]}"})
            return httpx.Response(404, content=body, headers={"content-type": "application/json"}, request=request)
        recording = next(cycle)
        headers = [("content-type", recording.content_type), *recording.headers]
        return httpx.Response(recording.status, content=recording.body, headers=headers, request=request)
