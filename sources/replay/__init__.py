"""``DATA_SOURCE=replay``: every provider answered from recorded responses of its real format.

An httpx transport, so replayed bodies travel the very path live ones do (fetcher, normalize, pool, service).
Each provider's folder has a ``routes.json`` mapping a request (method, URL without query, and for JSON-RPC the
``method`` in the body) to one or more recorded files in that folder, each with the status and content type it
was recorded with. ``SOURCES.md`` says where every file came from.
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


@dataclass(frozen=True)
class Recording:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def _key(method: str, url: str, rpc_method: str | None = None) -> tuple[str, str, str | None]:
    return method.upper(), url.split("?", 1)[0].rstrip("/"), rpc_method


class ReplayTransport(httpx.AsyncBaseTransport):
    def __init__(self, root: Path = HERE) -> None:
        routes: dict[tuple[str, str, str | None], list[Recording]] = {}
        for table in sorted(root.glob("*/routes.json")):
            for entry in orjson.loads(table.read_bytes()):
                recording = Recording(
                    status=int(entry.get("status", 200)),
                    content_type=entry.get("content_type", "application/json"),
                    body=(table.parent / entry["file"]).read_bytes(),
                    headers=tuple((k, v) for k, v in entry.get("headers", {}).items()),
                )
                key = _key(entry.get("method", "GET"), entry["url"], entry.get("rpc_method"))
                routes.setdefault(key, []).append(recording)
        self._cycles: dict[tuple[str, str, str | None], Iterator[Recording]] = {
            key: itertools.cycle(recordings) for key, recordings in routes.items()}
        self.served = 0

    @staticmethod
    def _rpc_method(request: httpx.Request) -> str | None:
        if request.method != "POST" or not request.content:
            return None
        try:
            body: Any = orjson.loads(request.content)
        except orjson.JSONDecodeError:
            return None
        if isinstance(body, dict):
            method = body.get("method")
            return method if isinstance(method, str) else None
        return None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        key = _key(request.method, url, self._rpc_method(request))
        cycle = self._cycles.get(key) or self._cycles.get((*key[:2], None))
        if cycle is None:
            body = orjson.dumps({"error": f"no recording for {request.method} {key[1]}"})
            return httpx.Response(404, content=body, headers={"content-type": "application/json"}, request=request)
        recording = next(cycle)
        self.served += 1
        headers = [("content-type", recording.content_type), *recording.headers]
        return httpx.Response(recording.status, content=recording.body, headers=headers, request=request)
