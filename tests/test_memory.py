"""The C heap's figures in ``GET /ws/runtime``: what tells a growing RSS in use from memory the allocator keeps."""

from __future__ import annotations

import asyncio
import gc
import platform
from collections import Counter

import pytest
from starlette.websockets import WebSocket

from tests.support.server import LiveServer
from tests.support.wsclient import Client
from ws.connection import Connection
from ws.hub import Hub
from ws.manager import ConnectionManager, Limits
from ws.memory import MMAP_THRESHOLD, TRIMS, malloc_figures, trimming, tune_allocator
from ws.uvicorn_protocol import HttpProtocol, WebSocketProtocol


def test_malloc_figures_account_for_a_block_held_and_freed() -> None:
    figures = malloc_figures()
    if platform.libc_ver()[0] != "glibc":
        assert figures is None
        return
    assert figures is not None and set(figures) == {"heap", "in_use", "free", "mmapped", "trims"}
    assert figures["in_use"] + figures["free"] == figures["heap"]
    block = bytearray(200_000)  # over Python's small-object limit: from malloc, mmapped or not
    held = malloc_figures()
    assert held is not None
    grew = held["in_use"] + held["mmapped"] - figures["in_use"] - figures["mmapped"]
    del block
    assert grew >= 200_000


def test_the_mmap_threshold_is_fixed_unless_the_environment_sets_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its effect (big blocks in mappings of their own instead of holes in the heap) shows over a soak, not here:
    glibc serves a block from a free chunk that fits before it looks at the threshold."""
    monkeypatch.setenv("GLIBC_TUNABLES", f"glibc.malloc.mmap_threshold={2 * MMAP_THRESHOLD}")
    assert not tune_allocator()  # the environment's own setting is left alone
    monkeypatch.delenv("GLIBC_TUNABLES")
    assert tune_allocator() is (malloc_figures() is not None)  # glibc takes it; elsewhere nothing to do


async def test_runtime_reports_the_heap() -> None:
    manager = ConnectionManager(Hub(), Limits())
    runtime = manager.runtime()
    assert "malloc" in runtime
    assert runtime["malloc"] is None or runtime["malloc"]["in_use"] > 0


async def test_the_heap_is_trimmed_periodically_and_says_so() -> None:
    if malloc_figures() is None:  # not glibc: nothing to trim, nothing reported
        return
    runs = TRIMS.runs
    async with trimming(0.01):
        for _ in range(500):  # polled, not timed: a few trims on a loaded machine
            if TRIMS.runs >= runs + 2:
                break
            await asyncio.sleep(0.01)
    assert TRIMS.runs >= runs + 2 and TRIMS.last_ms is not None and TRIMS.last_released_bytes is not None
    figures = malloc_figures()
    assert figures is not None and figures["trims"]["runs"] >= runs + 2


def test_a_client_that_left_is_freed_at_once_not_left_to_the_collector(live_server: LiveServer) -> None:
    """A connection's objects (its socket, protocols, parser, buffers) go when it ends, by reference counting: a
    cycle among them would keep them all until one of the collector's rare full passes, and with clients coming and
    going all day the heap would fill with the dead between passes (a soak's RSS crept that way). Covered: a client
    that leaves, and one the server closes (a flood of messages)."""
    manager = live_server.app.state.manager
    gc.collect()
    gc.disable()  # the server's thread would otherwise collect what the check is looking for
    try:
        for _ in range(4):
            with Client(live_server.ws, "/ws/market_data") as client:
                client.recv_type("subscription_confirmed")
        for _ in range(2):
            with Client(live_server.ws, "/ws") as flood:
                flood.recv_type("connection_established")
                flood.flood_until_closed()
        live_server.wait_for(lambda: manager.count == 0)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = Counter(type(o).__name__ for o in gc.garbage
                       if isinstance(o, (Connection, WebSocket, WebSocketProtocol, HttpProtocol)))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not left, left
