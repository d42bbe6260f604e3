"""The C heap's figures in ``GET /ws/runtime``: what tells a growing RSS in use from memory the allocator keeps."""

from __future__ import annotations

import platform

from ws.hub import Hub
from ws.manager import ConnectionManager, Limits
from ws.memory import malloc_figures


def test_malloc_figures_account_for_a_block_held_and_freed() -> None:
    figures = malloc_figures()
    if platform.libc_ver()[0] != "glibc":
        assert figures is None
        return
    assert figures is not None and set(figures) == {"heap", "in_use", "free", "mmapped"}
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
