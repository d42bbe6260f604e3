"""The whole app on a real uvicorn server, in a thread, on a free 127.0.0.1 port."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from app import GRACEFUL_SHUTDOWN_SECONDS
from config import Settings
from ws.uvicorn_protocol import HttpProtocol, WebSocketProtocol


@dataclass
class LiveServer:
    app: FastAPI
    base: str  # http://127.0.0.1:<port>
    loop: asyncio.AbstractEventLoop
    server: uvicorn.Server

    @property
    def ws(self) -> str:
        return self.base.replace("http://", "ws://")

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` on the server's event loop (thread-safe) and return its result."""
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def publish(self, service: str, data: Mapping[str, Any]) -> Any:
        return self.call(self.app.state.hub.publish, service, data)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.02)


@contextmanager
def serve(factory: Callable[[], FastAPI], settings: Settings) -> Iterator[LiveServer]:
    """Run the app made by ``factory`` on a real uvicorn server in a thread, on a free port.

    The app is built inside the server's running loop (uvicorn's factory mode), as ``python app.py`` does:
    Gradio makes an event loop of its own when none is running, and never closes it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    built: list[FastAPI] = []

    def build() -> FastAPI:
        built.append(factory())
        return built[0]

    config = uvicorn.Config(build, factory=True, log_level="warning", ws_max_size=settings.ws_max_message_bytes,
                            ws_per_message_deflate=settings.ws_per_message_deflate, lifespan="on",
                            ws=WebSocketProtocol, http=HttpProtocol,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS)
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(sockets=[sock]),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(built[0], f"http://127.0.0.1:{port}", loop, server)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():  # a connection that will not close: stop waiting for it
            server.force_exit = True
            thread.join(timeout=10)
        leftovers = asyncio.all_tasks(loop)  # Gradio's queue workers outlive the server
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.close()
        sock.close()
