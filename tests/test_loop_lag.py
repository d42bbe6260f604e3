"""The server's one event-loop lag sampler and its three readers: the scheduler stream, /ws/runtime, /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from services.jobs import Scheduler, lag_summary
from ws.loop_lag import LagSinceRead, LoopLag


class Samples:
    """A stand-in sampler (models.loop_lag.LoopLagSamples) the test feeds by hand, at one sample a second."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.listeners: list[Callable[[float], None]] = []

    def recent(self, seconds: float) -> list[float]:
        return self.lags[-int(seconds):]

    def watch(self, listener: Callable[[float], None]) -> None:
        self.listeners.append(listener)

    def add(self, *lags: float) -> None:
        for lag in lags:
            self.lags.append(lag)
            for listener in self.listeners:
                listener(lag)


async def test_the_sampler_runs_while_entered_and_tells_its_listeners() -> None:
    lag = LoopLag(period=0.01, keep=0.05)
    heard: list[float] = []
    lag.watch(heard.append)
    assert lag.recent(60) == []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    with lag:
        while len(heard) < 8:  # polling: a bound, not a pace
            assert loop.time() < deadline, "no samples"
            await asyncio.sleep(0.01)
    stopped = len(heard)
    assert all(sample >= 0 for sample in heard)
    assert lag.recent(60) == heard[-5:]  # it keeps `keep` seconds' worth: 5 samples
    assert lag.recent(0.02) == heard[-2:]
    for _ in range(5):  # stopped: nothing is due any more
        await asyncio.sleep(0.02)
    assert len(heard) == stopped


async def test_a_listener_that_raises_does_not_stop_the_sampling() -> None:
    lag = LoopLag(period=0.01)
    heard: list[float] = []

    def broken(sample: float) -> None:
        heard.append(sample)
        raise RuntimeError("a broken reader")

    lag.watch(broken)
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, context: None)  # the loop would log each raise
    deadline = loop.time() + 30
    with lag:
        while len(heard) < 3:
            assert loop.time() < deadline, "sampling stopped after the first raise"
            await asyncio.sleep(0.01)


def test_ws_runtime_reads_the_worst_since_its_last_read_and_the_last_minute_in_ms() -> None:
    samples = Samples()
    reader = LagSinceRead(samples)
    assert reader.read() == {"max_since_last_read_ms": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "samples": 0}
    samples.add(0.25, *[0.001] * 98, 0.004)  # the 250 ms more than a minute ago
    assert reader.read() == {"max_since_last_read_ms": 250.0, "p50_ms": 1.0, "p99_ms": 4.0, "samples": 60}
    samples.add(0.002)
    assert reader.read()["max_since_last_read_ms"] == 2.0  # the 250 ms was reported already
    assert LagSinceRead(None).read()["samples"] == 0  # a manager built without a sampler


def test_the_scheduler_stream_sums_up_five_minutes_in_ms() -> None:
    samples = Samples()
    assert lag_summary(samples) is None
    samples.add(*[0.002] * 400, 0.5)
    assert lag_summary(samples) == {"p50": 2.0, "p99": 2.0, "max": 500.0, "samples": 300.0}
    scheduler = Scheduler(lambda service, data: None, loop_lag=samples)
    assert scheduler.snapshot()["loop_lag_ms"] == lag_summary(samples)
    assert Scheduler(lambda service, data: None).snapshot()["loop_lag_ms"] is None
