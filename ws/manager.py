"""The live connections: greets each client, runs its receive loop and sender, and keeps the statistics."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from models.catalog import Endpoint, grouped
from models.loop_lag import LoopLagSamples
from models.messages import ACTIONS, MessageType, now_iso
from models.states import LimiterVerdict
from models.wire import ConnectionEstablishedData, WelcomeData, system_message
from ws.connection import (
    CLOSE_POLICY,
    CLOSE_SLOW_CONSUMER,
    CLOSE_TOO_BIG,
    Connection,
    ConnectionState,
    InboundLimiter,
)
from ws.hub import Hub
from ws.loop_lag import LagSinceRead
from ws.memory import malloc_figures
from ws.protocol import TIMESTAMP_MARK, ClientError, Protocol
from ws.turns import Turns

log = logging.getLogger(__name__)

# Markers in the greeting templates (see ConnectionManager._greeting)
_CLIENT_ID = "\u2063client-id\u2063"


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 64 * 1024
    max_messages_per_second: int = 20
    send_queue: int = 64
    resume_max: int = 300  # updates replayed to a client that resumes with "since"


USAGE = {
    "subscribe": {"action": "subscribe", "service": "service_name"},
    "unsubscribe": {"action": "unsubscribe", "service": "service_name"},
    "get_status": {"action": "get_status"},
    "ping": {"action": "ping", "data": {"custom": "data"}},
}


class ConnectionManager:
    def __init__(self, hub: Hub, limits: Limits, replica: str | None = None,
                 loop_lag: LoopLagSamples | None = None) -> None:
        self.hub = hub
        self.replica = replica
        self.limits = limits
        self.connections: dict[str, Connection] = {}
        self.total_connected = 0
        self.slow_consumer_disconnects = 0
        self.rate_limit_disconnects = 0
        self.oversize_disconnects = 0
        self._received: dict[str, int] = {}  # messages from the clients gone, per endpoint path
        self._protocols: dict[str, Protocol] = {}
        self._greetings: dict[str, tuple[str, ...]] = {}
        self.turns = Turns()
        self.loop_lag = LagSinceRead(loop_lag)

    @property
    def count(self) -> int:
        return len(self.connections)

    async def serve(self, websocket: WebSocket, endpoint: Endpoint, path: str) -> None:
        """One client's whole life on ``path``: this task reads, a sender task of its own writes."""
        await websocket.accept()
        conn = Connection(websocket, path, self.limits.send_queue, self.turns)
        self.connections[conn.client_id] = conn
        self.total_connected += 1
        protocol = self._protocol(endpoint, path)
        sender = asyncio.create_task(conn.run_sender())
        reader = asyncio.current_task()
        reading, interrupted = True, False

        def sender_done(_: object) -> None:
            # The sender stops first only when the connection closed itself (a slow reader): stop reading too.
            nonlocal interrupted
            if reading and reader is not None:
                interrupted = True
                reader.cancel()

        sender.add_done_callback(sender_done)
        try:
            self._greet(conn, endpoint, path, protocol)
            conn.skip_turns_for_queued()
            try:
                await self._receive(conn, protocol)
            except asyncio.CancelledError:
                if not interrupted or reader is None:
                    raise
                reader.uncancel()
            finally:
                reading = False
            if conn.state is ConnectionState.OPEN:
                conn.mark_closed()  # the peer left: stop the sender
            elif conn.close_code is not None and not sender.done():
                await asyncio.wait({sender}, timeout=3)  # let it send what is queued and the close frame
        finally:
            if not sender.done():
                sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        """A connection is over: out of the hub and the table, and counted by why it was closed."""
        self.hub.unsubscribe(conn, conn.subscriptions)
        self.connections.pop(conn.client_id, None)
        self._received[conn.endpoint] = self._received.get(conn.endpoint, 0) + conn.received
        if conn.close_code == CLOSE_SLOW_CONSUMER:
            self.slow_consumer_disconnects += 1
        elif conn.close_code == CLOSE_POLICY:
            self.rate_limit_disconnects += 1
        elif conn.close_code == CLOSE_TOO_BIG:
            self.oversize_disconnects += 1

    def _protocol(self, endpoint: Endpoint, path: str) -> Protocol:
        protocol = self._protocols.get(path)
        if protocol is None:
            protocol = self._protocols[path] = Protocol(self.hub, path, endpoint.services, lambda: self.count,
                                                         self.limits.resume_max)
        return protocol

    def _greet(self, conn: Connection, endpoint: Endpoint, path: str, protocol: Protocol) -> None:
        now = now_iso()
        for template in self._greeting(endpoint, path):
            conn.offer(template.replace(_CLIENT_ID, conn.client_id).replace(TIMESTAMP_MARK, now))
        if len(endpoint.auto_subscribe) == len(endpoint.services) and len(endpoint.services) > 1:
            protocol.subscribe(conn, "all")
        else:
            for service in endpoint.auto_subscribe:
                protocol.subscribe(conn, service)

    def _greeting(self, endpoint: Endpoint, path: str) -> tuple[str, ...]:
        """The greeting of ``path`` serialised once, with markers for the client's id and the time (neither needs
        escaping in JSON): a reconnect storm then costs two string replacements per message, not an encoding."""
        templates = self._greetings.get(path)
        if templates is None:
            data = ConnectionEstablishedData(client_id=_CLIENT_ID, message=f"Connected to {path}", endpoint=path,
                                             services=list(endpoint.services),
                                             auto_subscribe=list(endpoint.auto_subscribe))
            # client_id at the top level too: clients of the spec's origin read it there
            messages = [system_message(data, MessageType.CONNECTION_ESTABLISHED, client_id=_CLIENT_ID,
                                       timestamp=TIMESTAMP_MARK)]
            if endpoint.welcome:
                welcome = WelcomeData.model_validate({"message": "Connected to master WebSocket endpoint",
                                                      "client_id": _CLIENT_ID, "available_services": grouped(),
                                                      "usage": USAGE, "actions": list(ACTIONS)})
                messages.append(system_message(welcome, MessageType.WELCOME, timestamp=TIMESTAMP_MARK))
            templates = self._greetings[path] = tuple(messages)
        return templates

    async def _receive(self, conn: Connection, protocol: Protocol) -> None:
        limiter = InboundLimiter(self.limits.max_messages_per_second)
        max_bytes = self.limits.max_message_bytes
        while conn.state is ConnectionState.OPEN:
            try:
                message = await conn.websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                if message.get("code") == CLOSE_TOO_BIG:  # refused by the server itself (uvicorn's ws_max_size)
                    conn.close_code = CLOSE_TOO_BIG
                return
            conn.touch()
            text, binary = message.get("text"), message.get("bytes")
            size = len(text) if text is not None else len(binary or b"")
            if size > max_bytes:  # uvicorn enforces this itself (ws_max_size); other servers may not
                conn.close(CLOSE_TOO_BIG, f"message of {size} bytes exceeds the {max_bytes}-byte limit", flush=True)
                return
            verdict = limiter.check()
            if verdict is LimiterVerdict.WARN:
                protocol.error(conn, ClientError(
                    f"Rate limit exceeded: at most {limiter.per_second} messages per second; "
                    "messages over the limit are ignored and continuing closes the connection"))
                continue
            if verdict is LimiterVerdict.CLOSE:
                conn.close(CLOSE_POLICY, f"rate limit exceeded again: over {limiter.per_second} messages/s", flush=True)
                return
            if verdict is LimiterVerdict.DROP:
                continue
            if text is not None:
                protocol.handle_text(conn, text)
            else:
                protocol.handle_binary(conn)

    def inbound(self) -> dict[str, tuple[int, int]]:
        """Per endpoint path, since start: messages received from clients, and error replies sent to them."""
        received = dict(self._received)
        for conn in self.connections.values():
            received[conn.endpoint] = received.get(conn.endpoint, 0) + conn.received
        return {path: (received.get(path, 0), protocol.errors if (protocol := self._protocols.get(path)) else 0)
                for path in received.keys() | self._protocols.keys()}

    def disconnects(self) -> dict[str, int]:
        """Connections closed since start, by why: the server closed them (three reasons) or not (normal)."""
        closed = self.total_connected - self.count
        ours = {"slow_consumer": self.slow_consumer_disconnects, "rate_limit": self.rate_limit_disconnects,
                "oversize": self.oversize_disconnects}
        return {**ours, "normal": closed - sum(ours.values())}

    def stats(self) -> dict[str, Any]:
        """``GET /ws/stats``: the spec's keys (every client described) and our counters."""
        return {"total_connections": self.count,
                "clients": [conn.describe() for conn in self.connections.values()],
                **self.summary()}

    def runtime(self) -> dict[str, Any]:
        """``GET /ws/runtime``: what a soak watches for creeping (tasks, queues, the C heap) and the loop's lag."""
        queued = [conn.queued for conn in self.connections.values()]
        return {
            "asyncio_tasks": len(asyncio.all_tasks()),
            "connections": len(queued),
            "queued_messages": sum(queued),
            "max_queue": max(queued, default=0),
            "turns_waiting": self.turns.waiting,
            "turns_waited_total": self.turns.waited,
            "loop_lag": self.loop_lag.read(),
            "resume_rings": self.hub.rings(),
            "malloc": malloc_figures(),  # None where the C library is not glibc
        }

    def summary(self) -> dict[str, Any]:
        """The counters of :meth:`stats` without the list of clients, which costs ~5 µs per client to build."""
        return {
            "replica": self.replica,
            "total_connections": self.count,
            "subscription_counts": self.hub.subscription_counts(),
            "connections_since_start": self.total_connected,
            "slow_consumer_disconnects": self.slow_consumer_disconnects,
            "rate_limit_disconnects": self.rate_limit_disconnects,
            "oversize_disconnects": self.oversize_disconnects,
            "updates_published": self.hub.published,
            "updates_delivered": self.hub.delivered,
            "updates_dropped": self.hub.dropped,
        }
