"""The C heap's figures in ``GET /ws/runtime``: what tells a growing RSS in use from memory the allocator keeps."""

from __future__ import annotations

import asyncio
import platform

from ws.hub import Hub
from ws.manager import ConnectionManager, Limits
from ws.memory import TRIMS, malloc_figures, trimming


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
