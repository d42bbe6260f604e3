"""uvicorn's WebSocket protocol with one guarantee added: a connection we are done with is gone within seconds.

uvicorn ends a connection with ``transport.close()``, which first waits for the write buffer to drain. A peer that
has stopped reading never drains it, so its socket and the bytes buffered for it stay for as long as the peer keeps
its end open: every slow consumer the hub drops with 1013 would be held forever, and a server shutdown (which waits
for every connection to go) would never reach the lifespan's end, where the store flushes and the history is
backed up. Here, a connection still open :attr:`WebSocketProtocol.linger` seconds after the app finished with it
(or after a keep-alive timeout, or a shutdown) is aborted.

Pass the class to uvicorn as ``ws=WebSocketProtocol``.

And uvicorn's HTTP protocol with handshakes taken in turns (:class:`HttpProtocol`, ``http=HttpProtocol``): at most
:attr:`Admission.per_round` WebSocket upgrades are carried out per event-loop iteration, the others wait (first
come, first served) for the next rounds. uvloop reads every socket that is ready in one iteration: in a reconnect
storm that was a thousand handshakes (the upgrade, websockets' handshake, the app's greeting) back to back, one to
two seconds on two cores, with ``/healthz`` and every client's updates waiting behind them. Plain requests are not
held: a probe on a new connection is answered between two rounds.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from ws.turns import Turns

log = logging.getLogger(__name__)


class WebSocketProtocol(WebSocketsSansIOProtocol):
    #: Time for a reading peer to take our last frames and the close frame; one that does not read never will.
    linger = 5.0

    async def run_asgi(self) -> None:
        await super().run_asgi()
        self._abort_later()

    def keepalive_timeout(self) -> None:
        super().keepalive_timeout()
        self._abort_later()

    def shutdown(self) -> None:
        super().shutdown()
        self._abort_later()

    def _abort_later(self) -> None:
        if not self.disconnected:
            self.loop.call_later(self.linger, self._abort_if_open)

    def _abort_if_open(self) -> None:
        if not self.disconnected and self.transport is not None:
            self.transport.abort()


class Admission:
    """Runs callbacks at most :attr:`per_round` per loop iteration; the rest wait their turn (FIFO), taken from a
    :class:`~ws.turns.Turns` of their own."""

    #: A handshake costs 0.3-1.5 ms of the loop on two cores: 4 keep an iteration to a few ms.
    per_round = 4

    def __init__(self) -> None:
        self._turns = Turns(self.per_round)
        self.admitted = 0

    @property
    def waiting(self) -> int:
        return self._turns.waiting

    @property
    def waited(self) -> int:
        return self._turns.waited

    def admit(self, callback: Callable[[], None]) -> None:
        turn = self._turns.take()
        if turn is None:
            self._run(callback)
        else:
            turn.add_done_callback(lambda _: self._run(callback))

    def _run(self, callback: Callable[[], None]) -> None:
        self.admitted += 1
        try:
            callback()
        except Exception:  # one connection's failed upgrade is its own; the others go on
            log.exception("a WebSocket upgrade failed")


_admissions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Admission] = weakref.WeakKeyDictionary()


def admission() -> Admission:
    """The running loop's admission of WebSocket upgrades (one per server loop)."""
    loop = asyncio.get_running_loop()
    gate = _admissions.get(loop)
    if gate is None:
        gate = _admissions[loop] = Admission()
    return gate


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, its WebSocket upgrades admitted in turns (see the module's docstring)."""

    def handle_websocket_upgrade(self) -> None:
        transport = self.transport
        transport.pause_reading()  # the client waits for its 101 anyway; nothing arrives for the old protocol

        def upgrade() -> None:
            if transport.is_closing():  # the client gave up while waiting
                return
            transport.resume_reading()
            super(HttpProtocol, self).handle_websocket_upgrade()
            # This protocol is done (the transport has the WebSocket's now) and its parser calls back into it: a
            # cycle that would keep it, the transport and the socket until the collector's full pass.
            self.parser = None  # type: ignore[assignment]

        admission().admit(upgrade)
