"""Parts of a payload that change more slowly than their stream ticks, each refreshed on its own cadence.

:class:`Cadence` says when something is due: every ``every`` seconds while it succeeds, ``retry`` seconds after a
failure (0: on the next run). :class:`PacedSection` puts a pool call on a cadence and shows, in between, the last
answer with its real age (or why there is none), through the same :class:`~services.base.Tracker` as any stream.
Both take injected clocks, so tests move time instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Literal, TypeVar

from models.freshness import Freshness
from services.base import Tracker
from sources.limits import Clock
from sources.pools import Pool, PoolResult

T = TypeVar("T")


class Cadence:
    def __init__(self, every: float, *, retry: float = 0.0, clock: Clock = time.monotonic) -> None:
        self.every = every
        self.retry = retry
        self._clock = clock
        self.next_due = clock()  # due at the first run

    def due(self) -> bool:
        return self._clock() >= self.next_due

    def done(self, ok: bool) -> None:
        """An attempt just ended: the next one is due after ``every`` if it succeeded, else after ``retry``."""
        self.next_due = self._clock() + (self.every if ok else self.retry)


class PacedSection(Generic[T]):
    """One pool-backed part of a payload: fetched when its cadence says so, with its own freshness."""

    def __init__(self, pool: Pool[Any], call: Callable[[Any], Awaitable[T]], cadence: Cadence, *,
                 data_source: Literal["live", "replay"], clock: Clock = time.time, max_age: float | None = None,
                 data_time: Callable[[PoolResult[T]], float | None] | None = None) -> None:
        """``max_age`` and ``data_time``: as for :class:`~services.base.Tracker`."""
        self.pool = pool
        self.call = call
        self.cadence = cadence
        self.tracker: Tracker[PoolResult[T]] = Tracker(data_source, clock, max_age=max_age, data_time=data_time)

    @property
    def latest(self) -> PoolResult[T] | None:
        """The last good answer, with its source and ``fetched_at``."""
        return self.tracker.last

    @property
    def next_due(self) -> float:
        return self.cadence.next_due

    def due(self) -> bool:
        return self.cadence.due()

    async def refresh(self) -> tuple[PoolResult[T] | None, Freshness]:
        """Ask the pool now."""
        result = await self.pool.fetch(self.call)
        self.cadence.done(result.ok)
        return self.tracker.observe(result)

    async def get(self) -> tuple[PoolResult[T] | None, Freshness]:
        """Fetched now when due, else the last result with its age."""
        return await self.refresh() if self.due() else self.tracker.view()
