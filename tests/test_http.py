"""The one HTTP client: behind a proxy in live mode, as users of any HTTP tool expect; recordings in replay."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sources.http import http_client
from tests.support.settings import make_settings


class RecordingProxy:
    """A forward proxy on 127.0.0.1 that answers every plain-HTTP request itself and remembers what it was asked."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head.split(b"\r\n", 1)[0].decode())
        body = b'{"via": "proxy"}'
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                     + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_live_calls_go_through_the_proxy_the_environment_names(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = RecordingProxy()
    async with proxy as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with http_client(make_settings(tmp_path, data_source="live")) as client:
            answer = await client.get("http://api.example.invalid/v1/ping")
    assert answer.json() == {"via": "proxy"}
    assert proxy.requests == ["GET http://api.example.invalid/v1/ping HTTP/1.1"]


async def test_no_proxy_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, direct = RecordingProxy(), RecordingProxy()  # the second one stands for a provider reached directly
    async with proxy as proxy_url, direct as direct_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with http_client(make_settings(tmp_path, data_source="live")) as client:
            await client.get(direct_url + "/v1/ping")
    assert proxy.requests == [] and direct.requests == ["GET /v1/ping HTTP/1.1"]


async def test_replay_keeps_its_recordings_whatever_the_environment(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there: a proxied call would fail
    async with http_client(make_settings(tmp_path, data_source="replay")) as client:
        answer = await client.get("https://api.alternative.me/fng/")
    assert answer.status_code == 200 and answer.json()["data"]
