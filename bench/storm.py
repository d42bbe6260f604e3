"""Reconnect storm: N clients connecting within one second (as after a deploy), this server against a bare one.

    python bench/storm.py --n 5000                # the storm, hub then bare FastAPI
    python bench/storm.py --n 5000 --overload     # while market_data is offered 10 times a second
    python bench/storm.py --n 2000 --only hub

For each server: ``--base`` clients connect first and read market_data (they must keep getting updates), then
N clients connect, spread evenly over ``--spread`` seconds, from ``--workers`` processes (aiohttp,
TCPConnector(limit=0), 127.0.0.1 only). Each storm client counts as established once it has its confirmation
and its snapshot (the latest market_data). Meanwhile ``/healthz`` is asked every 50 ms.

Printed per server: established/N, time until the last was established, p50/p99 of the per-client time to
snapshot, ``/healthz`` p50/p99/max during the storm, updates the base clients got during the storm (and their
longest gap), and in --overload mode the deliveries/s.

``hub`` is the real app (``python app.py``, replay data at the real pace: market_data every 5 s; or INTERVAL_SCALE
0.02 with --overload: 10 a second). ``bare`` is the naive server of bench/harness.py on the same uvicorn settings:
it accepts, sends a greeting and the same snapshot text, and sends that text to every client at the hub's pace
(every 5 s, or 10 times a second with --overload) in the spec origin's naive loop (for each client: ``await
send``). *cpu ms/client*: the server's CPU time during the storm, less its idle rate before it, over N.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, WebSocket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from bench.harness import ROOT, AppProcess, NaiveServer, free_port, percentile, raise_fd_limit, serve

PATH = "/ws/market_data"


# -- the bare server ----------------------------------------------------------------------------------------

def serve_bare(port: int, snapshot_file: str, publish_hz: float) -> None:
    """The naive server: it greets, sends the snapshot, and sends that text again to everyone at the hub's pace."""
    raise_fd_limit()
    snapshot = Path(snapshot_file).read_text()
    greeting = json.dumps({"service": "system", "type": "connection_established",
                           "data": {"message": "Connected", "endpoint": PATH}})
    bare = NaiveServer(PATH, greeting, snapshot)

    async def send_snapshot(websocket: WebSocket) -> None:
        await websocket.send_text(snapshot)

    async def publisher() -> None:
        while True:
            await asyncio.sleep(1 / publish_hz)
            await bare.broadcast(send_snapshot)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(publisher()) if publish_hz > 0 else None
        yield
        if task is not None:
            task.cancel()

    serve(bare.app(lifespan), port, backlog=8192)


# -- client workers ------------------------------------------------------------------------------------------

def _is_update(text: str) -> bool:
    head = text[:160]
    return '"type":"update"' in head or '"type": "update"' in head


class StormClients:
    """``count`` clients, client i connecting at start_at + i * spread / count; all read until end_at."""

    def __init__(self, port: int, count: int, start_at: float, spread: float, end_at: float) -> None:
        self.url = f"http://127.0.0.1:{port}{PATH}"
        self.count, self.start_at, self.spread, self.end_at = count, start_at, spread, end_at
        self.established: list[float | None] = [None] * count  # seconds after start_at: greeting + snapshot in
        self.updates: list[list[float]] = [[] for _ in range(count)]  # arrival times of later updates
        self.failures: dict[str, int] = {}
        self.closes: dict[str, int] = {}

    async def connect(self, session: Any) -> Any:
        import aiohttp

        for attempt in range(40):
            try:
                return await session.ws_connect(self.url, compress=0, max_msg_size=0, autoping=True,
                                                timeout=aiohttp.ClientWSTimeout(ws_close=5))
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                self.failures[type(exc).__name__] = self.failures.get(type(exc).__name__, 0) + 1
                await asyncio.sleep(min(2.0, 0.1 * (attempt + 1)))
        return None

    async def one(self, session: Any, i: int) -> None:
        import aiohttp

        await asyncio.sleep(max(0.0, self.start_at + i * self.spread / self.count - time.time()))
        ws = await self.connect(session)
        if ws is None:
            return
        confirmed = False
        try:
            while time.time() < self.end_at:
                msg = await ws.receive(timeout=max(0.1, self.end_at - time.time()))
                if msg.type != aiohttp.WSMsgType.TEXT:
                    self.closes[str(ws.close_code)] = self.closes.get(str(ws.close_code), 0) + 1
                    return
                if _is_update(msg.data):
                    if self.established[i] is None and confirmed:
                        self.established[i] = time.time() - self.start_at
                    else:
                        self.updates[i].append(time.time())
                elif "connection_established" in msg.data[:200]:
                    confirmed = True
        except TimeoutError:
            pass
        finally:
            await ws.close()

    async def run(self) -> dict[str, Any]:
        import aiohttp

        raise_fd_limit()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await asyncio.gather(*(self.one(session, i) for i in range(self.count)))
        return {"established": self.established, "updates": self.updates, "failures": self.failures,
                "closes": self.closes}


