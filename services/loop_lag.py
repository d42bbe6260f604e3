"""Event-loop lag: how late the loop wakes a task that asked to sleep a fixed time, sampled all along.

Every client's updates, replies and ``/healthz`` wait behind whatever holds the loop; this says how long that
was, as percentiles of the last :data:`WINDOW` samples (one every :data:`PERIOD` seconds)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

PERIOD = 0.1
WINDOW = 3000  # five minutes of samples


class LoopLag:
    def __init__(self, period: float = PERIOD, window: int = WINDOW) -> None:
        self.period = period
        self.samples: deque[float] = deque(maxlen=window)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                asked = loop.time()
                await asyncio.sleep(self.period)
                self.samples.append(max(0.0, loop.time() - asked - self.period) * 1000)

    def summary(self) -> dict[str, float] | None:
        """``p50``, ``p99`` and ``max`` lag in milliseconds, and how many samples they come from."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
        return {"p50": round(pick(0.5), 2), "p99": round(pick(0.99), 2), "max": round(ordered[-1], 2),
                "samples": float(len(ordered))}
