"""A small synchronous WebSocket test client over the ``websockets`` library."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

Message = dict[str, Any]


class Client:
    def __init__(self, base: str, path: str) -> None:
        self.conn: ClientConnection = connect(base + path, max_size=None, max_queue=None, compression=None,
                                              open_timeout=10, legacy=True)
        self.seen: list[Message] = []

    def send(self, payload: Any) -> None:
        self.conn.send(payload if isinstance(payload, (str, bytes)) else json.dumps(payload))

    def recv(self, timeout: float = 5.0) -> Message:
        raw = self.conn.recv(timeout=timeout)
        assert isinstance(raw, str), "server messages must be text frames"
        message: Message = json.loads(raw)
        self.seen.append(message)
        return message

    def recv_until(self, predicate: Callable[[Message], bool], timeout: float = 5.0) -> Message:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no matching message")
            message = self.recv(remaining)
            if predicate(message):
                return message

    def recv_type(self, type_: str, timeout: float = 5.0, service: str | None = None) -> Message:
        return self.recv_until(lambda m: m["type"] == type_ and (service is None or m["service"] == service),
                               timeout)

    def request(self, payload: Any, type_: str, timeout: float = 5.0) -> Message:
        self.send(payload)
        return self.recv_type(type_, timeout)

    def flood_until_closed(self, messages: int = 200, timeout: float = 10.0) -> None:
        """Send ``messages`` pings as fast as possible; the server's rate limit must close the connection."""
        try:
            for _ in range(messages):
                self.send({"action": "ping"})
            self.recv_until(lambda m: False, timeout=timeout)
        except ConnectionClosed:
            return
        raise AssertionError("the server did not close a flooding client")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
