"""Fan-out benchmark: our hub against a naive "for each client: await send" loop, same machine, same run.

    python bench/fanout.py                   # N = 1000 and 5000, both servers
    python bench/fanout.py --n 1000 --quick  # one size, shorter phases
    python bench/fanout.py --n 1000 --server hub --scrape 1   # the hub only, GET /metrics every second meanwhile

For each server and N it starts the server on 127.0.0.1, connects N aiohttp WebSocket clients (in two
processes, subscribed to market_data), then measures:

- RSS per idle connection: server RSS after connecting minus before, divided by N;
- paced: 10 updates, one every 0.5 s (the real update, about 6 KB, from replay mode): publish-to-receive
  latency p50/p99;
- burst: 20 updates published back to back: deliveries/s (N x 20 / time until the last one arrived) and p50/p99.

The hub server is the real app (``create_app``, replay data); the naive server (bench/harness.py's, the storm
bench's too) is what the spec's origin did:
under a lock, for each client ``await websocket.send_json(message)``, serialising once per client.
Both run uvicorn with the same options (permessage-deflate off).
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
from pathlib import Path
from typing import Any

from fastapi import Request, WebSocket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import NaiveServer, free_port, percentile, rss_bytes, serve

PATH = "/ws/market_data"

# -- servers --------------------------------------------------------------------------------------------

def _bench_routes(app: Any, publish: Any) -> None:
    """Add POST /bench/publish in front of every other route (Gradio is mounted at "/")."""
    from fastapi.routing import APIRoute

    async def run(count: int, interval: float, phase: str) -> dict[str, Any]:
        # Each update carries the time it was due (start + i * interval): latency is counted from then, so a
        # publisher that falls behind its schedule pays for it.
        start = time.time()

        async def go() -> None:
            for i in range(count):
                await publish(phase, i, start + i * interval)
                if interval:
                    await asyncio.sleep(max(0.0, start + (i + 1) * interval - time.time()))
        asyncio.get_running_loop().create_task(go())
        return {"started": count}

    async def settled(request: Request) -> dict[str, bool]:
        scheduler = getattr(request.app.state, "scheduler", None)
        return {"settled": scheduler is None or all(job.runs >= 1 for job in scheduler.stats.values())}

    app.router.routes.insert(0, APIRoute("/bench/publish", run, methods=["POST"]))
    app.router.routes.insert(0, APIRoute("/bench/settled", settled, methods=["GET"]))


def serve_hub(port: int, payload_file: str | None) -> None:
    from app import create_app
    from config import Settings

    settings = Settings(data_source="replay", interval_scale=100, port=port,
                        data_dir=Path(tempfile.mkdtemp()), ws_send_queue=64)
    app = create_app(settings)
    base: dict[str, Any] = json.loads(Path(payload_file).read_text()) if payload_file else {}

    async def publish(phase: str, i: int, due: float) -> None:
        app.state.hub.publish("market_data", {**base, "bench_phase": phase, "bench_i": i, "sent_at": due})

    _bench_routes(app, publish)
    serve(app, port, ws_max_size=settings.ws_max_message_bytes)


def serve_naive(port: int, payload_file: str | None) -> None:
    naive = NaiveServer(PATH, json.dumps({"service": "system", "type": "connection_established", "data": {}},
                                          separators=(",", ":")))  # what send_json sent
    base: dict[str, Any] = json.loads(Path(payload_file).read_text()) if payload_file else {}

    async def publish(phase: str, i: int, due: float) -> None:
        data = {**base, "bench_phase": phase, "bench_i": i, "sent_at": due}
        message = {"service": "market_data", "type": "update", "data": data, "timestamp": ""}

        async def send(websocket: WebSocket) -> None:
            await websocket.send_json(message)  # as the origin did: serialised once per client

        await naive.broadcast(send)

    app = naive.app()
    _bench_routes(app, publish)
    serve(app, port)


# -- clients --------------------------------------------------------------------------------------------

async def run_clients(port: int, n: int) -> None:
    import aiohttp

    records: dict[str, list[tuple[float, float]]] = {}  # phase -> [(sent_at, received_at)]
    closed = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        gate = asyncio.Semaphore(100)

        async def connect() -> Any:
            async with gate:
                error: Exception | None = None
                for attempt in range(5):
                    try:
                        return await session.ws_connect(f"http://127.0.0.1:{port}{PATH}",
                                                        compress=0, max_msg_size=0, autoping=True)
                    except (aiohttp.ClientError, OSError) as exc:
                        error = exc
                        await asyncio.sleep(0.2 * (attempt + 1))
                raise RuntimeError(f"could not connect: {error!r}")

        sockets = await asyncio.gather(*(connect() for _ in range(n)))

        async def read(ws: Any) -> None:
            nonlocal closed
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                text = msg.data
                at = text.rfind('"sent_at":')
                if at < 0:
                    continue
                received = time.time()
                # cheap field extraction (no full JSON parse): the client must not be the bottleneck
                end = text.find("}", at)
                sent_at = float(text[at + 10:end])
                p = text.rfind('"bench_phase":"', 0, at) + 15
                phase = text[p:text.find('"', p)]
                records.setdefault(phase, []).append((sent_at, received))
            closed += 1

        readers = [asyncio.create_task(read(ws)) for ws in sockets]
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
    print(json.dumps({"records": records, "closed_early": closed - n if closed > n else 0}), flush=True)


# -- orchestration --------------------------------------------------------------------------------------

def wait_http(url: str, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def settle(port: int, timeout: float = 90) -> None:
    """Wait until every scheduled job of the real app has run once: their first runs allocate (parsers, caches,
    the sentiment runner), and that must not be counted as the connections' memory."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"http://127.0.0.1:{port}/bench/settled", timeout=5).json()["settled"]:
            time.sleep(2.0)
            return
        time.sleep(0.5)
    raise RuntimeError("the app's first runs did not finish")


