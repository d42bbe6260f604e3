"""The history's writer: the hub's updates queued, committed in batches by one thread (never on the event loop),
retention, and what happens when the disk refuses them (see :mod:`storage.outage`): kept in memory within a bound,
retried on a new connection, and a file found damaged while running set aside as at start-up."""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from models.messages import Update, epoch
from storage.files import Mode, OtherModeError, intact
from storage.outage import Backlog, Row, WriteHealth, classify

log = logging.getLogger(__name__)

#: Seconds between the writer's retention passes.
PRUNE_INTERVAL = 60.0
#: Compressed updates held in memory while the disk refuses writes: about 2 hours of every stream at the default
#: intervals; past it the oldest are dropped (counted, by service and time span, in the persistence stream).
MAX_PENDING_BYTES = 32 * 2**20
STOP = object()


def _seconds(update: Update) -> float:
    """The update's time as Unix seconds, the ``ts`` its row is found by. The hub stamps every update itself
    (ISO-8601 UTC), so a time that is not one is a bug upstream: raised, not stored under a made-up time."""
    seconds = epoch(update.timestamp)
    if seconds is None:
        raise ValueError(f"update {update.service} #{update.seq} has no ISO-8601 timestamp: {update.timestamp!r}")
    return seconds


class BatchObserver(Protocol):
    """Told of every batch the writer commits (metrics), from the writer thread: rows, seconds, committed or not."""

    def store_batch(self, rows: int, seconds: float, ok: bool) -> None: ...


@dataclass
class StoreStats:
    path: Path
    records_by_service: dict[str, int] = field(default_factory=dict)
    last_save: float | None = None
    oldest: float | None = None
    written: int = 0
    dropped: int = 0  # updates that arrived with no writer running

    @property
    def total_records(self) -> int:
        return sum(self.records_by_service.values())

    def size_bytes(self) -> int:
        size = 0
        for path in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            with contextlib.suppress(FileNotFoundError):  # -wal and -shm come and go with connections
                size += path.stat().st_size
        return size


