"""The event loop's lag, as its readers see it: one sampler per server, read three ways.

How late the loop runs a callback due every :data:`PERIOD` seconds is how long everything else ready then
(every client's updates and replies, ``/healthz``) waited behind whatever held the loop. ``app.py`` builds the one
sampler (ws/loop_lag.py), starts and stops it with the lifespan, and hands it as :class:`LoopLagSamples` to its
readers: the scheduler stream (``loop_lag_ms``: p50/p99/max over five minutes), ``GET /ws/runtime``
(``loop_lag``: the worst since the last read, p50/p99 over the last minute) and ``/metrics``
(``event_loop_lag_seconds``: a histogram of every sample).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

#: Seconds between two samples: ten a second, so that a stall of 0.1 s or more always falls on a sample; at about
#: 7 µs a sample (bench/loop_lag.py) that is 0.007% of a core, less than the three samplers this one replaced.
PERIOD = 0.1


class LoopLagSamples(Protocol):
    """The samples of the event loop's lag, in seconds."""

    def recent(self, seconds: float) -> list[float]:
        """The lags sampled over the last ``seconds`` (at most the sampler keeps), oldest first."""
        ...

    def watch(self, listener: Callable[[float], None]) -> None:
        """Have ``listener`` called with each new sample (on the loop, so it must be quick)."""
        ...


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of a sorted, non-empty sequence: the value at rank ``q * n``."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