def worker_main(args: argparse.Namespace) -> None:
    result = asyncio.run(StormClients(args.port, args.count, args.start_at, args.spread, args.end_at).run())
    json.dump(result, sys.stdout)


def spawn_workers(port: int, n: int, workers: int, start_at: float, spread: float,
                  end_at: float) -> list[subprocess.Popen[bytes]]:
    procs = []
    for w in range(workers):
        count = n // workers + (1 if w < n % workers else 0)
        if count:
            procs.append(subprocess.Popen(
                [sys.executable, __file__, "--worker", "--port", str(port), "--count", str(count),
                 "--start-at", str(start_at + w * spread / n), "--spread", str(spread), "--end-at", str(end_at)],
                stdout=subprocess.PIPE, cwd=ROOT))
    return procs


def collect(procs: list[subprocess.Popen[bytes]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"established": [], "updates": [], "failures": {}, "closes": {}}
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            print(f"a client worker failed with exit code {proc.returncode}", file=sys.stderr)
        part = json.loads(out or b"{}") if proc.returncode == 0 else {}
        merged["established"] += part.get("established", [])
        merged["updates"] += part.get("updates", [])
        for key in ("failures", "closes"):
            for name, value in part.get(key, {}).items():
                merged[key][name] = merged[key].get(name, 0) + value
    return merged


async def probe_health(url: str, until: float) -> list[tuple[float, float]]:
    """(asked at, seconds to answer) every 50 ms until ``until``; a timeout counts as 5 s."""
    samples = []
    async with httpx.AsyncClient(timeout=5) as client:
        while time.time() < until:
            asked = time.time()
            try:
                await client.get(url)
                samples.append((asked, time.time() - asked))
            except httpx.HTTPError:
                samples.append((asked, 5.0))
            await asyncio.sleep(max(0.0, 0.05 - (time.time() - asked)))
    return samples


# -- one run against one server ------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_storm(port: int, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    now = time.time()
    base_end = now + 3 + args.hold + args.spread + 2
    base = spawn_workers(port, args.base, 1, now + 0.1, 0.5, base_end) if args.base else []
    time.sleep(3)  # the base clients connect and get their snapshots before the storm
    idle_cpu, idle_at = cpu_seconds(pid), time.time()
    time.sleep(1.5)
    idle_rate = (cpu_seconds(pid) - idle_cpu) / (time.time() - idle_at)  # background work: polls, base clients
    start_at = time.time()
    cpu_before = cpu_seconds(pid)
    end_at = start_at + args.spread + args.hold
    storm = spawn_workers(port, args.n, args.workers, start_at, args.spread, end_at)
    health = asyncio.run(probe_health(f"http://127.0.0.1:{port}/healthz", end_at))
    result = collect(storm)
    base_result = collect(base)
    done = [t for t in result["established"] if t is not None]
    all_in = max(done) if len(done) == args.n else None
    storm_cpu = cpu_seconds(pid) - cpu_before - idle_rate * (time.time() - start_at)
    window_end = start_at + (all_in if all_in is not None else args.spread + args.hold)
    during = [(asked, took) for asked, took in health if start_at <= asked <= window_end]
    base_updates, base_gap = 0, 0.0
    for arrivals in base_result["updates"]:
        inside = [t for t in arrivals if start_at <= t <= window_end]
        base_updates += len(inside)
        marks = [start_at, *inside, window_end]
        base_gap = max(base_gap, max(b - a for a, b in itertools.pairwise(marks)))
    deliveries = sum(len(u) for u in result["updates"])
    return {
        "established": len(done), "all_in_s": all_in, "snapshot_p50_s": percentile(done, 0.5),
        "snapshot_p99_s": percentile(done, 0.99),
        "healthz_p50_ms": percentile([t for _, t in during], 0.5) * 1000,
        "healthz_p99_ms": percentile([t for _, t in during], 0.99) * 1000,
        "healthz_max_ms": max((t for _, t in during), default=float("nan")) * 1000,
        "base_clients": args.base, "base_updates_during": base_updates, "base_max_gap_s": base_gap,
        "deliveries_per_s": deliveries / args.hold if args.hold else 0.0,
        "cpu_ms_per_client": storm_cpu / args.n * 1000,
        "failures": result["failures"], "closes": result["closes"],
    }


def bench_hub(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    scale = 0.02 if args.overload else 1.0
    env = {"LOG_LEVEL": "warning", "WS_PER_MESSAGE_DEFLATE": "false"}
    server = AppProcess(port=free_port(), interval_scale=scale, env=env).start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the snapshot must exist before the storm
            response = httpx.get(server.url("/api/market_data"), timeout=5)
            if response.status_code == 200:
                break
            time.sleep(0.5)
        snapshot = httpx.get(server.url("/api/market_data"), timeout=5).text
        result = run_storm(server.port, server.pid, args)
    finally:
        code, _took = server.terminate()
    result["server_exit"] = code
    return result, snapshot


def bench_bare(args: argparse.Namespace, snapshot: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        file.write(snapshot)
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(port), "--snapshot", file.name,
                             "--publish-hz", "10" if args.overload else "0.2"], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        return run_storm(port, proc.pid, args)
    finally:
        proc.terminate()
        proc.wait(15)
        os.unlink(file.name)


# -- the app's own share of a connection's set-up, without sockets ----------------------------------------------

class StandInSocket:
    """What ConnectionManager.serve needs of a WebSocket: accept, send_text, receive (until hung up), close."""

    def __init__(self) -> None:
        self.sent = 0
        self.gone = asyncio.Event()

    async def accept(self) -> None:
        pass

    async def send_text(self, text: str) -> None:
        self.sent += 1

    async def receive(self) -> dict[str, str]:
        await self.gone.wait()
        return {"type": "websocket.disconnect"}

    async def close(self, code: int, reason: str) -> None:
        pass


async def setup_cost(n: int) -> dict[str, float]:
    """µs per connection of ConnectionManager.serve (until the greeting and snapshot are sent) and of its end,
    against a bare handler that awaits the same sends; one process, no sockets, so only the app's own work."""
    from models.catalog import ENDPOINTS
    from ws.hub import Hub
    from ws.manager import ConnectionManager, Limits

    hub = Hub()
    hub.publish("market_data", {"blob": "x" * 45_000})
    manager = ConnectionManager(hub, Limits())
    endpoint = next(e for e in ENDPOINTS if e.path == PATH)

    async def timed(handler: Callable[[StandInSocket], Awaitable[None]], sends: int) -> tuple[float, float]:
        """µs per connection: ``handler`` until each socket has had ``sends`` sends, then until all have ended."""
        sockets = [StandInSocket() for _ in range(n)]
        started = time.perf_counter()
        tasks = [asyncio.create_task(handler(s)) for s in sockets]
        while sockets[-1].sent < sends:
            await asyncio.sleep(0)
        greeted = time.perf_counter()
        for s in sockets:
            s.gone.set()
        await asyncio.gather(*tasks)
        return (greeted - started) / n * 1e6, (time.perf_counter() - greeted) / n * 1e6

    serve_us, end_us = await timed(lambda s: manager.serve(s, endpoint, PATH), 3)  # type: ignore[arg-type]
    snapshot = hub.latest("market_data")
    assert snapshot is not None

    async def bare(s: StandInSocket) -> None:
        await s.accept()
        await s.send_text("greeting")
        await s.send_text(snapshot.text)
        await s.receive()

    bare_us, _ = await timed(bare, 2)
    return {"serve_us": serve_us, "end_us": end_us, "bare_us": bare_us}


def show(name: str, r: dict[str, Any], n: int) -> None:
    all_in = f"{r['all_in_s']:.2f}" if r["all_in_s"] is not None else "never"
    print(f"{name:5} {r['established']:>6,}/{n:<6,} {all_in:>9} {r['snapshot_p50_s']:>8.2f} {r['snapshot_p99_s']:>8.2f}"
          f" {r['healthz_p50_ms']:>9.1f} {r['healthz_p99_ms']:>9.1f} {r['healthz_max_ms']:>9.1f}"
          f" {r['base_updates_during']:>9,} {r['base_max_gap_s']:>8.2f} {r['deliveries_per_s']:>11,.0f}"
          f" {r['cpu_ms_per_client']:>9.2f}")
    if r["failures"] or r["closes"]:
        print(f"      connect failures (retried): {r['failures']}  closes: {r['closes']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--base", type=int, default=100, help="clients connected before the storm")
    parser.add_argument("--spread", type=float, default=1.0, help="seconds over which the N clients connect")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds to keep reading after the spread")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--overload", action="store_true", help="market_data offered 10 times a second")
    parser.add_argument("--only", choices=("hub",), help="skip the bare server")
    # internal: worker processes and the bare server
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--end-at", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", help=argparse.SUPPRESS)
    parser.add_argument("--publish-hz", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--setup-cost", action="store_true",
                        help="only the app's own set-up work per connection, in-process, against a bare handler")
    args = parser.parse_args()
    if args.setup_cost:
        runs = [asyncio.run(setup_cost(args.n)) for _ in range(3)]
        best = {key: min(run[key] for run in runs) for key in runs[0]}
        print(f"set-up in the app, {args.n:,} connections, best of 3: serve() until greeted {best['serve_us']:.1f} us,"
              f" its end {best['end_us']:.1f} us; a bare handler {best['bare_us']:.1f} us")
        return None
    if args.worker:
        return worker_main(args)
    if args.serve_bare:
        return serve_bare(args.serve_bare, args.snapshot, args.publish_hz)
    raise_fd_limit()
    mode = "overload: market_data 10/s" if args.overload else "market_data every 5 s"
    print(f"reconnect storm: {os.cpu_count()} cores shared by server and clients, {args.n:,} clients within "
          f"{args.spread:g} s, {args.base} already connected, {mode}, hold {args.hold:g} s")
    results: dict[str, dict[str, Any]] = {}
    results["hub"], snapshot = bench_hub(args)
    if args.only is None:
        results["bare"] = bench_bare(args, snapshot)
    print("\nserver  established  all in s  snap p50  snap p99  hz p50 ms  hz p99 ms  hz max ms"
          "  base upd  base gap  deliveries/s  cpu ms/client")
    for name, result in results.items():
        show(name, result, args.n)
    if "hub" in results and "bare" in results and results["hub"]["all_in_s"] and results["bare"]["all_in_s"]:
        print(f"\nhub / bare time to re-establish all: {results['hub']['all_in_s'] / results['bare']['all_in_s']:.2f}x")


if __name__ == "__main__":
    main()
