"""Restart under load: SIGTERM with N subscribers connected, then start again on the same data directory.

    python bench/restart.py --clients 2000
    python bench/restart.py --clients 300 --json out.json     # what tests/test_restart.py runs

Checks, and prints:
- every client gets a close frame 1012 (service restart) within the graceful window (app.GRACEFUL_SHUTDOWN_SECONDS);
- the process exits within 10 s of the signal, and logs no WARNING, ERROR or traceback after it;
- the store flushed: the history file holds at least the last update any client saw (the scheduler may publish
  once more while the sockets close), and after a restart on the same DATA_DIR the next update has the ``seq``
  right after the highest stored.

The real app (``python app.py``, replay data, INTERVAL_SCALE 0.2 so updates come every second), 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import GRACEFUL_SHUTDOWN_SECONDS
from bench.harness import AppProcess, percentile, raise_fd_limit

EXIT_WITHIN = 10.0


def _seq(text: str) -> int | None:
    """``seq`` of a market_data update (the envelope ends with it), None for anything else."""
    if '"type":"update"' not in text[:160]:
        return None
    at = text.rfind('"seq":')
    if at < 0:
        return None
    digits = text[at + 6:].split(",")[0].split("}")[0]
    return int(digits) if digits.strip().isdigit() else None


async def load_and_stop(server: AppProcess, n: int) -> dict[str, Any]:
    import aiohttp

    seen: list[int] = [0] * n
    closes: list[tuple[int | None, float] | None] = [None] * n
    ready = 0
    all_ready = asyncio.Event()
    signalled = asyncio.get_running_loop().create_future()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(i: int) -> None:
            nonlocal ready
            ws = None
            for attempt in range(20):
                try:
                    ws = await session.ws_connect(server.url("/ws/market_data"), compress=0, max_msg_size=0)
                    break
                except (aiohttp.ClientError, OSError):
                    await asyncio.sleep(0.2 * (attempt + 1))
            if ws is None:
                return
            counted = False
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                seq = _seq(msg.data)
                if seq is not None:
                    seen[i] = max(seen[i], seq)
                    if not counted:
                        counted, ready = True, ready + 1
                        if ready == n:
                            all_ready.set()
            at = await signalled if signalled.done() else None
            closes[i] = (ws.close_code, time.monotonic() - at if at is not None else -1.0)

        tasks = [asyncio.create_task(client(i)) for i in range(n)]
        await asyncio.wait_for(all_ready.wait(), 120)
        await asyncio.sleep(2)  # a couple of updates to everyone
        assert server.proc is not None
        started = time.monotonic()
        signalled.set_result(started)
        server.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(server.proc.wait, 30)
        exited = time.monotonic() - started
        await asyncio.wait(tasks, timeout=15)
    got = [c for c in closes if c is not None]
    return {
        "clients": n, "connected": ready, "exit_code": code, "exit_seconds": exited,
        "close_codes": {str(k): sum(1 for c, _ in got if c == k) for k in {c for c, _ in got}},
        "close_p99_s": percentile([t for _, t in got], 0.99), "close_max_s": max((t for _, t in got), default=-1),
        "last_seq_seen": max(seen),
    }


def stored_max_seq(data_dir: Path, service: str = "market_data") -> int | None:
    """The highest ``seq`` of ``service`` in the replay history file, read directly (the server is down)."""
    from storage.files import FILES

    with sqlite3.connect(f"file:{data_dir / FILES['replay']}?mode=ro", uri=True) as db:
        row = db.execute("SELECT MAX(seq) FROM updates WHERE service = ?", (service,)).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def after_restart(server: AppProcess, stored: int | None) -> dict[str, Any]:
    """The first ``seq`` above the stored one that the restarted server publishes."""
    deadline = time.monotonic() + 30
    seq = None
    while time.monotonic() < deadline:
        seq = httpx.get(server.url("/api/market_data"), timeout=10).json().get("seq")
        if stored is None or (seq is not None and seq > stored):
            break
        time.sleep(0.1)
    return {"stored_seq": stored, "next_seq": seq}


def shutdown_log(log: str) -> list[str]:
    """Lines after the shutdown began that are above INFO, or a traceback."""
    lines = log.splitlines()
    start = next((i for i, line in enumerate(lines) if "Shutting down" in line), len(lines))
    return [line for line in lines[start:]
            if " WARNING " in line or " ERROR " in line or " CRITICAL " in line or "Traceback" in line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args()
    raise_fd_limit()
    server = AppProcess(interval_scale=0.2).start()
    try:
        deadline = time.monotonic() + 60
        while httpx.get(server.url("/api/market_data"), timeout=10).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("no market_data update in time")
            time.sleep(0.3)
        load = asyncio.run(load_and_stop(server, args.clients))
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
    noisy = shutdown_log(server.log())
    assert server.data_dir is not None
    stored = stored_max_seq(server.data_dir)
    again = AppProcess(interval_scale=0.2, data_dir=server.data_dir).start()
    try:
        restart = after_restart(again, stored)
    finally:
        again.terminate()
    result = {**load, **restart, "shutdown_log_above_info": noisy, "graceful_seconds": GRACEFUL_SHUTDOWN_SECONDS}
    ok = (load["connected"] == args.clients and load["close_codes"].get("1012", 0) == args.clients
          and load["close_max_s"] <= GRACEFUL_SHUTDOWN_SECONDS and load["exit_seconds"] <= EXIT_WITHIN
          and not noisy and stored is not None and stored >= load["last_seq_seen"]
          and restart["next_seq"] == stored + 1)
    result["ok"] = ok
    print(f"restart under load: {os.cpu_count()} cores (shared), {args.clients} subscribers on /ws/market_data")
    print(f"  connected {load['connected']}/{args.clients}; close codes {load['close_codes']}; close after SIGTERM "
          f"p99 {load['close_p99_s']:.2f} s, max {load['close_max_s']:.2f} s (window {GRACEFUL_SHUTDOWN_SECONDS} s)")
    print(f"  exit code {load['exit_code']} after {load['exit_seconds']:.2f} s (limit {EXIT_WITHIN:g} s); "
          f"log lines above INFO after the signal: {len(noisy)}")
    for line in noisy[:10]:
        print("    " + line)
    print(f"  last seq seen by a client {load['last_seq_seen']}; highest seq stored {stored}; first seq after the "
          f"restart {restart['next_seq']}")
    print("verdict:", "PASS" if ok else "FAIL")
    if args.json:
        Path(args.json).write_text(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
