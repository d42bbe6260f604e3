"""The server's one event-loop lag sampler (see models/loop_lag.py for its readers), and the reader of
``GET /ws/runtime``.

A callback due every :data:`~models.loop_lag.PERIOD` seconds, rescheduled by itself: no task, no future, one timer
handle per sample; it notes how late the loop ran it and tells its listeners.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable

from models.loop_lag import PERIOD, LoopLagSamples, percentile


class LoopLag:
    """Samples the loop's lag while entered (``with``, in the lifespan); keeps the last ``keep`` seconds of them."""

    def __init__(self, period: float = PERIOD, keep: float = 300.0) -> None:
        self.period = period
        self._samples: deque[float] = deque(maxlen=max(1, round(keep / period)))
        self._listeners: list[Callable[[float], None]] = []
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def __enter__(self) -> LoopLag:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if self._handle is None:
            self._schedule(asyncio.get_running_loop())

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def recent(self, seconds: float) -> list[float]:
        samples = self._samples
        skip = max(0, len(samples) - round(seconds / self.period))
        return list(itertools.islice(samples, skip, None))

    def watch(self, listener: Callable[[float], None]) -> None:
        self._listeners.append(listener)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        self._due = loop.time() + self.period
        self._handle = loop.call_at(self._due, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        lag = max(0.0, loop.time() - self._due)
        self._schedule(loop)  # first: a listener that raises does not stop the sampling
        self._samples.append(lag)
        for listener in self._listeners:
            listener(lag)


class LagSinceRead:
    """``GET /ws/runtime``'s ``loop_lag``, in ms: the worst lag since the last read, p50/p99 over the last minute.

    Without samples (none yet, or no sampler given: a manager built on its own) every figure is 0 and
    ``samples`` says so."""

    def __init__(self, samples: LoopLagSamples | None) -> None:
        self._samples = samples
        self._worst = 0.0
        if samples is not None:
            samples.watch(self._seen)

    def _seen(self, lag: float) -> None:
        if lag > self._worst:
            self._worst = lag

    def read(self) -> dict[str, float]:
        ordered = sorted(self._samples.recent(60.0)) if self._samples is not None else []
        worst, self._worst = self._worst, 0.0

        def ms(q: float) -> float:
            return round(percentile(ordered, q) * 1000, 2) if ordered else 0.0

        return {"max_since_last_read_ms": round(worst * 1000, 2), "p50_ms": ms(0.5), "p99_ms": ms(0.99),
                "samples": len(ordered)}
