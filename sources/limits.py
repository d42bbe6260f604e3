"""Per-provider limits: a rate budget (token bucket inside the provider's free limit) and a circuit breaker.

Both take an injected monotonic clock, so tests drive time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class Rate:
    """``calls`` per ``per`` seconds, with bursts of up to ``burst`` calls."""

    calls: float
    per: float
    burst: int = 3

    @property
    def per_second(self) -> float:
        return self.calls / self.per


Clock = Callable[[], float]

#: The collection run in progress (a token of its own; set by :func:`sources.fetcher.run_deadline`), None outside
#: one: a breaker notes the run it opened in, so a stalled pool can give it its trial in the next run.
CURRENT_RUN: ContextVar[object | None] = ContextVar("CURRENT_RUN", default=None)


class TokenBucket:
    def __init__(self, rate: Rate | None, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self.capacity = float(max(1, rate.burst)) if rate else 0.0
        self.tokens = self.capacity
        self._stamp = clock()

    def _refill(self) -> None:
        if self.rate is None:
            return
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate.per_second)
        self._stamp = now

    def wait_time(self) -> float:
        """Seconds until a call is allowed (0 when one is allowed now)."""
        if self.rate is None:
            return 0.0
        self._refill()
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate.per_second

    def try_take(self) -> bool:
        if self.rate is None:
            return True
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    async def take(self, max_wait: float) -> bool:
        """Take a token, waiting up to ``max_wait`` seconds for one; False if it would take longer."""
        deadline = self._clock() + max_wait
        while not self.try_take():
            wait = self.wait_time()
            if self._clock() + wait > deadline:
                return False
            await asyncio.sleep(wait)
        return True


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures; lets one trial call through after a cool-down that
    doubles on every failed trial (up to ``max_cooldown``, which the pools of a stream lower to two of its
    intervals: see :meth:`cap`). A failed trial costs one request: the fetcher makes no retry past an open
    breaker."""

    def __init__(self, threshold: int = 3, cooldown: float = 30.0, max_cooldown: float = 600.0,
                 clock: Clock = time.monotonic) -> None:
        self.threshold = threshold
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.cooldown = cooldown
        self.state = BreakerState.CLOSED
        self.opened_at = 0.0
        self.opened_in: object | None = None  # the run it opened in (CURRENT_RUN), if any
        self._clock = clock

    def cap(self, longest: float) -> None:
        """Never wait longer than ``longest`` seconds between trials (see :class:`~sources.pools.Pool`)."""
        self.max_cooldown = min(self.max_cooldown, longest)
        self.base_cooldown = min(self.base_cooldown, longest)
        self.cooldown = min(self.cooldown, longest)

    def allow(self) -> bool:
        if self.state is BreakerState.OPEN and self._clock() >= self.opened_at + self.cooldown:
            self.state = BreakerState.HALF_OPEN
            return True
        return self.state is not BreakerState.OPEN

    def retry_in(self) -> float:
        return max(0.0, self.opened_at + self.cooldown - self._clock()) if self.state is BreakerState.OPEN else 0.0

    def force_trial(self) -> None:
        """Let one trial through before the cool-down is over (a pool with nothing else to ask)."""
        if self.state is BreakerState.OPEN:
            self.state = BreakerState.HALF_OPEN

    def withdraw_trial(self) -> None:
        """A forced trial that was not used (another provider answered first): open again, its cool-down running
        on from when it opened."""
        if self.state is BreakerState.HALF_OPEN:
            self.state = BreakerState.OPEN

    def on_success(self) -> None:
        self.state = BreakerState.CLOSED
        self.cooldown = self.base_cooldown

    def on_failure(self, consecutive: int) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self.cooldown = min(self.max_cooldown, self.cooldown * 2)
            self._open()
        elif self.state is BreakerState.CLOSED and consecutive >= self.threshold:
            self._open()

    def opened_in_an_earlier_run(self) -> bool:
        """Open since before the collection run in progress (False outside a run)."""
        run = CURRENT_RUN.get()
        return self.state is BreakerState.OPEN and run is not None and self.opened_in is not run

    def _open(self) -> None:
        self.state = BreakerState.OPEN
        self.opened_at = self._clock()
        self.opened_in = CURRENT_RUN.get()
