"""One WebSocket client: its id, subscriptions, bounded send queue and the sender task that drains it.

Everything bound for a client (replies and updates alike, so their order is kept) goes through
:meth:`Connection.offer`, which never awaits. The connection's own sender writes to the socket. When the queue
is full the client is not keeping up: the connection marks itself for closing with 1013 and the reason, and
the hub simply stops counting it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Sequence
from enum import Enum

from starlette.websockets import WebSocket, WebSocketDisconnect

from models.messages import iso, utc_now
from models.states import LimiterVerdict
from ws.turns import Turns

log = logging.getLogger(__name__)

CLOSE_SLOW_CONSUMER = 1013  # "try again later": the client did not read fast enough
CLOSE_POLICY = 1008  # inbound rate limit exceeded, again
CLOSE_TOO_BIG = 1009

_ids = itertools.count(1)


class ConnectionState(Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class Connection:
    def __init__(self, websocket: WebSocket, endpoint: str, queue_size: int, turns: Turns | None = None) -> None:
        now = utc_now()
        self.client_id = f"client_{next(_ids)}_{int(now.timestamp())}"
        self.websocket = websocket
        self.endpoint = endpoint
        self.connected_at = now
        self.last_activity = now
        self.subscriptions: set[str] = set()
        self.state = ConnectionState.OPEN
        self.close_code: int | None = None
        self.close_reason = ""
        self.sent = 0
        self.received = 0
        self._queue: deque[str] = deque()
        self._queue_size = queue_size
        self._cap = queue_size  # raised for a resume's backlog until the queue drains below queue_size
        self._waiter: asyncio.Future[None] | None = None  # the idle sender waits on it
        self._in_line = False  # the idle sender's waiter is in the turns' line: it wakes with a turn granted
        self._sender: asyncio.Task[None] | None = None
        self._sending = False  # a send is in flight (it may wait on a client that does not read)
        self._abandoned = False
        self._turns = turns
        self._free = 0  # sends that need no turn (the greeting: a new client is not kept waiting behind updates)

    # -- outbound ---------------------------------------------------------------------------------------
    def offer(self, text: str) -> bool:
        """Queue a message for this client; False (and the connection starts closing) when it is full."""
        if self.state is not ConnectionState.OPEN:
            return False
        if len(self._queue) >= self._cap:
            self.close(CLOSE_SLOW_CONSUMER, f"slow consumer: {len(self._queue)} messages waiting to be read")
            return False
        self._queue.append(text)
        self._wake(in_turn=True)
        return True

    def offer_backlog(self, texts: Sequence[str]) -> None:
        """Queue a resuming client's missed updates (bounded by the resume limit) beyond the queue's size: they
        were asked for at once; live updates after them count against the size only once it has drained."""
        if self.state is ConnectionState.OPEN and texts:
            self._cap = max(self._cap, len(self._queue) + len(texts) + self._queue_size)
            self._queue.extend(texts)
            self._wake(in_turn=True)

    def close(self, code: int, reason: str, *, flush: bool = False) -> None:
        """Ask the sender to close the socket with ``code``, after what is queued if ``flush``; idempotent."""
        if self.state is ConnectionState.OPEN:
            self.state = ConnectionState.CLOSING
            self.close_code, self.close_reason = code, reason
            if not flush:
                self._queue.clear()
                if self._sending and self._sender is not None:
                    # The send in flight waits for a client that does not read; so would a close frame.
                    self._abandoned = True
                    self._sender.cancel()
            self._wake(in_turn=False)

    def mark_closed(self) -> None:
        """The peer is gone: nothing more will be sent."""
        self.state = ConnectionState.CLOSED
        self._queue.clear()
        self._wake(in_turn=False)

    def _wake(self, *, in_turn: bool) -> None:
        """Wake the idle sender: for news, when its turn comes (a publish wakes thousands of senders: their
        wake-ups are handed out a round per loop iteration too); for a close, or the greeting, at once."""
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # the sender is busy: it finds the queue as it is
        if in_turn and self._turns is not None and not self._free:
            if not self._in_line:
                self._in_line = True
                self._turns.enqueue(waiter)
        else:
            waiter.set_result(None)

    def skip_turns_for_queued(self) -> None:
        """What is queued now (the greeting and snapshots) goes out without waiting for a turn."""
        self._free = len(self._queue)
        if self._free:
            self._wake(in_turn=False)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def run_sender(self) -> None:
        """Drain the queue to the socket until the connection closes; then send the close frame if asked."""
        send = self.websocket.send_text
        queue = self._queue
        self._sender = asyncio.current_task()
        try:
            while True:
                granted = await self._idle()
                while queue and self.state is not ConnectionState.CLOSED:
                    if granted:
                        granted = False
                    elif not await self._turn():
                        break
                    self._sending = True
                    await send(queue.popleft())
                    self._sending = False
                    self._sent_one()
                if self.state is not ConnectionState.OPEN:
                    break
        except asyncio.CancelledError:
            if not self._abandoned:
                raise
            self.state = ConnectionState.CLOSED  # left to the server to drop the socket
            return
        except (WebSocketDisconnect, RuntimeError, OSError):
            # the peer went away mid-send; the receive loop sees the disconnect too
            self.state = ConnectionState.CLOSED
            return
        finally:
            # Only a send in flight is ever cancelled through it, and none follows. Not kept past that: a cancelled
            # sender holds its CancelledError, whose traceback holds this connection; a reference back to the task
            # would make the whole connection (socket, protocol, buffers) a cycle only a full GC pass frees.
            self._sender = None
        if self.close_code is not None:
            # A slow reader may take long to read the close frame; do not wait on it forever.
            with contextlib.suppress(TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
                await asyncio.wait_for(self.websocket.close(self.close_code, self.close_reason), timeout=2)
        self.state = ConnectionState.CLOSED

    def _sent_one(self) -> None:
        self.sent += 1
        if self._cap > self._queue_size and len(self._queue) < self._queue_size:
            self._cap = self._queue_size  # a resume's backlog has drained: the usual bound again

    async def _idle(self) -> bool:
        """Wait, if there is nothing to send and the connection is open; True if woken with a turn granted."""
        if self._queue or self.state is not ConnectionState.OPEN:
            return False
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        granted, self._in_line = self._in_line, False
        return granted

    async def _turn(self) -> bool:
        """Wait for this send's turn (see ws/turns.py); False if, meanwhile, there is nothing left to send."""
        if self._free:
            self._free -= 1
            return True
        if self._turns is not None and (turn := self._turns.take()) is not None:
            await turn  # other senders, handshakes and requests get their share of the loop
            return bool(self._queue) and self.state is not ConnectionState.CLOSED
        return True

    # -- inbound ----------------------------------------------------------------------------------------
    def touch(self) -> None:
        self.last_activity = utc_now()
        self.received += 1

    def describe(self) -> dict[str, object]:
        return {
            "client_id": self.client_id,
            "connected_at": iso(self.connected_at),
            "last_activity": iso(self.last_activity),
            "subscriptions": sorted(self.subscriptions),
            "endpoint": self.endpoint,
            "messages_sent": self.sent,
            "messages_received": self.received,
            "queued": len(self._queue),
        }


class InboundLimiter:
    """Counts a client's messages per one-second window.

    The first message over the limit earns an error reply; messages over the limit are not processed; once a
    client has sent more than one further second's worth over the limit within a minute of that warning (it
    kept going), the connection is closed with 1008.
    """

    FORGIVE_AFTER = 60.0

    def __init__(self, per_second: int) -> None:
        self.per_second = per_second
        self._window = 0
        self._count = 0
        self._excess = 0
        self._warned_at: float | None = None

    def check(self, now: float | None = None) -> LimiterVerdict:
        """The verdict on one more message: ok, warn (the first over the limit), drop or close."""
        now = time.monotonic() if now is None else now
        window = int(now)
        if window != self._window:
            self._window, self._count = window, 0
        self._count += 1
        if self._count <= self.per_second:
            return LimiterVerdict.OK
        if self._warned_at is None or now - self._warned_at > self.FORGIVE_AFTER:
            self._warned_at, self._excess = now, 0
            return LimiterVerdict.WARN
        self._excess += 1
        return LimiterVerdict.CLOSE if self._excess > self.per_second else LimiterVerdict.DROP
