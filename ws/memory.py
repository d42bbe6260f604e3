"""The C allocator's own account of the heap, for ``GET /ws/runtime``: is a growing RSS memory in use, or free
memory the allocator keeps (fragmentation)?

glibc only (``mallinfo2``, glibc 2.33+); elsewhere :func:`malloc_figures` answers ``None``. Python's small objects
live in pymalloc's arenas (mmap'd, not counted here); everything bigger than 512 bytes, and what C extensions and
libraries (uvloop, SQLite, zlib, pydantic-core) allocate themselves, is.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import os
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from typing import Any


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallinfo2.restype = _Mallinfo2
    except (OSError, AttributeError):  # not glibc, or one older than 2.33
        return None
    return libc


def malloc_figures() -> dict[str, Any] | None:
    """Bytes: ``heap`` the allocator holds from the system (its arenas), of which ``in_use`` is allocated and
    ``free`` is not (fragmentation, or a reserve it has not given back), plus ``mmapped`` large blocks; and
    ``trims``: what :func:`trimming` did."""
    libc = _libc()
    if libc is None:
        return None
    info = libc.mallinfo2()
    return {"heap": info.arena, "in_use": info.uordblks, "free": info.fordblks, "mmapped": info.hblkhd,
            "trims": asdict(TRIMS)}


#: Blocks from this size up get a mapping of their own, given back to the system as soon as they are freed.
#: glibc's threshold starts at 128 KiB and rises with every such block freed, up to 32 MiB: big transient
#: buffers (a provider's answer, an export chunk, a snapshot's JSON) then land in the heap, and the long-lived
#: blocks placed around them keep the holes they leave (30-minute soaks, one each: RSS crept +5.1 MiB/10 min with the
#: default, +3.1 with 64 KiB). A fixed threshold also keeps it from rising.
MMAP_THRESHOLD = 64 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter (malloc.h)


def tune_allocator() -> bool:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD`, unless the environment sets one (``GLIBC_TUNABLES``
    or ``MALLOC_MMAP_THRESHOLD_``); True if set. Nothing elsewhere than glibc."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    libc = _libc()
    return libc is not None and bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


@dataclass
class Trims:
    """What the periodic trim did: how often, and the last one's time and what RSS it gave back."""

    runs: int = 0
    last_ms: float | None = None
    last_released_bytes: int | None = None


TRIMS = Trims()


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def trim() -> None:
    """Hand the heap's free pages back to the system (glibc ``malloc_trim(0)``; nothing elsewhere). Blocking: call
    it in a thread (ctypes lets go of the interpreter's lock while it runs)."""
    libc = _libc()
    if libc is None:
        return
    before, started = _rss(), time.perf_counter()
    libc.malloc_trim(0)
    TRIMS.runs += 1
    TRIMS.last_ms = round((time.perf_counter() - started) * 1000, 2)
    TRIMS.last_released_bytes = max(0, before - _rss())


@contextlib.asynccontextmanager
async def trimming(every: float) -> AsyncIterator[None]:
    """While entered, :func:`trim` every ``every`` seconds in a worker thread.

    glibc keeps freed memory for reuse, and with many threads and sizes (uvloop's buffers, SQLite, zlib, the
    history readers) it rarely finds a whole page at the top of an arena to give back: a soak's RSS grew about
    14 MiB per 10 min with the memory in use flat, and one ``malloc_trim`` gave back 50 MiB. A trim costs a few
    ms of a worker thread (see ``/ws/runtime``: ``malloc.trims``)."""

    async def run() -> None:
        while True:
            await asyncio.sleep(every)
            await asyncio.to_thread(trim)

    task = asyncio.create_task(run(), name="malloc-trim")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
