"""Recorded provider bodies, and ``httpx.MockTransport`` helpers that answer with them: nothing reaches the
internet."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from tests.support.paths import FIXTURES, REPLAY


def recorded(name: str) -> bytes:
    """A recorded provider body: tests/fixtures first, then the replay recordings."""
    for base in (FIXTURES, REPLAY):
        path = base / name
        if path.exists():
            return path.read_bytes()
    raise FileNotFoundError(name)


def recorded_json(name: str) -> Any:
    """A recorded provider body, decoded: what a normaliser is handed."""
    return orjson.loads(recorded(name))


Handler = Callable[[httpx.Request], httpx.Response]
#: URL prefix -> a handler, a response to give (a copy each time), or an exception to raise.
Routes = Mapping[str, Handler | httpx.Response | Exception]


def routes_transport(routes: Routes) -> httpx.MockTransport:
    """A MockTransport answering by URL prefix (query ignored); anything else fails to connect."""
    def handle(request: httpx.Request) -> httpx.Response:
        url = str(request.url).split("?", 1)[0]
        for prefix, answer in routes.items():
            if url.startswith(prefix):
                if isinstance(answer, Exception):
                    raise answer
                if isinstance(answer, httpx.Response):
                    return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
                return answer(request)
        raise httpx.ConnectError(f"no route to {url}", request=request)
    return httpx.MockTransport(handle)
