"""What one event-loop lag sample costs: the server's one sampler (ws/loop_lag.py, with its two listeners: the
/metrics histogram and /ws/runtime's reader) against the cheapest of the three samplers it replaced, /metrics's
own (a task sleeping the period, then a histogram observation; the other two sampled five times as often).

    python bench/loop_lag.py                 # 20,000 samples each, best of 5, interleaved

Each sampler runs alone on a fresh event loop with a tiny period, so the loop does nothing but sample; the CPU
time (process_time) per sample is its whole cost to the server, the loop's own wake-up included. The server samples
every 0.1 s (the replaced samplers: 0.1 s, 0.1 s and 0.5 s), so its cost per second is ten times the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ws.loop_lag import LagSinceRead, LoopLag

PERIOD = 1e-6


def histogram() -> Histogram:
    return Histogram("lag_seconds", "lag", registry=CollectorRegistry())


async def the_one(samples: int) -> None:
    lag = LoopLag(period=PERIOD, keep=300 * PERIOD / 0.1)  # as many samples kept as at 0.1 s
    LagSinceRead(lag)
    lag.watch(histogram().observe)
    done = asyncio.Event()
    seen = 0

    def count(_: float) -> None:  # the bench's own listener: it stops the run
        nonlocal seen
        seen += 1
        if seen == samples:
            done.set()

    lag.watch(count)
    with lag:
        await done.wait()


async def metrics_task(samples: int) -> None:
    """The replaced /metrics sampler, as it was: a task of its own sleeping the period."""
    observe = histogram().observe
    loop = asyncio.get_running_loop()
    for _ in range(samples):
        started = loop.time()
        await asyncio.sleep(PERIOD)
        observe(max(0.0, loop.time() - started - PERIOD))


def cost_us(run: Callable[[int], Coroutine[None, None, None]], samples: int) -> float:
    started = time.process_time()
    asyncio.run(run(samples))
    return (time.process_time() - started) / samples * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {"one sampler (callback, 2 listeners)": [], "/metrics's task (replaced)": []}
    for _ in range(args.repeats):
        runs["one sampler (callback, 2 listeners)"].append(cost_us(the_one, args.samples))
        runs["/metrics's task (replaced)"].append(cost_us(metrics_task, args.samples))
    print(f"CPU per event-loop lag sample, best of {args.repeats} x {args.samples:,} (loop start included):")
    for name, costs in runs.items():
        print(f"  {name:38} {min(costs):6.2f} us   (2 a second: {2 * min(costs):.1f} us/s)")


if __name__ == "__main__":
    main()
