"""The history files: their schema, one per mode, and the mark (``PRAGMA user_version``) saying whose they are."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path
from typing import Literal

SCHEMA = """
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY,
    service TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS updates_service_ts ON updates(service, ts);
CREATE UNIQUE INDEX IF NOT EXISTS updates_service_seq ON updates(service, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

Mode = Literal["live", "replay"]


class OtherModeError(Exception):
    """A history file marked as holding the other mode's updates."""


class HistoryUnreadable(Exception):
    """The history database could not be read (damaged, gone, or its disk failing): the reader says so, and the
    writer checks the file as start-up would."""
#: Each mode's history file in ``DATA_DIR``. The live one keeps the name it always had, so an existing history
#: goes on as it is.
FILES: dict[Mode, str] = {"live": "history.sqlite3", "replay": "history-replay.sqlite3"}
#: ``PRAGMA user_version`` of a history file: the mode whose updates it holds. 0 is a file of before the split
#: (or one a store without a mode wrote), which may hold both.
MARKS: dict[Mode, int] = {"live": 1, "replay": 2}
MODE_IN_BODY: dict[bytes, Mode] = {b'"data_source":"replay"': "replay", b'"data_source":"live"': "live"}


def intact(path: Path) -> bool:
    try:
        conn = sqlite3.connect(path, timeout=10)
        try:
            return bool(conn.execute("PRAGMA quick_check").fetchone()[0] == "ok")
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False


def mark(conn: sqlite3.Connection) -> int:
    """The file's :data:`MARKS` value (``PRAGMA user_version``)."""
    mark: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return mark


def table_rows(conn: sqlite3.Connection) -> int:
    """How many updates the database holds; 0 when it has no ``updates`` table."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'updates'").fetchone() is None:
        return 0
    count: int = conn.execute("SELECT COUNT(*) FROM updates").fetchone()[0]
    return count


def numbering_epoch(conn: sqlite3.Connection) -> str:
    """The epoch of the ``seq`` numbering this file continues (``meta.epoch``), kept while the file is intact and
    was closed cleanly (``meta.clean``, see :func:`mark_clean`): a lost history, or one a crash may have cut
    short of updates clients already saw, starts a new epoch, so a resuming client is told the numbering began
    anew rather than shown a gap (or a reused seq) as continuous. Marks the file in use (not clean)."""
    with conn:
        conn.executescript(SCHEMA)
        found = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('epoch', 'clean')").fetchall())
        epoch = found.get("epoch")
        if epoch is None or found.get("clean") != "1":
            epoch = secrets.token_hex(8)
        conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", [("epoch", epoch), ("clean", "0")])
        return str(epoch)


def mark_clean(conn: sqlite3.Connection) -> None:
    """Every update handed to the store is on disk: the next start may keep the epoch."""
    with conn:
        conn.executescript(SCHEMA)
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('clean', '1')")


#: The newest N rows of every service, oldest first within each service.
RECENT_SQL = ("SELECT service, body FROM (SELECT service, seq, body, ROW_NUMBER() OVER "
              "(PARTITION BY service ORDER BY seq DESC) AS n FROM updates) WHERE n <= ? ORDER BY service, seq")