class Writer:
    """The writing half of :class:`~storage.history.Store`: updates queued by the hub, committed in batches by one
    thread; while the disk refuses them, kept in a bounded :class:`~storage.outage.Backlog` and retried."""

    mode: Mode | None

    def __init__(self, path: Path, *, retention_days: float, retention_per_service: int, flush_interval: float,
                 retry_interval: float, max_pending_bytes: int) -> None:
        self.path = path
        self.retention_days = retention_days
        self.retention_per_service = retention_per_service
        self.flush_interval = flush_interval
        self.retry_interval = retry_interval
        self.stats = StoreStats(path)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        #: Updates not yet committed (bounded in bytes), and what the writer says of the disk.
        self.backlog = Backlog(max_pending_bytes)
        self.writes = WriteHealth(self.backlog)
        self._suspect = False  # a write or read said the file is damaged: the writer checks it
        self.observer: BatchObserver | None = None

    # The file's life, as start-up handles it (the store's).
    def _connect(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _load(self) -> None:
        raise NotImplementedError

    def _set_aside(self, why: str) -> None:
        raise NotImplementedError

    @property
    def pending(self) -> int:
        """Updates waiting for the writer thread."""
        return self._queue.qsize()

    def write_status(self) -> dict[str, Any]:
        """Whether updates are being stored, and if not what fails and since when (see :class:`WriteHealth`)."""
        return self.writes.view()

    def write_brief(self) -> dict[str, Any]:
        """:meth:`write_status` in brief, for ``/healthz`` (see :meth:`WriteHealth.brief`)."""
        return self.writes.brief()

    @property
    def writing(self) -> bool:
        return self._writer is not None and self._writer.is_alive()

    # -- writing --------------------------------------------------------------------------------------
    def append(self, update: Update) -> None:
        """The hub listener: enqueue and return at once (counted as dropped once the writer is gone, so a dead
        writer cannot grow the queue without bound)."""
        if self._writer is not None and not self._writer.is_alive():
            self.stats.dropped += 1
            return
        self._queue.put(update)

    def _write_loop(self) -> None:
        conn: sqlite3.Connection | None = None
        last_prune = time.monotonic()
        stopping = False
        try:
            while not stopping:
                # Failing, the writer tries again every retry_interval with whatever has come meanwhile.
                batch, stopping = self._take(self.retry_interval if self.writes.failing else self.flush_interval)
                self.backlog.extend((u.service, u.seq, _seconds(u), zlib.compress(u.text.encode(), 1)) for u in batch)
                if self._suspect:
                    conn = self._check_damage(conn)
                if len(self.backlog):
                    rows, started = len(self.backlog), time.perf_counter()
                    conn = self._flush(conn)
                    if self.observer is not None:
                        self.observer.store_batch(rows, time.perf_counter() - started, not self.writes.failing)
                if conn is not None and not self.writes.failing and time.monotonic() - last_prune >= PRUNE_INTERVAL:
                    self._prune(conn)
                    last_prune = time.monotonic()
        finally:
            if conn is not None:
                conn.close()
            if len(self.backlog):
                log.error("%d updates could not be stored before shutdown (%s)", len(self.backlog),
                          self.writes.outage.error if self.writes.outage else "no writer")

    def _take(self, wait: float) -> tuple[list[Update], bool]:
        """What queued within ``wait`` seconds, and whether the store is closing."""
        batch: list[Update] = []
        deadline = time.monotonic() + wait
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return batch, False
            if item is STOP:
                return batch, True
            batch.append(item)

    def _flush(self, conn: sqlite3.Connection | None) -> sqlite3.Connection | None:
        """Commit the backlog in one transaction. On failure nothing of it is lost: it stays in the backlog (as
        far as its bound allows) for the next try, on a new connection (the file may have been replaced, or set
        aside meanwhile); the connection to use next is returned (None: open one)."""
        rows = self.backlog.rows()
        try:
            if conn is None:
                conn = self._reconnect()
            stored = self._insert(conn, rows)
        except (sqlite3.Error, OSError, OtherModeError) as error:
            outage = self.writes.failed(error)
            self.backlog.trim()
            if outage.attempts == 1:
                log.error("cannot store updates in %s (%s: %s): %d kept in memory, retried every %g s", self.path,
                          outage.kind, outage.error, len(self.backlog), self.retry_interval)
            if outage.kind == "damaged":
                self._suspect = True
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            return None
        self.backlog.clear()
        ended = self.writes.recovered()
        if ended is not None:
            log.warning("storing updates in %s again after %.0f s (%s); %d updates written now, %d dropped",
                        self.path, (ended.until or 0) - ended.since, ended.kind, len(stored), ended.dropped)
        if len(stored) < len(rows):
            log.warning("%d of %d updates were already stored under the same seq; kept the first",
                        len(rows) - len(stored), len(rows))
        for service in stored:
            self.stats.records_by_service[service] = self.stats.records_by_service.get(service, 0) + 1
        self.stats.written += len(stored)
        self.stats.last_save = time.time()
        if self.stats.oldest is None and rows:
            self.stats.oldest = rows[0][2]
        return conn

    @staticmethod
    def _insert(conn: sqlite3.Connection, rows: list[Row]) -> list[str]:
        """Insert ``rows`` in one transaction; the services of those stored (an update already stored under its
        ``(service, seq)`` is kept once)."""
        stored: list[str] = []
        with conn:
            for row in rows:
                cursor = conn.execute("INSERT OR IGNORE INTO updates(service, seq, ts, body) VALUES (?, ?, ?, ?)",
                                      row)
                if cursor.rowcount:
                    stored.append(row[0])
        return stored

    def _reconnect(self) -> sqlite3.Connection:
        """A writer's connection after a failure, to the file as start-up would find it (a new one if it is gone:
        with the schema and the mode's mark, and the figures recounted)."""
        if self.writes.failing:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._load()
        return self._connect()

    def _check_damage(self, conn: sqlite3.Connection | None) -> sqlite3.Connection | None:
        """A write or read said the file is damaged: checked as at start-up, and if it fails the check, set aside
        (renamed, never deleted) and a new one begun. The backlog then goes into the new file."""
        self._suspect = False
        if conn is not None:
            conn.close()
        try:
            if self.path.exists() and not intact(self.path):
                self._set_aside("failed its integrity check while running")
                self._load()
        except (sqlite3.Error, OSError, OtherModeError) as error:
            self.writes.failed(error)
            log.error("the damaged history database %s could not be set aside: %s", self.path, error)
        return None

    def _prune(self, conn: sqlite3.Connection) -> None:
        """Retention: drop what is older than ``retention_days``, then all but the newest N per service."""
        cutoff = time.time() - self.retention_days * 86400
        try:
            with conn:
                conn.execute("DELETE FROM updates WHERE ts < ?", (cutoff,))
                for (service,) in conn.execute("SELECT DISTINCT service FROM updates").fetchall():
                    conn.execute(
                        "DELETE FROM updates WHERE service = ? AND id <= (SELECT id FROM updates WHERE service = ? "
                        "ORDER BY id DESC LIMIT 1 OFFSET ?)", (service, service, self.retention_per_service))
                counts = conn.execute("SELECT service, COUNT(*) FROM updates GROUP BY service").fetchall()
                self.stats.records_by_service = {service: count for service, count in counts}
                self.stats.oldest = conn.execute("SELECT MIN(ts) FROM updates").fetchone()[0]
        except sqlite3.Error as error:
            log.error("retention pass failed: %s", error)
            self._suspect = self._suspect or classify(error) == "damaged"

    def prune_now(self) -> None:
        conn = self._connect()
        try:
            self._prune(conn)
        finally:
            conn.close()
