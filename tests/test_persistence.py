"""History: the store, retention, the history and export routes, restart, and a kill -9 in mid-write."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import pytest

import storage.history
from app import create_app
from models.messages import Update, epoch
from services.persistence import PersistenceService, human_size
from storage.history import Store
from tests.support.paths import ROOT
from tests.support.server import serve
from tests.support.settings import make_settings
from tests.support.wsclient import Client
from ws.hub import Hub


def market(n: int, price: float) -> dict:
    return {"prices": {"bitcoin": price, "ethereum": price / 20}, "volumes": {"bitcoin": 1e9 + n},
            "market_caps": {"bitcoin": 1e12}, "price_changes": {}, "source": "coingecko",
            "timestamp": f"2026-11-26T10:{n // 60:02d}:{n % 60:02d}.000Z", "status": "ok"}


async def filled_store(tmp_path: Path, count: int = 50, **kwargs: Any) -> tuple[Store, Hub]:
    store = Store(tmp_path / "h.sqlite3", retention_days=kwargs.pop("retention_days", 30),
                  retention_per_service=kwargs.pop("retention_per_service", 1000), flush_interval=0.05, **kwargs)
    await store.__aenter__()
    hub = Hub()
    hub.add_listener(store.append)
    for n in range(count):
        hub.publish("market_data", market(n, 50_000 + n))
        hub.publish("news", {"articles": [], "n": n})
    return store, hub


async def settle(store: Store, expected: int, timeout: float = 30.0) -> None:
    """Wait until the writer thread has stored ``expected`` records. A bound, not a pace: it was 4 s, which a
    loaded 2-core machine can need for the 3,000 updates of 13 KB one test writes."""
    deadline = asyncio.get_running_loop().time() + timeout
    while store.stats.total_records < expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"only {store.stats.total_records} of {expected} stored")
        await asyncio.sleep(0.02)


async def test_every_update_is_stored_and_read_back_newest_first(tmp_path: Path) -> None:
    store, hub = await filled_store(tmp_path)
    await settle(store, 100)
    assert store.stats.records_by_service == {"market_data": 50, "news": 50}
    updates = await store.history("market_data", None, None, 10)
    assert [u["seq"] for u in updates] == list(range(50, 40, -1))
    sent = hub.latest("market_data")
    assert sent is not None and updates[0] == json.loads(sent.text)  # exactly what clients got
    series = await store.coin_series("bitcoin", None, None, 1000)
    assert series["prices"][:2] == [50_000, 50_001] and len(series["prices"]) == 50
    assert series["timestamps"][0] == "2026-11-26T10:00:00.000Z" and series["sources"][0] == "coingecko"
    payload = await PersistenceService(store).collect()
    assert payload["total_records"] == 100 and payload["records_by_service"]["news"] == 50
    assert payload["active_writers"] == 1 and payload["last_save"].endswith("Z")
    assert payload["storage_location"] == str(tmp_path.resolve()) and payload["storage_size"].endswith("B")
    await store.__aexit__()
    assert not store.writing


async def test_range_and_limit(tmp_path: Path) -> None:
    store = Store(tmp_path / "h.sqlite3", retention_days=1e6, retention_per_service=1000, flush_interval=0.05)
    await store.__aenter__()
    for n in range(20):  # one update a minute
        stamp = f"2026-11-26T10:{n:02d}:00.000Z"
        text = json.dumps({"service": "news", "type": "update", "data": {"n": n}, "timestamp": stamp, "seq": n + 1})
        store.append(Update("news", n + 1, stamp, {"n": n}, text))
    await settle(store, 20)
    newer = await store.history("news", epoch("2026-11-26T10:10:00Z"), None, 100)
    assert [u["data"]["n"] for u in newer] == list(range(19, 9, -1))
    window = await store.history("news", epoch("2026-11-26T10:05:00Z"), epoch("2026-11-26T10:07:00Z"), 100)
    assert [u["data"]["n"] for u in window] == [7, 6, 5]
    older = await store.history("news", None, epoch("2026-11-26T10:10:00Z"), 3)
    assert [u["data"]["n"] for u in older] == [10, 9, 8]
    await store.__aexit__()


async def test_retention_by_count_and_age(tmp_path: Path) -> None:
    store, _ = await filled_store(tmp_path, 30, retention_per_service=10)
    await settle(store, 60)
    store.prune_now()
    assert store.stats.records_by_service == {"market_data": 10, "news": 10}
    kept = await store.history("news", None, None, 100)
    assert [u["seq"] for u in kept] == list(range(30, 20, -1))  # the newest are kept
    store.retention_days = 1e-9  # everything is now too old
    store.prune_now()
    assert store.stats.total_records == 0
    await store.__aexit__()


async def test_a_damaged_database_is_set_aside_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    store = Store(path, retention_days=1, retention_per_service=10)
    await store.__aenter__()
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    assert store.stats.total_records == 0
    await store.__aexit__()


def test_human_size() -> None:
    assert human_size(512) == "512 B" and human_size(2.5 * 1024**3) == "2.5 GB" and human_size(1536) == "1.5 KB"


# -- over HTTP, and across a restart --------------------------------------------------------------------

def test_history_routes_and_restart_continue_seq(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with serve(lambda: create_app(settings), settings) as server:
        jobs = server.app.state.scheduler.stats
        server.wait_for(lambda: jobs["market_data_collection"].runs >= 1)  # its first poll is behind us
        for n in range(30):
            server.publish("market_data", market(n, 40_000 + n))
        store = server.app.state.store
        last = json.loads(server.app.state.hub.latest("market_data").text)
        last_seq = last["seq"]
        server.wait_for(lambda: store.stats.records_by_service.get("market_data", 0) >= last_seq)
        base = server.base
        body = httpx.get(f"{base}/api/history/market_data", params={"limit": 5}).json()
        assert body["count"] == 5 and body["updates"][0]["seq"] == last_seq
        coin = httpx.get(f"{base}/api/history/market_data/bitcoin").json()
        assert 40_029 in coin["prices"] and coin["points"] >= 30
        exported = httpx.get(f"{base}/api/export/market_data", params={"format": "json"})
        assert exported.headers["content-disposition"].startswith("attachment")
        assert len(exported.json()) >= 30
        rows = list(csv.reader(io.StringIO(httpx.get(f"{base}/api/export/market_data?format=csv").text)))
        assert rows[0] == ["service", "seq", "timestamp", "data"] and len(rows) >= 31
        assert 40_029 in [json.loads(row[3])["prices"]["bitcoin"] for row in rows[1:]]
        for bad, where in ((("limit", "0"),), "limit"), ((("since", "yesterday"),), "since"), \
                          ((("since", "2026-11-27T00:00:00Z"), ("until", "2026-11-26T00:00:00Z")), "range"), \
                          ((("since", "nan"),), "since"), ((("until", "inf"),), "until"):
            response = httpx.get(f"{base}/api/history/news", params=dict(bad))
            assert response.status_code == 422 and where in response.text
        assert httpx.get(f"{base}/api/export/news?format=xml").status_code == 422
        assert httpx.get(f"{base}/api/history/bogus").status_code == 404
        assert httpx.get(f"{base}/api/history/market_data/nocoin").status_code == 404
    # A new server on the same data dir, in the same mode (replay: a live one has a history of its own, see
    # tests/test_history_modes.py), whose providers never answer (so no poll can publish first): the snapshot
    # subscribers get is the last stored update, and seq goes on from it.
    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        raise httpx.ReadTimeout("never", request=request)

    settings = make_settings(tmp_path, data_source="replay")
    with serve(lambda: create_app(settings, transport=httpx.MockTransport(never)), settings) as server:
        hub = server.app.state.hub
        assert hub.seq("market_data") == last_seq
        with Client(server.ws, "/ws/market_data") as client:
            snapshot = client.recv_type("update")
        assert snapshot["seq"] == last_seq and snapshot["data"] == last["data"]
        assert snapshot["restored"] is True and snapshot["timestamp"] == last["timestamp"]
        assert server.publish("market_data", market(99, 1.0)).seq == last_seq + 1


# -- kill -9 in the middle of writing -------------------------------------------------------------------

WRITER = """
import asyncio, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from storage.history import Store
from ws.hub import Hub

