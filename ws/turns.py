"""Fair shares of the event loop for the senders: at most a round of sends per loop iteration, the rest wait.

A publish wakes every subscriber's sender at once. uvicorn's ``send`` does not yield while the socket takes the
bytes, so without a bound one loop iteration would write to all 5,000 sockets (a second or more of work under
overload) before anything else ran; a handshake needs several iterations, so accepting new clients, replies and
``/healthz`` would get a 1/5,000th share of the loop. With :class:`Turns`, a sender takes a turn before each
send: the first :attr:`Turns.per_round` turns of an iteration are free, the others queue (first come, first
served) and are handed out a round per iteration by a callback that goes to the back of the loop's ready queue,
so everything else that is ready runs between two rounds. Throughput is unchanged (the same sends, in the same
order per client); only the loop's iteration stays short.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Turns:
    #: A handshake or a request moves one step per iteration: with 4 sends per round they keep a fair share
    #: under overload (bench/storm.py --overload: 2,000 of 2,000 clients in 14 s with 4, 286-606 in 21 s with 32).
    DEFAULT_PER_ROUND = 4

    def __init__(self, per_round: int = DEFAULT_PER_ROUND) -> None:
        self.per_round = per_round
        self.waited = 0  # turns that had to wait for a later round (a sign of overload)
        self._used = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._armed = False

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def take(self) -> asyncio.Future[None] | None:
        """None: go ahead now. A future: await it first (cancelling it gives the turn up)."""
        if self._used < self.per_round and not self._waiting:
            self._used += 1
            self._arm()
            return None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self.waited += 1
        self._arm()
        return future

    def enqueue(self, waiter: asyncio.Future[None]) -> None:
        """Resolve ``waiter`` when its turn comes (an idle sender woken by news: the wake-up is the turn)."""
        self._waiting.append(waiter)
        self._arm()

    def _arm(self) -> None:
        if not self._armed:
            self._armed = True
            asyncio.get_running_loop().call_soon(self._next_round)

    def _next_round(self) -> None:
        self._armed = False
        self._used = 0
        waiting = self._waiting
        while waiting and self._used < self.per_round:
            future = waiting.popleft()
            if not future.done():  # a cancelled sender gave its turn up
                future.set_result(None)
                self._used += 1
        if waiting or self._used:
            self._arm()

