"""The history store: every published update in SQLite (WAL), written in batches by one thread.

The hub calls :meth:`Store.append` for each update; it only enqueues (never touches the disk on the event
loop). The writer thread commits what has queued every ``flush_interval`` seconds in one transaction, so a
``kill -9`` loses at most that last batch, and WAL never leaves a half-written database. Reads open their own
connections in worker threads (WAL lets them run beside the writer). Bodies are the envelope JSON exactly as
sent to clients, zlib-compressed (about 3x smaller for market data).

A database that fails SQLite's integrity check at start-up is set aside (renamed, never deleted) and a new one
begun, so a damaged file neither stops the server nor gets overwritten.

History by mode: live and replayed updates never share a file. Each mode has its own database in ``DATA_DIR``
(:data:`FILES`: ``history.sqlite3`` for live, ``history-replay.sqlite3`` for replay), chosen once by
:meth:`Store.for_mode`. Separate files rather than a mode column every read would have to filter on: no query
can forget the filter (history, export, charts, the snapshots and ``seq`` a restart continues from all read one
mode's file), retention in one mode never prunes the other's, and the Hub backup, which uploads a file, is
live-only by construction. ``PRAGMA user_version`` marks which mode's updates a file holds (:data:`MARKS`); a
store never opens a file marked for the other mode (it is set aside, not lost). A file of before the split
(``user_version`` 0: the live file, where both modes wrote) keeps working as the live history: the first start
of either mode moves its replayed updates, once, to the replay file (:func:`split_legacy`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
import zlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from models.messages import Update
from storage.files import (
    FILES,
    MARKS,
    RECENT_SQL,
    SCHEMA,
    HistoryUnreadable,
    Mode,
    OtherModeError,
    intact,
    mark,
    mark_clean,
    numbering_epoch,
    table_rows,
)
from storage.legacy import split_legacy
from storage.outage import SetAside, classify
from storage.series import coin_quote as coin_quote  # where callers have always found it
from storage.series import series_of
from storage.writer import MAX_PENDING_BYTES, STOP, BatchObserver, StoreStats, Writer

__all__ = ["BatchObserver", "HistoryUnreadable", "OtherModeError", "Store", "StoreStats", "coin_quote", "decode"]

log = logging.getLogger(__name__)

#: An export chunk stops after this much JSON text (it is parsed in a worker thread, all of it at once).
EXPORT_CHUNK_BYTES = 2 * 2**20


def decode(body: bytes) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(zlib.decompress(body))
    return message


class Store(Writer):
    def __init__(self, path: Path, *, retention_days: float, retention_per_service: int,
                 flush_interval: float = 0.25, mode: Mode | None = None, retry_interval: float = 2.0,
                 max_pending_bytes: int = MAX_PENDING_BYTES) -> None:
        """``mode``: the file is that mode's history in a data dir laid out as :data:`FILES` says (see
        :meth:`for_mode`); it is marked so, and a file of before the split is sorted out first. None: a file of
        its own, left unmarked. While writes fail (a full or read-only disk), updates wait in memory, at most
        ``max_pending_bytes`` of them compressed (the oldest are dropped first, and counted), and are retried
        every ``retry_interval`` seconds."""
        super().__init__(path, retention_days=retention_days, retention_per_service=retention_per_service,
                         flush_interval=flush_interval, retry_interval=retry_interval,
                         max_pending_bytes=max_pending_bytes)
        self.mode = mode

    @classmethod
    def for_mode(cls, data_dir: Path, mode: Mode, *, retention_days: float, retention_per_service: int,
                 flush_interval: float = 0.25) -> Store:
        """The history of ``mode`` in ``data_dir``: its own file, which only that mode's updates ever enter."""
        return cls(data_dir / FILES[mode], retention_days=retention_days,
                   retention_per_service=retention_per_service, flush_interval=flush_interval, mode=mode)

    # -- life -----------------------------------------------------------------------------------------
    async def __aenter__(self) -> Store:
        await asyncio.to_thread(self._open)
        self._writer = threading.Thread(target=self._write_loop, name="store-writer", daemon=True)
        self._writer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._queue.put(STOP)
        if self._writer is not None:
            await asyncio.to_thread(self._writer.join, 10)
            if not self._writer.is_alive() and self._queue.empty() and not self.stats.dropped:
                await asyncio.to_thread(self._closed_cleanly)

    def _closed_cleanly(self) -> None:
        conn = self._connect()
        try:
            mark_clean(conn)
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a process crash loses no committed batch
        return conn

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not intact(self.path):
            self._set_aside("failed its integrity check")
        if self.mode is not None:
            split_legacy(self.path.parent)  # before either mode's file is read: a shared file of before the split
        try:
            self._load()
        except OtherModeError as error:
            self._set_aside(str(error))
            self._load()
        except sqlite3.DatabaseError as error:  # intact, but not a history database we can use (an old schema)
            self._set_aside(f"cannot be used ({error})")
            self._load()

    def _set_aside(self, why: str) -> None:
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        log.error("history database %s %s; kept as %s, starting a new one", self.path, why, aside)
        self.path.rename(aside)
        self.writes.set_aside.append(SetAside(aside.name, why, time.time()))
        wal = Path(f"{self.path}-wal")
        if wal.exists():  # committed updates may still be in it: kept with the file (SQLite reads it from there)
            wal.rename(f"{aside}-wal")
        Path(f"{self.path}-shm").unlink(missing_ok=True)

    def _load(self) -> None:
        conn = self._connect()
        try:
            if self.mode is not None:
                self._check_mark(conn)
            with conn:
                conn.executescript(SCHEMA)
                rows = conn.execute("SELECT service, COUNT(*) FROM updates GROUP BY service").fetchall()
                self.stats.records_by_service = {service: count for service, count in rows}
                self.stats.oldest = conn.execute("SELECT MIN(ts) FROM updates").fetchone()[0]
                if self.mode is not None and mark(conn) == 0 and (not rows or self.mode == "replay"):
                    # A new file (or a replay file, which only replay or the split ever wrote): this mode's now.
                    conn.execute(f"PRAGMA user_version = {MARKS[self.mode]}")
        finally:
            conn.close()

    def _check_mark(self, conn: sqlite3.Connection) -> None:
        assert self.mode is not None
        found = mark(conn)
        if found not in (0, MARKS[self.mode]):
            holds = next((m for m, n in MARKS.items() if n == found), f"unknown (user_version {found})")
            raise OtherModeError(f"holds {holds} updates, not {self.mode} ones")
        if found == 0 and self.mode == "live" and table_rows(conn):
            log.warning("%s is a history of before the split by mode whose replayed updates could not be sorted "
                        "out: served as it is, and never backed up", self.path)

    # -- reading --------------------------------------------------------------------------------------
    # Everything below reads and decodes in a worker thread: a history of thousands of updates takes seconds to
    # decompress and parse, which on the event loop would stall every client.
    def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
            try:
                return conn.execute(sql, params).fetchall()
            finally:
                conn.close()
        except sqlite3.Error as error:
            kind = classify(error)
            if kind == "damaged":
                self._suspect = True  # the writer checks the file, as start-up would
            raise HistoryUnreadable(f"the history cannot be read now ({kind}: {error})") from error

    def _texts(self, sql: str, params: tuple[Any, ...]) -> list[bytes]:
        return [zlib.decompress(body) for (body,) in self._read(sql, params)]

    def _messages(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        return [orjson.loads(text) for text in self._texts(sql, params)]

    def latest_per_service(self) -> list[dict[str, Any]]:
        """The newest stored update of every service (envelopes), for the hub's snapshots after a restart.

        A row that cannot be read back is logged and left out: it must not keep the server from starting."""
        rows = self._read("SELECT service, body FROM updates WHERE id IN "
                          "(SELECT MAX(id) FROM updates GROUP BY service)", ())
        messages = []
        for service, body in rows:
            try:
                message = decode(body)
                if not isinstance(message.get("seq"), int) or not isinstance(message.get("timestamp"), str) \
                        or message.get("service") != service or not isinstance(message.get("data"), dict):
                    raise ValueError("not an update envelope")
            except (zlib.error, ValueError, AttributeError) as error:  # orjson's JSONDecodeError is a ValueError
                log.error("the newest stored update of %s cannot be read (%s): no snapshot for it", service, error)
                continue
            messages.append(message)
        return messages

    def epoch(self) -> str:
        """The epoch of this history's ``seq`` numbering, kept in the file (a new one for a new file)."""
        conn = self._connect()
        try:
            return numbering_epoch(conn)
        finally:
            conn.close()

    def recent(self, per_service: int, epoch: str) -> list[Update]:
        """The newest ``per_service`` stored updates of every service numbered in ``epoch``, oldest first: what
        the hub's resume ring holds again after a restart. Rows that cannot be read back are left out."""
        updates: list[Update] = []
        for service, body in self._read(RECENT_SQL, (per_service,)):
            try:
                text = zlib.decompress(body).decode()
                message = orjson.loads(text)
            except (zlib.error, ValueError):
                continue
            if message.get("epoch") == epoch and isinstance(message.get("seq"), int):
                if updates and updates[-1].service == service:  # only a service's newest keeps its parsed data
                    updates[-1] = replace(updates[-1], data={})
                updates.append(Update(service, message["seq"], message.get("timestamp", ""),
                                      message.get("data") or {}, text, epoch))
        return updates

    def max_seq_per_service(self) -> dict[str, int]:
        """The highest ``seq`` stored for every service, readable or not: the hub continues after it."""
        return {service: int(seq) for service, seq in
                self._read("SELECT service, MAX(seq) FROM updates GROUP BY service", ())}

    def _history_sql(self, service: str, since: float | None, until: float | None,
                     limit: int) -> tuple[str, tuple[Any, ...]]:
        sql, params = self._range("SELECT body FROM updates WHERE service = ?", service, since, until)
        return sql + " ORDER BY ts DESC, id DESC LIMIT ?", (*params, limit)

    async def history(self, service: str, since: float | None, until: float | None,
                      limit: int) -> list[dict[str, Any]]:
        """Stored updates of ``service``, newest first."""
        return await asyncio.to_thread(self._messages, *self._history_sql(service, since, until, limit))

    async def history_texts(self, service: str, since: float | None, until: float | None,
                            limit: int) -> list[bytes]:
        """The same updates as :meth:`history`, as the JSON texts clients received, not parsed."""
        return await asyncio.to_thread(self._texts, *self._history_sql(service, since, until, limit))

    async def coin_series(self, coin: str, since: float | None, until: float | None,
                          limit: int) -> dict[str, list[Any]]:
        """A coin's price, volume and market cap over time, oldest first, one point per fetch; each point with
        the quote currency its figures are in and the provider that gave them (``quote_currencies``,
        ``sources``: None where the stored update does not say)."""
        return await asyncio.to_thread(self._coin_series, coin, since, until, limit)

    def _coin_series(self, coin: str, since: float | None, until: float | None,
                     limit: int) -> dict[str, list[Any]]:
        # Decompressed one at a time as the series takes them: 500 market updates at once are 20 MB of text
        # (41 KiB each) on top of their compressed rows, a peak each worker thread's heap would keep.
        rows = self._read(*self._history_sql("market_data", since, until, limit))
        return series_of(coin, (zlib.decompress(body) for (body,) in reversed(rows)))

    async def export(self, service: str, since: float | None, until: float | None, chunk: int = 500,
                     chunk_bytes: int = EXPORT_CHUNK_BYTES) -> AsyncIterator[dict[str, Any]]:
        """Every stored update of ``service`` in the range, oldest first, read a chunk at a time: at most
        ``chunk`` updates, and no more than about ``chunk_bytes`` of JSON text (500 parsed market updates
        would hold some 170 MB of Python objects at once)."""
        last_id = 0
        base, params = self._range("SELECT id, body FROM updates WHERE service = ?", service, since, until)
        sql = base + " AND id > ? ORDER BY id LIMIT ?"
        while True:
            rows, more = await asyncio.to_thread(self._export_chunk, sql, (*params, last_id, chunk), chunk_bytes)
            for row_id, message in rows:
                last_id = row_id
                yield message
            if not more:
                return

    def _export_chunk(self, sql: str, params: tuple[Any, ...],
                      chunk_bytes: int) -> tuple[list[tuple[int, dict[str, Any]]], bool]:
        """The chunk's updates, parsed, and whether more may follow (the chunk was cut short or is full)."""
        rows = self._read(sql, params)
        parsed: list[tuple[int, dict[str, Any]]] = []
        size = 0
        for row_id, body in rows:
            text = zlib.decompress(body)
            parsed.append((row_id, orjson.loads(text)))
            size += len(text)
            if size >= chunk_bytes and len(parsed) < len(rows):
                return parsed, True
        return parsed, len(rows) == params[-1]

    @staticmethod
    def _range(sql: str, service: str, since: float | None,
               until: float | None) -> tuple[str, tuple[Any, ...]]:
        params: list[Any] = [service]
        if since is not None:
            sql += " AND ts >= ?"
            params.append(since)
        if until is not None:
            sql += " AND ts <= ?"
            params.append(until)
        return sql, tuple(params)


# -- files and the split by mode --------------------------------------------------------------------------