async def main():
    store = Store(Path({path!r}), retention_days=30, retention_per_service=10**6, flush_interval=0.25)
    await store.__aenter__()
    hub = Hub()
    hub.add_listener(store.append)
    n = 0
    while True:
        n += 1
        hub.publish("market_data", {{"n": n, "blob": "x" * 2000}})
        print(n, time.time(), flush=True)
        await asyncio.sleep(0.002)

asyncio.run(main())
"""


@pytest.mark.timing  # what was published 1 s (4 flush intervals) before the kill must be on disk
def test_kill_9_loses_at_most_the_last_batch_and_never_corrupts(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    script = WRITER.format(root=str(ROOT), path=str(path))
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    published: list[tuple[int, float]] = []
    started = time.monotonic()
    while time.monotonic() - started < 3.0:
        line = process.stdout.readline()
        n, at = line.split()
        published.append((int(n), float(at)))
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = time.time()
    process.stdout.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = conn.execute("SELECT MAX(seq), COUNT(*) FROM updates").fetchone()
    conn.close()
    assert stored[1] == stored[0]  # no gap: every update up to the last committed one is there
    # everything published more than one second before the kill was stored
    must_have = max(n for n, at in published if at < killed_at - 1.0)
    assert stored[0] >= must_have, (stored, must_have, published[-1])


@pytest.mark.parametrize("count", [3])
async def test_restart_through_the_store_restores_the_hub(tmp_path: Path, count: int) -> None:
    store, _ = await filled_store(tmp_path, count)
    await settle(store, 2 * count)
    await store.__aexit__()
    again = Store(tmp_path / "h.sqlite3", retention_days=30, retention_per_service=1000)
    await again.__aenter__()
    fresh = Hub()
    for message in again.latest_per_service():
        fresh.restore(message["service"], message["seq"], message["timestamp"], message["data"])
    assert fresh.seq("news") == count and fresh.latest_data("news") == {"articles": [], "n": count - 1}
    await again.__aexit__()


# -- what a file may hold, and what reading a long history may cost -------------------------------------

async def test_an_unreadable_newest_row_does_not_stop_a_restart(tmp_path: Path) -> None:
    store, _ = await filled_store(tmp_path, 3)
    await settle(store, 6)
    await store.__aexit__()
    conn = sqlite3.connect(tmp_path / "h.sqlite3")
    with conn:
        conn.execute("UPDATE updates SET body = ? WHERE id = (SELECT MAX(id) FROM updates WHERE service = 'news')",
                     (b"not zlib",))
    conn.close()
    again = Store(tmp_path / "h.sqlite3", retention_days=30, retention_per_service=1000)
    await again.__aenter__()
    latest = again.latest_per_service()
    assert [m["service"] for m in latest] == ["market_data"] and latest[0]["seq"] == 3
    # seq still goes on after the unreadable row: new news is stored, not dropped as a repeated seq
    hub = Hub()
    hub.add_listener(again.append)
    for service, seq in again.max_seq_per_service().items():
        hub.continue_from(service, seq)
    assert hub.publish("news", {"n": "after"}).seq == 4
    await settle(again, 7)
    assert (await again.history("news", None, None, 1))[0]["data"] == {"n": "after"}
    await again.__aexit__()


async def test_a_database_of_another_schema_is_set_aside_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE updates (id INTEGER PRIMARY KEY, service TEXT, body BLOB)")  # no seq, no ts
        conn.execute("INSERT INTO updates (service, body) VALUES ('news', x'00')")
    conn.close()
    store, _ = await filled_store(tmp_path, 2)
    await settle(store, 4)
    [aside] = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    conn = sqlite3.connect(aside)
    assert conn.execute("SELECT COUNT(*) FROM updates").fetchone()[0] == 1
    conn.close()
    assert [u["seq"] for u in await store.history("news", None, None, 10)] == [2, 1]
    await store.__aexit__()


@pytest.mark.timing  # the loop's longest gap while 3,000 updates are decoded, against that decoding's own time
async def test_reading_a_long_history_does_not_stall_the_event_loop(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    coins = [f"coin{i}" for i in range(100)]
    figures = {c: 1.5 + i for i, c in enumerate(coins)}
    store = Store(tmp_path / "h.sqlite3", retention_days=30, retention_per_service=10_000, flush_interval=0.05)
    await store.__aenter__()
    hub = Hub()
    hub.add_listener(store.append)
    for n in range(3000):  # market updates of ~13 KB, as 100 coins make them
        hub.publish("market_data", {"prices": figures, "volumes": figures, "market_caps": figures,
                                    "price_changes": figures, "timestamp": f"t{n}", "source": "coingecko",
                                    "coins": [{"id": c, "symbol": c, "name": c, "rank": 1} for c in coins]})
    await settle(store, 3000)
    decoded_in: set[int] = set()  # the threads the stored bodies were decompressed in
    decompress = zlib.decompress

    def watched(data: bytes, /) -> bytes:
        decoded_in.add(threading.get_ident())
        return decompress(data)

    monkeypatch.setattr(storage.history.zlib, "decompress", watched)
    gaps: list[float] = []

    async def tick() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    while not gaps:  # the ticker is running (it must, for a stall to show)
        await asyncio.sleep(0.005)
    series = await store.coin_series("coin7", None, None, 3000)
    texts = await store.history_texts("market_data", None, None, 3000)
    updates = await store.history("market_data", None, None, 3000)
    ticker.cancel()
    assert len(series["prices"]) == len(texts) == len(updates) == 3000
    assert json.loads(texts[0]) == updates[0] and updates[0]["seq"] == 3000
    # Decoding 3,000 such updates takes a third of a second or more: on the loop, every client would wait that
    # long (and 10,000, the routes' limit, seconds). It is done in worker threads, never on the loop's own...
    assert decoded_in and threading.get_ident() not in decoded_in
    # ...so the loop keeps its pace: its longest gap is well under what the same decoding costs on the loop,
    # measured here and now (a loaded machine slows both alike), with a floor far above a tick (5 ms) for the
    # scheduler's and the collector's own pauses.
    started = time.perf_counter()
    store._messages(*store._history_sql("market_data", None, None, 3000))
    blocking = time.perf_counter() - started
    assert max(gaps) < max(0.25, blocking / 2), f"the loop stalled {max(gaps):.3f} s; blocking: {blocking:.3f} s"
    await store.__aexit__()


async def test_updates_arriving_with_no_writer_are_counted_not_queued(tmp_path: Path) -> None:
    store, hub = await filled_store(tmp_path, 2)
    await settle(store, 4)
    await store.__aexit__()  # the writer stops
    hub.publish("news", {"late": True})
    assert store.stats.dropped == 1 and store.pending == 0