class Scraper:
    """GET /metrics every ``interval`` seconds while a measure runs, as Prometheus would (more often)."""

    def __init__(self, port: int, interval: float | None) -> None:
        import threading

        self.port, self.interval = port, interval
        self.stop = threading.Event()
        self.scrapes, self.bytes = 0, 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx

        assert self.interval is not None
        while not self.stop.wait(self.interval):
            try:
                response = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10)
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                self.scrapes += 1
                self.bytes += len(response.content)

    def start(self) -> Scraper:
        if self.interval:
            self.thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        if self.interval:
            self.thread.join(timeout=15)


def measure(kind: str, n: int, payload_file: str, quick: bool, scrape: float | None = None) -> dict[str, Any]:
    import httpx

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port),
                               "--payload", payload_file], env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        if kind == "hub":
            settle(port)
        time.sleep(1.0)
        before = rss_bytes(server.pid) / 1024
        halves = [n // 2, n - n // 2]
        clients = [subprocess.Popen([sys.executable, __file__, "--clients", str(k), "--port", str(port)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
                   for k in halves]
        for client in clients:
            assert client.stdout is not None
            line = client.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"client failed: {line!r}")
        time.sleep(2.0)
        after = rss_bytes(server.pid) / 1024
        scraper = Scraper(port, scrape).start()
        paced_count, burst_count = (4, 10) if quick else (10, 20)
        httpx.post(f"http://127.0.0.1:{port}/bench/publish",
                   params={"count": paced_count, "interval": 0.5, "phase": "paced"}, timeout=30)
        time.sleep(paced_count * 0.5 + 3)
        burst_start = time.time()
        httpx.post(f"http://127.0.0.1:{port}/bench/publish",
                   params={"count": burst_count, "interval": 0, "phase": "burst"}, timeout=30)
        time.sleep(8 if quick else 15)
        records: dict[str, list[list[float]]] = {"paced": [], "burst": []}
        for client in clients:
            assert client.stdin is not None and client.stdout is not None
            client.stdin.write("stop\n")
            client.stdin.flush()
            result = json.loads(client.stdout.read().strip().splitlines()[-1])
            for phase, pairs in result["records"].items():
                records[phase].extend(pairs)
            client.wait(timeout=60)
        scraper.finish()
    finally:
        server.terminate()
        server.wait(timeout=30)
    paced = [(r - s) * 1000 for s, r in records["paced"]]
    burst = [(r - s) * 1000 for s, r in records["burst"]]
    burst_end = max((r for _, r in records["burst"]), default=burst_start)
    return {
        "server": kind, "n": n,
        "rss_per_conn_kib": (after - before) / n,
        "paced_delivered": len(paced), "paced_expected": n * paced_count,
        "paced_p50_ms": percentile(paced, 0.5), "paced_p99_ms": percentile(paced, 0.99),
        "burst_delivered": len(burst), "burst_expected": n * burst_count,
        "deliveries_per_s": len(burst) / max(1e-9, burst_end - burst_start),
        "burst_p50_ms": percentile(burst, 0.5), "burst_p99_ms": percentile(burst, 0.99),
        "scrapes": scraper.scrapes, "scrape_kib": scraper.bytes / 1024 / max(1, scraper.scrapes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, action="append", help="client count (repeatable); default 1000, 5000")
    parser.add_argument("--quick", action="store_true", help="shorter phases")
    parser.add_argument("--server", choices=["hub", "naive"], action="append", help="which (repeatable); default both")
    parser.add_argument("--scrape", type=float, help="GET /metrics every this many seconds during the phases")
    parser.add_argument("--serve", choices=["hub", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--payload", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "hub":
        return serve_hub(args.port, args.payload)
    if args.serve == "naive":
        return serve_naive(args.port, args.payload)
    if args.clients:
        return asyncio.run(run_clients(args.port, args.clients))

    payload_file = capture_payload()
    rows = [measure(kind, n, payload_file, args.quick, args.scrape)
            for n in (args.n or [1000, 5000]) for kind in (args.server or ["hub", "naive"])]
    size = len(Path(payload_file).read_bytes())
    print(f"\nfan-out benchmark: {os.cpu_count()} cores, clients and server on one machine, "
          f"update of {size / 1024:.1f} KiB (replayed market_data)\n")
    header = (f"{'server':<7}{'N':>6}{'RSS/conn KiB':>14}{'paced p50 ms':>14}{'paced p99 ms':>14}"
              f"{'deliveries/s':>14}{'burst p50 ms':>14}{'burst p99 ms':>14}{'delivered':>12}")
    print(header)
    print("-" * len(header))
    for r in rows:
        delivered = (r["paced_delivered"] + r["burst_delivered"]) / (r["paced_expected"] + r["burst_expected"])
        print(f"{r['server']:<7}{r['n']:>6}{r['rss_per_conn_kib']:>14.1f}{r['paced_p50_ms']:>14.1f}"
              f"{r['paced_p99_ms']:>14.1f}{r['deliveries_per_s']:>14,.0f}{r['burst_p50_ms']:>14.1f}"
              f"{r['burst_p99_ms']:>14.1f}{delivered:>11.1%}")
    if args.scrape:
        print("\n" + "; ".join(f"{r['server']} {r['n']}: {r['scrapes']} scrapes of /metrics, "
                               f"{r['scrape_kib']:.0f} KiB each" for r in rows))


def capture_payload() -> str:
    """Run the app once in replay mode and keep its market_data payload: both servers send that."""
    import httpx

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen([sys.executable, __file__, "--serve", "hub", "--port", str(port)], env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        deadline = time.monotonic() + 30
        while True:
            response = httpx.get(f"http://127.0.0.1:{port}/api/market_data")
            if response.status_code == 200:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("no market_data from replay")
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)
    path = Path(tempfile.mkdtemp()) / "market_data.json"
    path.write_text(json.dumps(response.json()["data"]))
    return str(path)


if __name__ == "__main__":
    main()
