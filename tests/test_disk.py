"""A full, read-only or damaged history database while the server runs (issue 13, point 5): streaming goes on, the
store says what fails and since when, nothing stored is lost, and writes resume when the disk allows.

The failures are SQLite's own, provoked for real: ``PRAGMA max_page_count`` makes the database full (SQLITE_FULL,
as a full disk does), ``PRAGMA query_only`` read-only (SQLITE_READONLY), and bytes overwritten in the file damage
it. The end-to-end version, with the real server process and its file-size limit lowered, is in test_disk_e2e.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.history import build_history_router
from storage.history import Store
from storage.outage import Backlog, WriteHealth, classify
from ws.hub import Hub


class FragileStore(Store):
    """A store whose writer connections the test can limit: ``limit`` pages at most (None: no limit), or
    read-only. Applied to every new connection, and to the writer's current one by :meth:`fill_up`."""

    limit: int | None = None
    read_only = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        self._apply(conn)
        self.current = conn
        return conn

    def _apply(self, conn: sqlite3.Connection) -> None:
        if self.limit is not None:
            conn.execute(f"PRAGMA max_page_count = {self.limit}")
        if self.read_only:
            conn.execute("PRAGMA query_only = 1")

    def fill_up(self) -> None:
        """The disk is full from now on: no page beyond those the file has."""
        pages = sqlite3.connect(self.path).execute("PRAGMA page_count").fetchone()[0]
        self.limit = pages
        self._apply(self.current)

    def make_read_only(self) -> None:
        self.read_only = True
        self._apply(self.current)

    def free(self) -> None:
        self.limit, self.read_only = None, False


