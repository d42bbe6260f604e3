"""uvicorn's WebSocket protocol with one guarantee added: a connection we are done with is gone within seconds.

uvicorn ends a connection with ``transport.close()``, which first waits for the write buffer to drain. A peer that
has stopped reading never drains it, so its socket and the bytes buffered for it stay for as long as the peer keeps
its end open: every slow consumer the hub drops with 1013 would be held forever, and a server shutdown (which waits
for every connection to go) would never reach the lifespan's end, where the store flushes and the history is
backed up. Here, a connection still open :attr:`WebSocketProtocol.linger` seconds after the app finished with it
(or after a keep-alive timeout, or a shutdown) is aborted.

Pass the class to uvicorn as ``ws=WebSocketProtocol``.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


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
