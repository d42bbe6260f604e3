"""The C allocator's own account of the heap, for ``GET /ws/runtime``: is a growing RSS memory in use, or free
memory the allocator keeps (fragmentation)?

glibc only (``mallinfo2``, glibc 2.33+); elsewhere :func:`malloc_figures` answers ``None``. Python's small objects
live in pymalloc's arenas (mmap'd, not counted here); everything bigger than 512 bytes, and what C extensions and
libraries (uvloop, SQLite, zlib, pydantic-core) allocate themselves, is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
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


def malloc_figures() -> dict[str, int] | None:
    """Bytes: ``heap`` the allocator holds from the system (its arenas), of which ``in_use`` is allocated and
    ``free`` is not (fragmentation, or a reserve it has not given back), plus ``mmapped`` large blocks."""
    libc = _libc()
    if libc is None:
        return None
    info = libc.mallinfo2()
    return {"heap": info.arena, "in_use": info.uordblks, "free": info.fordblks, "mmapped": info.hblkhd}
