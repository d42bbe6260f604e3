"""The hub's publish alone, in one process, no sockets: what one update costs to number, serialise and offer to N
subscriber queues. The fan-out bench (bench/fanout.py) measures the whole server; this isolates the hot path, so
two versions of ws/hub.py can be compared in the same process, their repeats interleaved, without the noise of
clients and the network (and of whatever else the machine is doing at the time, which hits both alike).

    python bench/publish.py                                   # this tree's ws/hub.py
    python bench/publish.py --compare ../base/ws/hub.py       # and another version of it, interleaved
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Subscriber:
    """What the hub offers to: a queue that always has room (emptied between repeats, outside the timing)."""

    def __init__(self) -> None:
        self.queue: list[str] = []

    def offer(self, text: str) -> bool:
        self.queue.append(text)
        return True


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def repeat(hub: Any, subscribers: list[Subscriber], payload: dict[str, Any], updates: int) -> float:
    for subscriber in subscribers:
        subscriber.queue.clear()
    started = time.perf_counter()
    for _ in range(updates):
        hub.publish("market_data", payload)
    return (time.perf_counter() - started) / updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", type=Path, help="another ws/hub.py to measure beside this tree's")
    parser.add_argument("--n", type=int, default=1000, help="subscribers")
    parser.add_argument("--updates", type=int, default=100, help="updates per repeat")
    parser.add_argument("--repeats", type=int, default=60, help="repeats of each version, interleaved")
    args = parser.parse_args()
    versions = {"this tree": load(ROOT / "ws" / "hub.py", "hub_this")}
    if args.compare:
        versions[str(args.compare)] = load(args.compare, "hub_other")
    payload = {"coins": [{"id": f"coin{i}", "price": 1000.0 + i, "change": -1.5, "source": "replay"}
                         for i in range(100)], "status": "ok"}
    setups = {}
    for name, module in versions.items():
        hub, subscribers = module.Hub(), [Subscriber() for _ in range(args.n)]
        for subscriber in subscribers:
            hub.subscribe(subscriber, ["market_data"])
        setups[name] = (hub, subscribers)
    times: dict[str, list[float]] = {name: [] for name in versions}
    gc.disable()
    for i in range(args.repeats):
        order = list(setups.items())
        for name, (hub, subscribers) in order if i % 2 else reversed(order):  # neither always goes first
            times[name].append(repeat(hub, subscribers, payload, args.updates))
    gc.enable()
    size = len(json.dumps(payload)) / 1024
    print(f"hub.publish to {args.n} subscribers, update of {size:.1f} KiB, {args.repeats} x {args.updates} updates "
          "per version, interleaved")
    for name, values in times.items():
        print(f"  {name:<40} best {min(values) * 1e6:7.1f} us   median {statistics.median(values) * 1e6:7.1f} us"
              "   per update")


if __name__ == "__main__":
    main()
