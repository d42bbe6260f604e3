"""Fair shares of the event loop for the senders: at most a round of sends per loop iteration, the rest wait.

A publish wakes every subscriber's sender at once. uvicorn's ``send`` does not yield while the socket takes the
bytes, so without a bound one loop iteration would write to all 5,000 sockets (a second or more of work under
overload) before anything else ran; a handshake needs several iterations, so accepting new clients, replies and
``/healthz`` would get a 1/5,000th share of the loop. With :class:`Turns`, a sender takes a turn before each
send: the first :attr:`Turns.per_round` turns of an iteration are free, the others queue (first come, first
served) and are handed out a round per iteration by a callback that goes to the back of the loop's ready queue,
so everything else that is ready runs between two rounds. Throughput is unchanged (the same sends, in the same
order per client); only the loop's iteration stays short.

Also a cheap probe of the loop's lag (:class:`LoopLag`), read by ``GET /ws/runtime``.
"""

from __future__ import annotations

import asyncio
import time
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


class LoopLag:
    """How late the loop runs a callback due every :attr:`period` seconds; started on first read, no task."""

    period = 0.1

    def __init__(self) -> None:
        self._samples: deque[float] = deque(maxlen=600)  # the last minute
        self._max_since_read = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def read(self) -> dict[str, float]:
        """Lag in ms: the worst since the last read, and p50/p99 over the last minute."""
        if self._handle is None:
            self._schedule()
        ordered = sorted(self._samples)
        worst, self._max_since_read = self._max_since_read, 0.0

        def pct(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2) if ordered else 0.0

        return {"max_since_last_read_ms": round(worst * 1000, 2), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                "samples": len(ordered)}

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        self._due = time.monotonic() + self.period
        self._handle = asyncio.get_running_loop().call_later(self.period, self._tick)

    def _tick(self) -> None:
        lag = max(0.0, time.monotonic() - self._due)
        self._samples.append(lag)
        self._max_since_read = max(self._max_since_read, lag)
        self._schedule()
