"""What the Redis hop adds: leader publish -> a follower replica's WebSocket clients, against the in-process path.

    python bench/replicas.py                 # real rate (1 update/s) and 100 updates/s, both paths
    python bench/replicas.py --quick         # fewer updates
    python bench/replicas.py --rounds 5      # more alternating rounds (the median of each figure is shown)

Both paths run the same WebSocket server (the hub, the connection manager and the spec's routes of ``ws/`` on
uvicorn, in a thread with its own event loop), with ``--clients`` aiohttp clients on ``/ws/market_data``:

- memory: the publisher hands each update to the server's loop (``call_soon_threadsafe(hub.publish, ...)``), as
  the scheduler's job would publish it in one process;
- redis: the publisher is the leader of a group (a ``RedisFanout`` holding the lease, in the bench's own loop):
  the fenced Lua publish into the stream, then the server, a follower, reads it with its XREAD tail into its hub.

The update is real data of market_data's size: CoinGecko's recorded markets answer cut to the top 60 coins
(~46 KB). Latency: from just before publish to when a client has the message (one clock: all in this process).
The redis-server is a private one on a free loopback port (Debian's binary). "added" is redis minus memory.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvicorn
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.catalog import SERVICE_NAMES  # noqa: E402
from ws.fanout import Role  # noqa: E402
from ws.hub import Hub  # noqa: E402
from ws.manager import ConnectionManager, Limits  # noqa: E402
from ws.redis_fanout import RedisFanout  # noqa: E402
from ws.routes import build_router  # noqa: E402
from ws.uvicorn_protocol import WebSocketProtocol  # noqa: E402

SERVICE = "market_data"
SENT = re.compile(rb'"sent":([0-9.eE+-]+)')
COINS = orjson.loads((ROOT / "sources/replay/coingecko/coins-markets.json").read_bytes())[:60]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no"], cwd=workdir, stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.3)  # a benchmark, not a test: the first connection retries anyway
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(10)


class Server:
    """The ws/ part of the app on uvicorn in a thread; with ``redis_url`` its hub is fed by a follower's tail."""

    def __init__(self, redis_url: str | None) -> None:
        self.hub = Hub()
        self.manager = ConnectionManager(self.hub, Limits(send_queue=4096))
        self.fanout: RedisFanout | None = None
        if redis_url:
            self.fanout = RedisFanout(self.hub, redis_url, SERVICE_NAMES, prefix="bench", replica="follower")
        self.port = free_port()
        self.loop = asyncio.new_event_loop()

        @asynccontextmanager
        async def lifespan(app: FastAPI) -> Any:
            if self.fanout is None:
                yield
                return
            async with self.fanout:
                yield

        app = FastAPI(lifespan=lifespan)
        app.include_router(build_router(self.manager, {}))
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", ws=WebSocketProtocol,
                                ws_per_message_deflate=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.server.serve(),),
                                       daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


async def client(session: aiohttp.ClientSession, url: str, latencies: list[float], ready: asyncio.Event,
                 expected: int) -> None:
    async with session.ws_connect(url, max_msg_size=0) as ws:
        ready.set()
        got = 0
        async for msg in ws:
            now = time.perf_counter()
            match = SENT.search(msg.data.encode()[:200]) if isinstance(msg.data, str) else None
            if match:
                latencies.append(now - float(match.group(1)))
                got += 1
                if got >= expected:
                    return


async def measure(server: Server, leader: RedisFanout | None, rate: float, count: int, clients: int) -> list[float]:
    latencies: list[float] = []
    warmup = 5
    async with aiohttp.ClientSession() as session:
        readies = [asyncio.Event() for _ in range(clients)]
        tasks = [asyncio.create_task(client(session, f"ws://127.0.0.1:{server.port}/ws/{SERVICE}", latencies,
                                            ready, warmup + count)) for ready in readies]
        for ready in readies:
            await ready.wait()
        await asyncio.sleep(0.5)  # subscriptions confirmed
        start = time.perf_counter()
        for i in range(warmup + count):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            data = {"sent": time.perf_counter(), "coins": COINS}
            if leader is not None:
                await leader.publish(SERVICE, data)
            else:
                server.loop.call_soon_threadsafe(server.hub.publish, SERVICE, data)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return sorted(latencies[warmup * clients:])


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def run(args: argparse.Namespace) -> None:
    phases = [("real", 1.0, 10 if args.quick else 20), ("100/s", 100.0, 300 if args.quick else 500)]
    rounds: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with redis_server() as url:
        leader = RedisFanout(Hub(), url, SERVICE_NAMES, prefix="bench", replica="leader", lease_ttl=30)
        await leader.__aenter__()
        while leader.role is not Role.LEADER:
            await asyncio.sleep(0.05)
        try:
            with Server(None) as memory, Server(url) as follower:
                # Rounds alternate the paths, so a burst of load elsewhere on the machine does not land on one.
                for _ in range(args.rounds):
                    for name, rate, count in phases:
                        for path, server, publisher in (("memory", memory, None), ("redis", follower, leader)):
                            values = await measure(server, publisher, rate, count, args.clients)
                            rounds.setdefault((path, name), []).append((pct(values, 0.5), pct(values, 0.99)))
        finally:
            await leader.__aexit__(None, None, None)
    size = len(orjson.dumps({"sent": 0.0, "coins": COINS})) / 1024
    print(f"replica hop benchmark: {os.cpu_count()} cores, update of {size:.1f} KiB, {args.clients} clients, "
          f"publisher, redis-server and server on one machine; median of {args.rounds} alternating rounds")
    print(f"{'rate':>6}  {'memory p50':>10}  {'memory p99':>10}  {'redis p50':>9}  {'redis p99':>9}  "
          f"{'added p50':>9}  {'added p99':>9}   (ms)")
    for name, _, _ in phases:
        m50, m99 = (statistics.median(v) for v in zip(*rounds[("memory", name)], strict=True))
        r50, r99 = (statistics.median(v) for v in zip(*rounds[("redis", name)], strict=True))
        print(f"{name:>6}  {m50:10.2f}  {m99:10.2f}  {r50:9.2f}  {r99:9.2f}  {r50 - m50:9.2f}  {r99 - m99:9.2f}")


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
