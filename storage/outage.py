"""When the disk says no: what the history writer keeps, drops and reports while its database cannot be written.

A full or read-only ``DATA_DIR``, an I/O error, a file damaged while running: SQLite raises, and the updates of
the failed batch must not be lost with it. They stay in a :class:`Backlog` (in memory, bounded in bytes: past the
bound the oldest go first, each counted by service and time in :class:`Dropped`) and are written, in order, as
soon as a retry succeeds. :class:`WriteHealth` says what fails, since when and how often it was tried, for the
persistence stream and ``/healthz``; once writes resume it keeps the last outage, so a short one is still seen.
"""

from __future__ import annotations

import sqlite3
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from models.messages import iso

#: A row of ``updates``: service, seq, ts (Unix seconds), the zlib-compressed envelope.
Row = tuple[str, int, float, bytes]

#: SQLite's primary result codes (``sqlite_errorname`` without its extended part) and what they mean here.
KINDS = {
    "SQLITE_FULL": "disk_full",
    "SQLITE_READONLY": "read_only",
    "SQLITE_CORRUPT": "damaged",
    "SQLITE_NOTADB": "damaged",
    "SQLITE_CANTOPEN": "cannot_open",
    "SQLITE_IOERR": "io_error",
    "SQLITE_BUSY": "busy",
    "SQLITE_LOCKED": "busy",
    "SQLITE_PERM": "read_only",
}


def classify(error: BaseException) -> str:
    """What kind of failure a write raised: one of :data:`KINDS`' values, ``os_error`` or ``error``."""
    if isinstance(error, sqlite3.Error):
        name = getattr(error, "sqlite_errorname", None) or ""
        for code, kind in KINDS.items():
            if name == code or name.startswith(code + "_"):
                return kind
        text = str(error).lower()  # an error raised before SQLite gave a code
        if "disk is full" in text:
            return "disk_full"
        if "readonly" in text or "read-only" in text:
            return "read_only"
        if "malformed" in text or "not a database" in text:
            return "damaged"
        return "error"
    return "os_error" if isinstance(error, OSError) else "error"


@dataclass
class Dropped:
    """Updates given up on: how many, by service, and the time span they covered (their ``ts``)."""

    count: int = 0
    by_service: dict[str, int] = field(default_factory=dict)
    oldest: float | None = None
    newest: float | None = None

    def add(self, row: Row) -> None:
        service, _, ts, _ = row
        self.count += 1
        self.by_service[service] = self.by_service.get(service, 0) + 1
        self.oldest = ts if self.oldest is None else min(self.oldest, ts)
        self.newest = ts if self.newest is None else max(self.newest, ts)

    def view(self) -> dict[str, Any]:
        return {"count": self.count, "by_service": dict(sorted(self.by_service.items())),
                "oldest": iso(self.oldest), "newest": iso(self.newest)}


class Backlog:
    """Rows not yet committed, oldest first; trimmed to ``max_bytes`` of bodies (always keeping the newest row)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.dropped = Dropped()  # since the writer started
        self._rows: deque[Row] = deque()

    def __len__(self) -> int:
        return len(self._rows)

    def extend(self, rows: Iterable[Row]) -> None:
        for row in rows:
            self._rows.append(row)
            self.bytes += len(row[3])

    def trim(self) -> None:
        """Back within the bound (after a failed write: a burst a working disk takes at once is never cut)."""
        while self.bytes > self.max_bytes and len(self._rows) > 1:
            old = self._rows.popleft()
            self.bytes -= len(old[3])
            self.dropped.add(old)

    def rows(self) -> list[Row]:
        return list(self._rows)

    def clear(self) -> None:
        self._rows.clear()
        self.bytes = 0


@dataclass
class Outage:
    kind: str
    error: str
    since: float
    last_attempt: float
    attempts: int = 1
    until: float | None = None
    dropped_at_start: int = 0  # the backlog's dropped count when it began
    dropped: int = 0  # updates dropped during it (set when it ends)

    def view(self) -> dict[str, Any]:
        return {"kind": self.kind, "error": self.error, "since": iso(self.since), "until": iso(self.until),
                "attempts": self.attempts, "last_attempt": iso(self.last_attempt), "dropped": self.dropped}


@dataclass
class SetAside:
    file: str
    why: str
    at: float


class WriteHealth:
    """The writer's state for the outside world (read from the event loop, written by the writer thread: every
    field is replaced whole, never half-updated)."""

    def __init__(self, backlog: Backlog, clock: Any = time.time) -> None:
        self.backlog = backlog
        self.outage: Outage | None = None
        self.last_outage: Outage | None = None
        self.set_aside: list[SetAside] = []
        self._clock = clock

    @property
    def failing(self) -> bool:
        return self.outage is not None

    def failed(self, error: BaseException) -> Outage:
        now = self._clock()
        kind, text = classify(error), f"{type(error).__name__}: {error}"
        current = self.outage
        if current is None:
            self.outage = Outage(kind, text, now, now, dropped_at_start=self.backlog.dropped.count)
        else:
            self.outage = Outage(kind, text, current.since, now, current.attempts + 1,
                                 dropped_at_start=current.dropped_at_start)
        return self.outage

    def recovered(self) -> Outage | None:
        """Writes go through again: the outage ends, and is kept as the last one."""
        ended = self.outage
        if ended is not None:
            self.last_outage = Outage(ended.kind, ended.error, ended.since, ended.last_attempt, ended.attempts,
                                      self._clock(), ended.dropped_at_start,
                                      self.backlog.dropped.count - ended.dropped_at_start)
            self.outage = None
        return self.last_outage if ended is not None else None

    def brief(self) -> dict[str, Any]:
        """:meth:`view` without its detail (by service, the last outage's, the files set aside): ``status``, while
        failing what fails, since when and how many tries; the updates waiting and how many were dropped."""
        outage = self.outage
        brief: dict[str, Any] = {"status": "failing" if outage else "ok"}
        if outage is not None:
            brief.update(kind=outage.kind, error=outage.error, since=iso(outage.since), attempts=outage.attempts)
        brief.update(pending=len(self.backlog), dropped=self.backlog.dropped.count)
        return brief

    def view(self) -> dict[str, Any]:
        """``status`` (``ok`` or ``failing``), and while failing what fails, since when, how many tries; the
        updates waiting in memory, those dropped (all of them since start-up, by service and time span), the
        last outage, and the files set aside because they were damaged while running."""
        outage, last, dropped = self.outage, self.last_outage, self.backlog.dropped
        view: dict[str, Any] = {"status": "failing" if outage else "ok"}
        if outage is not None:
            view.update(outage.view(), dropped_in_outage=dropped.count - outage.dropped_at_start)
            del view["until"], view["dropped"]
        view.update(pending=len(self.backlog), pending_bytes=self.backlog.bytes,
                    max_pending_bytes=self.backlog.max_bytes, dropped=dropped.view(),
                    last_outage=last.view() if last else None,
                    set_aside=[{"file": s.file, "why": s.why, "at": iso(s.at)} for s in self.set_aside])
        return view
