"""What the benches share: the real app as a subprocess, the naive server they compare it with, /proc readings,
statistics.

Everything stays on 127.0.0.1; ports are free ones unless given.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

ROOT = Path(__file__).resolve().parent.parent


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise this process's open-file limit towards ``wanted`` (never above the hard limit); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AppProcess:
    """``python app.py`` in replay mode on 127.0.0.1, its output in a file (read it for tracebacks)."""

    port: int = 0
    interval_scale: float = 0.05
    env: dict[str, str] = field(default_factory=dict)
    data_dir: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self, timeout: float = 120.0) -> AppProcess:
        self.port = self.port or free_port()
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="bench-data-"))
        self.log_path = self.data_dir / f"server-{int(time.time())}.log"
        env = {**os.environ, "DATA_SOURCE": "replay", "HOST": "127.0.0.1", "PORT": str(self.port),
               "INTERVAL_SCALE": str(self.interval_scale), "DATA_DIR": str(self.data_dir),
               "LOG_LEVEL": "info", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", **self.env}
        for secret in ("HF_TOKEN", "HF_BACKUP_REPO"):  # a bench never uploads anything
            env.pop(secret, None)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url("/healthz"), timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not answer /healthz in time")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def terminate(self, timeout: float = 15.0) -> tuple[int | None, float]:
        """SIGTERM, then wait: (exit code or None if it had to be killed, seconds to exit)."""
        assert self.proc is not None
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        return code, time.monotonic() - start


class NaiveServer:
    """What the spec's origin did, the server the fan-out and storm benches compare the hub with: accept, greet
    (then send ``snapshot``, if given), hold every client in a list under a lock until it hangs up, and publish by
    awaiting each client's send in turn, holding that lock throughout."""

    def __init__(self, path: str, greeting: str, snapshot: str | None = None) -> None:
        self.path, self.greeting, self.snapshot = path, greeting, snapshot
        self.clients: list[WebSocket] = []
        self.lock = asyncio.Lock()

    async def endpoint(self, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(self.greeting)
        if self.snapshot is not None:
            await websocket.send_text(self.snapshot)
        async with self.lock:
            self.clients.append(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            async with self.lock:
                if websocket in self.clients:
                    self.clients.remove(websocket)

    async def broadcast(self, send: Callable[[WebSocket], Awaitable[None]]) -> None:
        """``send`` to one client after another, under the lock; a client whose send fails is dropped."""
        async with self.lock:
            for websocket in list(self.clients):
                try:
                    await send(websocket)
                except Exception:
                    self.clients.remove(websocket)

    def app(self, lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None) -> FastAPI:
        app = FastAPI(lifespan=lifespan)
        app.add_api_websocket_route(self.path, self.endpoint)
        app.add_api_route("/healthz", _healthz)
        return app


async def _healthz() -> dict[str, str]:
    return {"status": "ok"}


def serve(app: Any, port: int, ws_max_size: int = 65536, backlog: int = 4096) -> None:
    """uvicorn as the benches run every server, the app's and the naive one alike: on 127.0.0.1, permessage-deflate
    off, app.py's WebSocket protocol class."""
    import uvicorn

    from ws.uvicorn_protocol import WebSocketProtocol

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws_per_message_deflate=False,
                ws_max_size=ws_max_size, backlog=backlog, ws=WebSocketProtocol)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def rss_parts(pid: int) -> dict[str, int]:
    """RssAnon, RssFile and RssShmem in bytes: a growing heap shows in the first, a mapped file in the second."""
    parts = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("RssAnon:", "RssFile:", "RssShmem:")):
                name, value = line.split(":")
                parts[name] = int(value.split()[0]) * 1024
    return parts


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys over xs (0 for fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def tracebacks(log: str) -> list[str]:
    """Lines of a server log that show a traceback or an ERROR/CRITICAL record."""
    return [line for line in log.splitlines()
            if "Traceback" in line or " ERROR " in line or " CRITICAL " in line]
