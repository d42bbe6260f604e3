"""Soak: the real app under steady mixed load for a set time; does memory, the task count or open files creep?

    python bench/soak.py                        # 30 minutes, 1,000 subscribers, on a filled history
    python bench/soak.py --history empty        # the same from an empty history: the buffers fill during it
    python bench/soak.py --minutes 10 --out soak.csv
    python bench/soak.py --analyse soak.csv --warmup 2   # its memory figures again, no run
    python bench/soak.py --minutes 1 --subscribers 100 --churn 5 --stalled 5   # a smoke run

Runs ``python app.py`` (replay data, INTERVAL_SCALE 0.5 by default, so twice the real pace) on 127.0.0.1 and,
from two client processes (aiohttp, TCPConnector(limit=0)):

- ``--subscribers`` clients that read everything: most on /ws/market_data, some on /ws/all and /ws/master;
  each update's delivery delay (arrival minus its ``timestamp``) is kept per window;
- churn: ``--churn`` clients a second connect, wait for their greeting, stay 1-5 s and leave;
- ``--stalled`` clients that complete the handshake and never read (raw sockets); each reconnects after a minute;
- ``--flooders`` clients sending bad messages as fast as they can (rate-limited, closed, reconnect);
- two REST readers: history (``/api/history/...``) and export (``/api/export/...``, the last two minutes).

Every ``--sample`` seconds: server RSS and open file descriptors (/proc), asyncio tasks, queued messages, loop
lag, the C heap (glibc's ``mallinfo2``: in use and free) and the bytes held by the resume rings (all from
``GET /ws/runtime``), ``/healthz`` time. At the end: least-squares slopes after the warm-up (the first
``--warmup`` minutes, default a fifth of the run, at least one minute) and over the second half of the run, the
median RSS per 5 minutes, the per-window p99 delivery delay, and any traceback or ERROR in the server's log.

The resume rings (``RESUME_MAX_UPDATES``, 300 updates per service) start empty with an empty history and fill up
over 300 intervals of each service: at INTERVAL_SCALE 0.5 market_data's (41 KiB an update) in about 12 min, news's
in over 2 h; 46 MiB in all once full (measured on a history made by a fast replay). That growth is bounded by
construction and measured by the server itself, so the RSS target is on the growth beyond theirs, and both are
printed. The history grows too, and with it the work of its readers (a coin's series reads up to 500 market
updates) and the memory glibc keeps after freeing it (``free`` in the C heap's figures): from an empty history
RSS rose +15.6 MiB/10 min over a 30-minute run, +10.4 beyond the rings' growth and +3.7 in its second half. That
is a server warming up, not one that has run for a while, so by default the soak first fills a new history
(``--history filled``): the real server replays at INTERVAL_SCALE 0.01 with no client until every resume ring is
full (about 4 min), then the measured server starts on it, as after a restart. ``--history empty`` measures the
warming up; ``--data-dir`` reuses a history as it is.

Exit status 1 if a target is missed: RSS beyond the rings' growth under 1 MiB per 10 min, tasks and fds flat
(within ``--task-slack``/``--fd-slack`` per 10 min), no traceback or ERROR.

RSS is judged through each minute's median, not by a least-squares line through every sample: the server gives
the heap's free pages back every minute (``malloc_trim``) and RSS then dips by 10-25 MiB for the next 5-15 s,
back to the level it held before as the freed memory is used again. One to three samples of a minute's twelve
fall in the dip, at a depth that varies from minute to minute, and a line through all of them follows those
depths: over the first 11 minutes after the warm-up of a 60-minute run, the minute medians rose +0.13 MiB/10 min
and the line through every sample +2.17 (over the whole run: +0.11 and +0.27). The median of a minute is the
level RSS comes back to; both slopes are printed. ``--analyse`` reads them again from a run's CSV (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    ROOT,
    AppProcess,
    open_fds,
    percentile,
    raise_fd_limit,
    rss_bytes,
    rss_parts,
    slope,
    tracebacks,
)

WINDOW = 60.0  # seconds per delivery-delay window


# -- client processes ----------------------------------------------------------------------------------------

def _delay(text: str, now: float) -> float | None:
    """Arrival minus the update's own ``timestamp`` (the envelope ends with it and ``seq``); None if not an update."""
    if '"type":"update"' not in text[:160] or '"restored":true' in text[-80:]:
        return None
    at = text.rfind('"timestamp":"')
    if at < 0:
        return None
    stamp = text[at + 13:text.index('"', at + 13)]
    try:
        from datetime import datetime
        return now - datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Worker:
    def __init__(self, port: int, end_at: float) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.port = port
        self.end_at = end_at
        self.delays: dict[int, list[float]] = {}  # window index -> delivery delays
        self.counts: dict[str, int] = {}

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def left(self) -> float:
        return self.end_at - time.time()

    async def subscriber(self, session: Any, path: str, start: float) -> None:
        import aiohttp

        while self.left() > 0:
            try:
                async with session.ws_connect(self.base + path, compress=0, max_msg_size=0) as ws:
                    self.count("subscriber_connects")
                    while self.left() > 0:
                        msg = await ws.receive(timeout=max(0.1, self.left()))
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            self.count(f"subscriber_closed_{ws.close_code}")
                            break
                        now = time.time()
                        delay = _delay(msg.data, now)
                        if delay is not None:
                            self.delays.setdefault(int((now - start) // WINDOW), []).append(delay)
            except (TimeoutError, aiohttp.ClientError, OSError):
                if self.left() > 1:
                    self.count("subscriber_errors")
                    await asyncio.sleep(1)

    async def churner(self, session: Any) -> None:
        import aiohttp

        try:
            async with session.ws_connect(self.base + "/ws/market_data", compress=0, max_msg_size=0) as ws:
                await ws.receive(timeout=10)  # the greeting
                self.count("churn_ok")
                stay = time.time() + random.uniform(1, 5)
                with contextlib.suppress(asyncio.TimeoutError):  # nothing more within the stay: fine
                    while time.time() < stay:
                        msg = await ws.receive(timeout=max(0.05, stay - time.time()))
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            self.count(f"churn_closed_{ws.close_code}")
                            break
        except (TimeoutError, aiohttp.ClientError, OSError):
            self.count("churn_errors")

    async def churn(self, session: Any, per_second: float) -> None:
        tasks: set[asyncio.Task[None]] = set()
        next_at = time.time()
        while self.left() > 6:
            task = asyncio.create_task(self.churner(session))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            next_at += 1 / per_second
            await asyncio.sleep(max(0.0, next_at - time.time()))
        await asyncio.gather(*tasks, return_exceptions=True)

    async def stalled(self) -> None:
        """Handshake by hand, then never read; after a minute (or once dropped) start again."""
        request = (f"GET /ws/all HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        while self.left() > 2:
            writer = None
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(request)
                await writer.drain()
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                self.count("stalled_connects")
                cast(asyncio.Transport, writer.transport).pause_reading()  # never read again
                await asyncio.sleep(min(60.0, max(0.0, self.left() - 1)))
            except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                self.count("stalled_errors")
                await asyncio.sleep(1)
            finally:
                if writer is not None:
                    writer.transport.abort()

    async def flooder(self, session: Any) -> None:
        import aiohttp

        junk = ["not json", "[1,2]", '{"action":"fly"}', '{"action":"subscribe","service":"nope"}', "{" * 100]
        while self.left() > 2:
            try:
                async with session.ws_connect(self.base + "/ws", compress=0, max_msg_size=0) as ws:
                    self.count("flooder_connects")
                    while self.left() > 2 and not ws.closed:
                        await ws.send_str(random.choice(junk))
                        await asyncio.sleep(0.005)
                    self.count(f"flooder_closed_{ws.close_code}")
            except (aiohttp.ClientError, OSError, ConnectionResetError):
                self.count("flooder_cut_off")  # the server closed it (1008) while it was sending: expected
            await asyncio.sleep(0.5)

    async def rest_reader(self, export: bool) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as client:
            while self.left() > 2:
                try:
                    if export:
                        since = int(time.time() - 120)
                        async with client.stream("GET", "/api/export/market_data", params={"since": since}) as r:
                            async for _ in r.aiter_bytes():
                                pass
                    else:
                        await client.get("/api/history/market_data", params={"limit": 50})
                        await client.get("/api/history/market_data/bitcoin", params={"limit": 500})
                    self.count("export_ok" if export else "history_ok")
                except httpx.HTTPError:
                    self.count("rest_errors")
                await asyncio.sleep(1.0)

    async def run(self, role: dict[str, Any]) -> dict[str, Any]:
        import aiohttp

        raise_fd_limit()
        start = role["start"]
        paths = ["/ws/market_data"] * 8 + ["/ws/all", "/ws/master"]
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            jobs = [self.subscriber(session, paths[i % len(paths)], start) for i in range(role["subscribers"])]
            if role["churn"]:
                jobs.append(self.churn(session, role["churn"]))
            jobs += [self.stalled() for _ in range(role["stalled"])]
            jobs += [self.flooder(session) for _ in range(role["flooders"])]
            jobs += [self.rest_reader(export) for export in (False, True)[:role["rest"]]]
            tasks = [asyncio.ensure_future(job) for job in jobs]
            pending: set[asyncio.Future[Any]] = set()
            if tasks:  # a worker may have no clients of its kind (e.g. when only making a history)
                _, pending = await asyncio.wait(tasks, timeout=max(1.0, self.left() + 15))
            for task in pending:  # a close handshake the server never answered: do not hang the report
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self.counts["unfinished_at_end"] = len(pending)  # e.g. a reconnect still in its handshake
        windows = {str(w): {"n": len(d), "p50": percentile(d, 0.5), "p99": percentile(d, 0.99)}
                   for w, d in sorted(self.delays.items())}
        return {"counts": self.counts, "windows": windows}


def worker_main(role_json: str) -> None:
    role = json.loads(role_json)
    result = asyncio.run(Worker(role["port"], role["end_at"]).run(role))
    json.dump(result, sys.stdout)


# -- the driver ----------------------------------------------------------------------------------------------

def sample(server: AppProcess, client: httpx.Client, t0: float) -> dict[str, Any]:
    asked = time.monotonic()
    try:
        client.get(server.url("/healthz"))
        healthz = time.monotonic() - asked
    except httpx.HTTPError:
        healthz = float("nan")
    runtime: dict[str, Any] = {}
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        runtime = client.get(server.url("/ws/runtime")).json()["data"]
    lag = runtime.get("loop_lag", {})
    heap = runtime.get("malloc") or {}
    rings = runtime.get("resume_rings") or {}
    parts = rss_parts(server.pid)
    return {"t": time.time() - t0, "rss_mib": rss_bytes(server.pid) / 2**20,
            "anon_mib": parts.get("RssAnon", 0) / 2**20, "file_mib": parts.get("RssFile", 0) / 2**20,
            "heap_used_mib": heap.get("in_use", 0) / 2**20, "heap_free_mib": heap.get("free", 0) / 2**20,
            "rings_mib": rings.get("text_bytes", 0) / 2**20, "rings_full": rings.get("updates", 0) / max(
                1, rings.get("capacity", 0)),
            "fds": open_fds(server.pid),
            "tasks": runtime.get("asyncio_tasks"), "connections": runtime.get("connections"),
            "queued": runtime.get("queued_messages"), "max_queue": runtime.get("max_queue"),
            "lag_max_ms": lag.get("max_since_last_read_ms"), "lag_p99_ms": lag.get("p99_ms"),
            "healthz_ms": healthz * 1000}


def per_10min(samples: list[dict[str, Any]], key: str) -> float:
    return slope([s["t"] for s in samples], [s[key] for s in samples]) * 600.0


def rss_windows(samples: list[dict[str, Any]], minutes: float = 5.0,
                least: int = 1) -> list[tuple[float, float, float]]:
    """Per window of ``minutes`` with at least ``least`` samples: its start (min), the median RSS and the median
    C heap in use (MiB). RSS swings by a few MiB with the number of clients connected at the instant; a median
    per window shows the trend."""
    windows: dict[int, list[dict[str, Any]]] = {}
    for s in samples:
        windows.setdefault(int(s["t"] // (minutes * 60)), []).append(s)
    return [(w * minutes, percentile([s["rss_mib"] for s in group], 0.5),
             percentile([s["heap_used_mib"] for s in group], 0.5)) for w, group in sorted(windows.items())
            if len(group) >= least]


def minute_medians_per_10min(samples: list[dict[str, Any]]) -> float:
    """The slope through each minute's median RSS (see the module's docstring: the minute's trim makes a
    sawtooth that samples a few seconds apart catch unevenly; the medians do not)."""
    windows = rss_windows(samples, minutes=1.0, least=3)  # not a minute cut short
    return slope([start * 60 for start, _, _ in windows], [rss for _, rss, _ in windows]) * 600.0 \
        if len(windows) > 1 else float("nan")


def analyse(samples: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    after = [s for s in samples if s["t"] >= warmup_s and s["tasks"] is not None]
    # The slope after the warm-up weighs the early minutes as much as the late ones: a rise that levels off
    # still shows there. The slope over the second half of the run says whether it has levelled off.
    late = [s for s in after if s["t"] >= (after[0]["t"] + after[-1]["t"]) / 2] if after else []
    per10 = 600.0
    ts = [s["t"] for s in after]
    return {
        "samples_after_warmup": len(after),
        "rss_mib_per_10min": per_10min(after, "rss_mib"),
        "rss_mib_per_10min_second_half": per_10min(late, "rss_mib"),
        "rss_minute_medians_mib_per_10min": minute_medians_per_10min(after),
        "rss_minute_medians_mib_per_10min_second_half": minute_medians_per_10min(late),
        "anon_mib_per_10min": per_10min(after, "anon_mib"),
        "file_mib_per_10min": per_10min(after, "file_mib"),
        "heap_used_mib_per_10min": per_10min(after, "heap_used_mib"),
        "heap_free_mib_per_10min": per_10min(after, "heap_free_mib"),
        "heap_used_mib_per_10min_second_half": per_10min(late, "heap_used_mib"),
        "rings_mib_per_10min": per_10min(after, "rings_mib"),
        "rings_mib_per_10min_second_half": per_10min(late, "rings_mib"),
        "rings_last_mib": after[-1]["rings_mib"] if after else float("nan"),
        "rings_full_last": after[-1]["rings_full"] if after else float("nan"),
        "tasks_per_10min": slope(ts, [s["tasks"] for s in after]) * per10,
        "fds_per_10min": slope(ts, [s["fds"] for s in after]) * per10,
        "rss_first_mib": after[0]["rss_mib"] if after else float("nan"),
        "rss_last_mib": after[-1]["rss_mib"] if after else float("nan"),
        "tasks_range": (min(s["tasks"] for s in after), max(s["tasks"] for s in after)) if after else (0, 0),
        "fds_range": (min(s["fds"] for s in after), max(s["fds"] for s in after)) if after else (0, 0),
        "healthz_p99_ms": percentile([s["healthz_ms"] for s in after], 0.99),
        "lag_p99_ms": percentile([s["lag_p99_ms"] or 0.0 for s in after], 0.99),
        "lag_max_ms": max((s["lag_max_ms"] or 0.0 for s in after), default=0.0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--churn", type=float, default=20.0, help="connects (and disconnects) per second")
    parser.add_argument("--stalled", type=int, default=50)
    parser.add_argument("--flooders", type=int, default=5)
    parser.add_argument("--interval-scale", type=float, default=0.5)
    parser.add_argument("--warmup", type=float, help="minutes left out of the slopes (default: a fifth, >= 1)")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--out", help="write every sample to this CSV file")
    parser.add_argument("--rss-target", type=float, default=1.0, help="MiB per 10 min allowed after warm-up")
    parser.add_argument("--task-slack", type=float, default=5.0, help="tasks per 10 min allowed after warm-up")
    parser.add_argument("--fd-slack", type=float, default=5.0, help="fds per 10 min allowed after warm-up")
    parser.add_argument("--port", type=int, default=0, help="the server's port (default: a free one)")
    parser.add_argument("--data-dir", help="the server's DATA_DIR, used as it is (default: a new one, see "
                        "--history); one holding a history starts the server with its resume rings filled")
    parser.add_argument("--history", choices=("filled", "empty"), default="filled",
                        help="without --data-dir: first fill a new history by a fast replay until every resume "
                        "ring is full (filled, the default: a server that has run a while), or start on an empty "
                        "one (empty: the rings and the history fill during the run)")
    parser.add_argument("--fill-minutes", type=float, default=15.0, help="the longest a fill may take")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server (repeatable)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--analyse", metavar="CSV", help="no run: the memory figures of an earlier one (its --out)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker)
        return 0
    if args.analyse:
        return analyse_csv(args.analyse, args.warmup, args.rss_target)
    raise_fd_limit()
    duration = args.minutes * 60
    warmup = (args.warmup * 60) if args.warmup is not None else max(60.0, duration / 5)
    env = {"LOG_LEVEL": "warning", **dict(item.split("=", 1) for item in args.env)}
    data_dir = Path(args.data_dir) if args.data_dir else None
    if data_dir is None and args.history == "filled":
        data_dir = fill_history(env, args.fill_minutes * 60)
    server = AppProcess(port=args.port, interval_scale=args.interval_scale, env=env, data_dir=data_dir).start()
    print(f"soak: {os.cpu_count()} cores shared by server and clients; {args.minutes:g} min, {args.subscribers} "
          f"subscribers, churn {args.churn:g}/s, {args.stalled} stalled, {args.flooders} flooders, 2 REST readers, "
          f"INTERVAL_SCALE {args.interval_scale:g}; warm-up {warmup / 60:g} min; server pid {server.pid}", flush=True)
    with httpx.Client(timeout=10) as client:
        baseline = sample(server, client, time.time())  # before any client
    t0 = time.time()
    end_at = t0 + duration
    half = args.subscribers // 2
    roles = [
        {"subscribers": half, "churn": args.churn, "stalled": args.stalled, "flooders": 0, "rest": 0},
        {"subscribers": args.subscribers - half, "churn": 0, "stalled": 0, "flooders": args.flooders, "rest": 2},
    ]
    workers = [subprocess.Popen([sys.executable, __file__, "--worker",
                                 json.dumps({**role, "port": server.port, "start": t0, "end_at": end_at})],
                                stdout=subprocess.PIPE, cwd=ROOT) for role in roles]
    samples: list[dict[str, Any]] = []
    try:
        with httpx.Client(timeout=10) as client:
            while time.time() < end_at:
                samples.append(sample(server, client, t0))
                s = samples[-1]
                print(f"  t={s['t']:6.0f}s rss={s['rss_mib']:7.1f} MiB (anon {s['anon_mib']:.1f}) fds={s['fds']:5} "
                      f"tasks={s['tasks']} conns={s['connections']} queued={s['queued']} "
                      f"lag_max={s['lag_max_ms']} ms healthz={s['healthz_ms']:.1f} ms", flush=True)
                time.sleep(max(0.0, min(args.sample, end_at - time.time())))
        results = []
        for proc in workers:
            out, _ = proc.communicate(timeout=120)
            results.append(json.loads(out) if proc.returncode == 0 and out else {"counts": {}, "windows": {}})
        drained = drain(server, t0)
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
        code, took = server.terminate()
    if args.out:
        with open(args.out, "w") as file:
            file.write(",".join(samples[0]) + "\n")
            for s in samples:
                file.write(",".join(str(v) for v in s.values()) + "\n")
    return report(samples, results, warmup, args, server, (code, took), (baseline, drained))


def fill_history(env: dict[str, str], limit: float, interval_scale: float = 0.01) -> Path:
    """A new history, made by the real server replaying at ``interval_scale`` with no client until every resume
    ring is full (or ``limit`` seconds): what a server that has run for a while restarts on. Until then a
    soak measures bounded buffers filling, not a leak (the rings alone: 300 intervals of each service, hours
    for news at twice the real pace; the history readers' windows: 500 points). The rings of every service
    are counted once each has published (``capacity`` stops growing)."""
    filler = AppProcess(interval_scale=interval_scale, env=env).start()
    assert filler.data_dir is not None
    started = time.monotonic()
    full_since: tuple[int, float] | None = None  # (capacity, when first seen full)
    rings: dict[str, Any] = {}
    try:
        with httpx.Client(timeout=10) as client:
            while time.monotonic() - started < limit:
                time.sleep(5.0)
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    rings = client.get(filler.url("/ws/runtime")).json()["data"]["resume_rings"]
                capacity = rings.get("capacity", 0)
                if capacity and rings.get("updates", 0) >= capacity:
                    if full_since is None or full_since[0] != capacity:
                        full_since = (capacity, time.monotonic())
                    elif time.monotonic() - full_since[1] >= 30.0:  # no new service's ring for 30 s
                        break
                else:
                    full_since = None
    finally:
        code, _ = filler.terminate()
    print(f"soak: history filled in {(time.monotonic() - started) / 60:.1f} min by a replay at INTERVAL_SCALE "
          f"{interval_scale:g} with no client: rings {rings.get('updates', 0)}/{rings.get('capacity', 0)} updates, "
          f"{rings.get('text_bytes', 0) / 2**20:.1f} MiB; exit code {code}, log lines with a traceback or ERROR: "
          f"{len(tracebacks(filler.log()))}; {filler.data_dir}", flush=True)
    return filler.data_dir


def drain(server: AppProcess, t0: float, timeout: float = 20.0) -> dict[str, Any]:
    """Once every client has gone (the server has dropped the last stalled one too): a sample to compare with
    the one taken before any client came. What a client left behind (a task, a socket) shows here."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=10) as client:
        while True:
            s = sample(server, client, t0)
            if s["connections"] == 0 or time.monotonic() > deadline:
                return s
            time.sleep(0.5)


def print_memory(f: dict[str, Any], samples: list[dict[str, Any]], target: float) -> None:
    """Where RSS growth goes: the C heap's memory in use or kept free, and the resume rings filling up."""
    print(f"  RSS   {f['rss_first_mib']:.1f} -> {f['rss_last_mib']:.1f} MiB; slope through each minute's median "
          f"{f['rss_minute_medians_mib_per_10min']:+.2f} MiB/10 min (target < {target:g}), over the second half "
          f"{f['rss_minute_medians_mib_per_10min_second_half']:+.2f}")
    print(f"        least-squares through every sample {f['rss_mib_per_10min']:+.2f} MiB/10 min (second half "
          f"{f['rss_mib_per_10min_second_half']:+.2f}); of which anonymous {f['anon_mib_per_10min']:+.2f}, "
          f"file-backed {f['file_mib_per_10min']:+.2f}")
    print(f"  C heap (mallinfo2) in use {f['heap_used_mib_per_10min']:+.2f} MiB/10 min (second half "
          f"{f['heap_used_mib_per_10min_second_half']:+.2f}), free in it {f['heap_free_mib_per_10min']:+.2f}")
    # As the verdict counts it (rss_verdict): rings that shrink (shorter texts) do not excuse growth elsewhere.
    rest, rest_late = (f["rss_minute_medians_mib_per_10min"] - max(0.0, f["rings_mib_per_10min"]),
                       f["rss_minute_medians_mib_per_10min_second_half"]
                       - max(0.0, f["rings_mib_per_10min_second_half"]))
    print(f"  resume rings (bounded, filling after a start) {f['rings_mib_per_10min']:+.2f} MiB/10 min (second "
          f"half {f['rings_mib_per_10min_second_half']:+.2f}), {f['rings_last_mib']:.1f} MiB at the end, "
          f"{f['rings_full_last']:.0%} full; RSS minus their growth: {rest:+.2f} MiB/10 min (second half "
          f"{rest_late:+.2f})")
    print("  median per 5 min:  " + "; ".join(f"min {start:g}: RSS {rss:.1f}, heap in use {used:.1f}"
                                            for start, rss, used in rss_windows(samples)))


def rss_verdict(f: dict[str, Any], target: float) -> tuple[bool, str]:
    """RSS beyond the rings' growth under ``target`` MiB/10 min, through the minute medians. The rings are
    bounded by construction (ring_size updates per service) and measured by the server itself: their filling
    is growth that stops, not a leak. The target is on everything else; both are printed."""
    slope_ = f["rss_minute_medians_mib_per_10min"]
    ok = slope_ - max(0.0, f["rings_mib_per_10min"]) < target
    note = "" if slope_ < target or not ok else (
        f"(RSS itself grew {slope_:+.2f} MiB/10 min: the resume rings filling up, {f['rings_full_last']:.0%} full "
        "at the end)")
    return ok, note


def analyse_csv(path: str, warmup_minutes: float | None, target: float) -> int:
    """The memory figures and the RSS verdict of a run, again, from its ``--out`` CSV."""
    samples: list[dict[str, Any]] = []
    with open(path) as file:
        names = file.readline().strip().split(",")
        for line in file:
            values = [None if v in ("None", "") else float(v) for v in line.strip().split(",")]
            samples.append(dict(zip(names, values, strict=True)))
    duration = samples[-1]["t"] if samples else 0.0
    warmup = warmup_minutes * 60 if warmup_minutes is not None else max(60.0, duration / 5)
    figures = analyse(samples, warmup)
    print(f"{path}: {len(samples)} samples over {duration / 60:.1f} min; after the {warmup / 60:g}-min warm-up "
          f"({figures['samples_after_warmup']} samples):")
    print_memory(figures, samples, target)
    print(f"  tasks {figures['tasks_range']}, slope {figures['tasks_per_10min']:+.2f} /10 min")
    print(f"  fds   {figures['fds_range']}, slope {figures['fds_per_10min']:+.2f} /10 min")
    ok, note = rss_verdict(figures, target)
    print("\nRSS:", "PASS" if ok else "FAIL", note)
    return 0 if ok else 1


def report(samples: list[dict[str, Any]], results: list[dict[str, Any]], warmup: float,
           args: argparse.Namespace, server: AppProcess, exit_: tuple[int | None, float],
           before_after: tuple[dict[str, Any], dict[str, Any]]) -> int:
    code, took = exit_
    baseline, drained = before_after
    figures = analyse(samples, warmup)
    counts: dict[str, int] = {}
    for result in results:
        for name, value in result["counts"].items():
            counts[name] = counts.get(name, 0) + value
    print("\nclient events:", json.dumps(counts, sort_keys=True))
    print("\ndelivery delay (arrival - update timestamp) per window of 60 s, worst of the two client processes:")
    windows = sorted({int(w) for result in results for w in result["windows"]})
    for w in windows:
        parts = [result["windows"][str(w)] for result in results if str(w) in result["windows"]]
        n = sum(p["n"] for p in parts)
        print(f"  min {w:3}: {n:8,} deliveries  p50 {max(p['p50'] for p in parts) * 1000:7.1f} ms"
              f"  p99 {max(p['p99'] for p in parts) * 1000:7.1f} ms")
    problems = tracebacks(server.log())
    print(f"\nafter warm-up ({figures['samples_after_warmup']} samples):")
    print_memory(figures, samples, args.rss_target)
    print(f"  tasks {figures['tasks_range']}, slope {figures['tasks_per_10min']:+.2f} /10 min")
    print(f"  fds   {figures['fds_range']}, slope {figures['fds_per_10min']:+.2f} /10 min")
    print(f"  /healthz p99 {figures['healthz_p99_ms']:.1f} ms; loop lag p99 {figures['lag_p99_ms']:.1f} ms, "
          f"max {figures['lag_max_ms']:.1f} ms")
    print(f"  server exit after SIGTERM: code {code} in {took:.1f} s; log lines with a traceback or ERROR: "
          f"{len(problems)}")
    for line in problems[:10]:
        print("    " + line)
    print(f"  before any client / after all left: tasks {baseline['tasks']} / {drained['tasks']}, "
          f"fds {baseline['fds']} / {drained['fds']}, connections {drained['connections']}, "
          f"RSS {baseline['rss_mib']:.1f} / {drained['rss_mib']:.1f} MiB")
    rss_ok, note = rss_verdict(figures, args.rss_target)
    ok = (rss_ok and figures["tasks_per_10min"] < args.task_slack and figures["fds_per_10min"] < args.fd_slack
          and not problems)
    print("\nverdict:", "PASS" if ok else "FAIL", note if ok else "")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"figures": figures, "baseline": baseline, "drained": drained, "counts": counts,
                       "problems": problems, "exit_code": code, "exit_seconds": took, "ok": ok}, file)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
