"""A world of misbehaving providers on 127.0.0.1, reached the way a corporate network is: through a proxy.

:class:`ChaosProxy` is an HTTPS proxy (``HTTPS_PROXY``): it accepts ``CONNECT host:443``, then terminates TLS
itself with a certificate for that host issued by a CA the test makes (trustme; the server trusts it through
``SSL_CERT_FILE``), and answers every request as the provider's fault of the moment: refused, a hang, a body
dripping a byte a second, 429 with and without ``Retry-After``, 500/502/503, an HTML page, truncated JSON, JSON
of another shape, 20 MB, a wrong content type, a redirect loop. Outside faults (and after :meth:`calm`) it answers
with the recordings of ``sources/replay/``, through the replay transport. It counts every request per host.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import trustme

from sources.replay import ReplayTransport

#: A number and a word no provider sends: neither may ever appear in what the server publishes.
SENTINEL_NUMBER = "4242.4242"
SENTINEL_WORD = "CHAOS-SENTINEL"

FAULTS: tuple[str, ...] = (
    "refused", "timeout", "drip", "429_retry_after", "429", "500", "502", "503", "html", "truncated", "shape",
    "huge", "wrong_type", "redirect_loop",
)
HUGE_BYTES = 20 * 2**20


@dataclass
class ChaosProxy:
    #: Seconds each fault lasts on a host before the next one; hosts start at different faults.
    phase: float = 2.0
    requests: Counter[str] = field(default_factory=Counter)  # every HTTP request, per host
    served: Counter[tuple[str, str]] = field(default_factory=Counter)  # (host, fault) -> requests
    calm_since: float | None = None
    ca: trustme.CA = field(default_factory=trustme.CA)
    _contexts: dict[str, ssl.SSLContext] = field(default_factory=dict)
    _server: asyncio.Server | None = None
    _replay: ReplayTransport = field(default_factory=ReplayTransport)
    _started: float = field(default_factory=time.monotonic)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self, ca_file: Path) -> str:
        self.ca.cert_pem.write_to_path(str(ca_file))
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self._started = time.monotonic()
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def calm(self) -> None:
        """From now on every host answers with its recordings."""
        self.calm_since = time.monotonic()

    def fault(self, host: str) -> str:
        if self.calm_since is not None:
            return "ok"
        offset = zlib.crc32(host.encode()) % len(FAULTS)
        step = int((time.monotonic() - self._started) / self.phase)
        return FAULTS[(step + offset) % len(FAULTS)]

    def _context(self, host: str) -> ssl.SSLContext:
        if host not in self._contexts:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert(host).configure_cert(context)
            self._contexts[host] = context
        return self._contexts[host]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._tunnel(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        host = target.rsplit(":", 1)[0]
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            return
        if self.fault(host) == "refused":
            self.served[(host, "refused")] += 1
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await writer.start_tls(self._context(host))
        while await self._exchange(host, reader, writer):
            pass

    async def _exchange(self, host: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request on the tunnel; False when the connection is to end."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        self.requests[host] += 1
        fault = self.fault(host)
        self.served[(host, fault)] += 1
        return await self._answer(fault, method, f"https://{host}{path}", headers, body, reader, writer)

    async def _answer(self, fault: str, method: str, url: str, headers: dict[str, str], body: bytes,
                      reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        if fault == "refused":  # the connection was open before the fault began: reset it
            return False
        if fault == "timeout":
            await reader.read()  # nothing, until the client gives up
            return False
        if fault == "drip":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n")
            for _ in range(100000):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(1)
            return False
        if fault == "huge":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
            chunk = ("[" + f"{SENTINEL_NUMBER}," * 6000)[:65536].encode()
            for _ in range(HUGE_BYTES // len(chunk)):
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            return True
        status, reply_headers, content = await self._canned(fault, method, url, headers, body)
        head = [f"HTTP/1.1 {status} X", f"content-length: {len(content)}",
                *(f"{k}: {v}" for k, v in reply_headers.items())]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + content)
        await writer.drain()
        return True

    async def _canned(self, fault: str, method: str, url: str, headers: dict[str, str],
                      body: bytes) -> tuple[int, dict[str, str], bytes]:
        page = f"<html><body><h1>{SENTINEL_WORD}</h1><p>{SENTINEL_NUMBER}</p></body></html>".encode()
        if fault == "429_retry_after":
            return 429, {"retry-after": "1", "content-type": "text/plain"}, b"slow down"
        if fault == "429":
            return 429, {"content-type": "text/plain"}, b"slow down"
        if fault in ("500", "502", "503"):
            return int(fault), {"content-type": "text/html"}, page
        if fault == "html":
            return 200, {"content-type": "text/html; charset=utf-8"}, page
        if fault == "shape":
            shape = f'{{"{SENTINEL_WORD}": true, "items": [{{"value": {SENTINEL_NUMBER}}}]}}'.encode()
            return 200, {"content-type": "application/json"}, shape
        if fault == "redirect_loop":
            target = url.split("?")[0] + ("" if "chaos=1" in url else "?chaos=1")
            return 302, {"location": target}, b""
        status, recorded_headers, recorded = await self._recorded(method, url, headers, body)
        if fault == "truncated":
            return status, recorded_headers, recorded[: len(recorded) // 2]
        if fault == "wrong_type":
            return status, {**recorded_headers, "content-type": "image/png"}, recorded
        return status, recorded_headers, recorded

    async def _recorded(self, method: str, url: str, headers: dict[str, str],
                        body: bytes) -> tuple[int, dict[str, str], bytes]:
        request = httpx.Request(method, url, content=body, headers={"content-type": headers.get("content-type", "")})
        response = await self._replay.handle_async_request(request)
        content = await response.aread()
        kept = {k: v for k, v in response.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")}
        return response.status_code, kept, content