async def until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """A bound, not a pace: the writer thread works on its own schedule."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not {what} within {timeout} s")
        await asyncio.sleep(0.02)


async def opened(tmp_path: Path, **kwargs: Any) -> tuple[FragileStore, Hub]:
    store = FragileStore(tmp_path / "h.sqlite3", retention_days=30, retention_per_service=10_000,
                         flush_interval=0.02, retry_interval=0.05, **kwargs)
    await store.__aenter__()
    hub = Hub()
    hub.add_listener(store.append)
    return store, hub


def publish(hub: Hub, count: int, size: int = 100) -> None:
    for n in range(count):
        hub.publish("market_data", {"n": n, "text": f"{n:06d}" * (size // 6)})


def routes(store: Store) -> FastAPI:
    app = FastAPI()
    app.include_router(build_history_router(store))
    return app


async def stored_seqs(store: Store) -> list[int]:
    return sorted(u["seq"] for u in await store.history("market_data", None, None, 100_000))


async def test_a_full_disk_keeps_updates_in_memory_says_so_and_writes_them_when_space_returns(
        tmp_path: Path) -> None:
    store, hub = await opened(tmp_path)
    publish(hub, 20)
    await until(lambda: store.stats.total_records == 20, "stored")
    store.fill_up()
    publish(hub, 200, size=2000)  # more than the pages left can hold
    await until(lambda: store.writes.failing, "failing")
    await until(lambda: store.pending == 0 and len(store.backlog) == 200 - (store.stats.total_records - 20),
                "waiting in memory")
    status = store.write_status()
    assert status["status"] == "failing" and status["kind"] == "disk_full"
    assert "full" in status["error"] and status["since"].endswith("Z") and status["attempts"] >= 1
    assert status["pending"] > 0 and status["dropped"]["count"] == 0
    assert await stored_seqs(store) == list(range(1, 21))  # what was stored stays readable
    await until(lambda: store.write_status()["attempts"] >= 3, "retried")
    store.free()
    await until(lambda: not store.writes.failing and not len(store.backlog), "writing again")
    assert await stored_seqs(store) == list(range(1, 221))  # nothing lost, in order
    status = store.write_status()
    assert status["status"] == "ok" and status["pending"] == 0
    last = status["last_outage"]
    assert last["kind"] == "disk_full" and last["since"] <= last["until"] and last["dropped"] == 0
    publish(hub, 1)
    await until(lambda: store.stats.total_records == 221, "stored after the outage")
    await store.__aexit__()


async def test_a_long_outage_drops_the_oldest_pending_updates_and_says_which(tmp_path: Path) -> None:
    store, hub = await opened(tmp_path, max_pending_bytes=20_000)
    publish(hub, 5)
    await until(lambda: store.stats.total_records == 5, "stored")
    store.make_read_only()
    publish(hub, 300, size=3000)  # ~300 x 200 bytes compressed: far over the bound

    def settled() -> bool:  # every update either waiting (within the bound) or dropped, after a failed try
        status = store.write_status()
        return (status["status"] == "failing" and status["pending"] + status["dropped"]["count"] == 300
                and status["pending_bytes"] <= 20_000)

    await until(settled, "all waiting or dropped")
    status = store.write_status()
    assert status["kind"] == "read_only" and status["dropped"]["count"] > 0
    dropped = status["dropped"]
    assert dropped["by_service"] == {"market_data": dropped["count"]} and dropped["oldest"] <= dropped["newest"]
    assert status["dropped_in_outage"] == dropped["count"]
    kept = status["pending"]
    assert kept + dropped["count"] == 300
    store.free()
    await until(lambda: not store.writes.failing and not len(store.backlog), "writing again")
    seqs = await stored_seqs(store)
    # the first five, then a gap (the oldest pending, dropped), then the newest, up to the last one published
    assert seqs[:5] == [1, 2, 3, 4, 5] and seqs[5:] == list(range(306 - kept, 306))
    assert store.write_status()["last_outage"]["dropped"] == dropped["count"]
    await store.__aexit__()


async def test_a_file_damaged_while_running_is_set_aside_and_a_new_one_begun(tmp_path: Path) -> None:
    store, hub = await opened(tmp_path)
    publish(hub, 10)
    await until(lambda: store.stats.total_records == 10, "stored")
    with sqlite3.connect(store.path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with store.path.open("r+b") as file:  # the header and the first pages overwritten
        file.write(b"\xde\xad\xbe\xef" * 2048)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=routes(store)), base_url="http://test") as client:
        answer = await client.get("/api/history/market_data")  # a reader is the first to see it
    assert answer.status_code == 503 and "damaged" in answer.json()["detail"]
    publish(hub, 3)
    await until(lambda: bool(store.write_status()["set_aside"]), "set aside")
    await until(lambda: store.stats.total_records == 3, "stored in the new file")
    [aside] = store.write_status()["set_aside"]
    assert (tmp_path / aside["file"]).exists() and "integrity" in aside["why"]  # kept, never deleted
    assert aside["file"].startswith("h.sqlite3.corrupt-")
    assert await stored_seqs(store) == [11, 12, 13]
    assert store.write_status()["status"] == "ok"
    await store.__aexit__()


def test_the_brief_status_for_healthz_is_the_full_one_without_its_detail() -> None:
    clock = [1_764_400_000.0]
    backlog = Backlog(max_bytes=10)
    writes = WriteHealth(backlog, clock=lambda: clock[0])

    def shortened(view: dict[str, Any]) -> dict[str, Any]:  # what /healthz showed, cut from the full view
        keys = ("status", "kind", "error", "since", "attempts", "pending")
        return {**{key: view[key] for key in keys if key in view}, "dropped": view["dropped"]["count"]}

    assert writes.brief() == shortened(writes.view()) == {"status": "ok", "pending": 0, "dropped": 0}
    backlog.extend([("market_data", seq, clock[0], b"x" * 8) for seq in (1, 2)])
    backlog.trim()  # over the bound: the oldest is dropped
    writes.failed(sqlite3.OperationalError("database or disk is full"))
    clock[0] += 30
    writes.failed(sqlite3.OperationalError("database or disk is full"))
    brief = writes.brief()
    assert brief == shortened(writes.view()) and list(brief) == list(shortened(writes.view()))
    assert brief == {"status": "failing", "kind": "disk_full", "error": "OperationalError: database or disk is full",
                     "since": "2025-11-29T07:06:40.000Z", "attempts": 2, "pending": 1, "dropped": 1}
    writes.recovered()
    assert writes.brief() == shortened(writes.view()) == {"status": "ok", "pending": 1, "dropped": 1}


def test_sqlite_failures_are_named() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("PRAGMA query_only = 1")
    with pytest.raises(sqlite3.Error) as read_only:
        conn.execute("CREATE TABLE t(x)")
    assert classify(read_only.value) == "read_only"
    assert classify(sqlite3.OperationalError("database or disk is full")) == "disk_full"
    assert classify(sqlite3.DatabaseError("file is not a database")) == "damaged"
    assert classify(PermissionError(13, "Permission denied")) == "os_error"
