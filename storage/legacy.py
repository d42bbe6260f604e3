"""A history file of before the split by mode: its replayed updates move, once, to the replay file.

Until then one file held both modes. The first start of either mode sorts it out (:func:`split_legacy`): replayed
updates are found by the ``"data_source":"replay"`` their payloads carry (an update that names no mode goes with the
nearest one before it that does), committed to the replay file first, and only then deleted from the live one; the
live file is then marked live. A damaged file is left for the live store to set aside.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import zlib
from pathlib import Path

from storage.files import FILES, MARKS, MODE_IN_BODY, SCHEMA, Mode, mark, table_rows

log = logging.getLogger(__name__)


def split_legacy(data_dir: Path) -> None:
    """Once, on the first start of either mode after the split by mode: move the replayed updates of the live
    file of before it (where both modes wrote) to the replay file, and mark the live file as live-only.

    Nothing is lost: the moved rows are committed in the replay file (or, when that already holds updates, in a
    file of their own beside it, ``history-replay.split-<time>.sqlite3``) before they leave the live file. A file
    that is missing, already marked, or damaged is left as it is (the live store sets a damaged one aside)."""
    live = data_dir / FILES["live"]
    if not live.exists():
        return
    try:
        conn = sqlite3.connect(live, timeout=10)
        try:
            if mark(conn) != 0:
                return
            if not table_rows(conn):
                return  # the live store marks it when it opens it
            if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                log.error("%s failed its integrity check: its replayed updates are not sorted out", live)
                return
            _split(conn, live, data_dir)
        finally:
            conn.close()
    except sqlite3.Error as error:
        log.error("the replayed updates of %s could not be sorted out (%s): the file is left as it is", live, error)


def _split(conn: sqlite3.Connection, live: Path, data_dir: Path) -> None:
    started = time.monotonic()
    replayed = _replayed_ids(conn)
    if replayed:
        target = data_dir / FILES["replay"]
        if target.exists():
            try:
                probe = sqlite3.connect(target, timeout=10)
                try:
                    taken = table_rows(probe) > 0
                finally:
                    probe.close()
            except sqlite3.DatabaseError:
                taken = True
            if taken:  # never mixed into a replay history begun since: kept apart, whole
                target = data_dir / f"history-replay.split-{int(time.time())}.sqlite3"
        _copy(conn, replayed, target)
    with conn:
        conn.executemany("DELETE FROM updates WHERE id = ?", ((row_id,) for row_id in replayed))
        conn.execute(f"PRAGMA user_version = {MARKS['live']}")
    if replayed:
        log.warning("moved %d replayed updates out of the live history %s to %s (%.1f s): live and replay no "
                    "longer share a file", len(replayed), live, target, time.monotonic() - started)


def _body_mode(body: bytes) -> Mode | None:
    """The mode an update says it was made in (data payloads carry ``data_source``), or None when it does not."""
    try:
        text = zlib.decompress(body)
    except zlib.error:
        return None
    for marker, mode in MODE_IN_BODY.items():
        if marker in text:  # compact JSON as the hub serialises it; inside a string the quotes would be escaped
            return mode
    return None


def _replayed_ids(conn: sqlite3.Connection) -> list[int]:
    """The ids of the replayed updates. Updates that do not say their mode (scheduler, pool_manager, persistence)
    belong to the run around them: one server writes a file at a time, so a run's rows are consecutive, and the
    mode of the nearest update before (else after) that says one is theirs. None says one: all are live."""
    ids: list[int] = []
    modes: list[Mode | None] = []
    for row_id, body in conn.execute("SELECT id, body FROM updates ORDER BY id"):
        ids.append(row_id)
        modes.append(_body_mode(body))
    first = next((m for m in modes if m is not None), "live")
    replayed, current = [], first
    for row_id, mode in zip(ids, modes, strict=True):
        current = mode or current
        if current == "replay":
            replayed.append(row_id)
    return replayed


def _copy(conn: sqlite3.Connection, ids: list[int], target: Path) -> None:
    """The rows ``ids`` of ``conn`` into ``target`` (a replay file), in one committed transaction."""
    out = sqlite3.connect(target, timeout=10)
    try:
        out.executescript(SCHEMA)
        with out:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                rows = conn.execute(f"SELECT service, seq, ts, body FROM updates WHERE id IN "
                                    f"({','.join('?' * len(chunk))}) ORDER BY id", chunk).fetchall()
                out.executemany("INSERT INTO updates(service, seq, ts, body) VALUES (?, ?, ?, ?)", rows)
            out.execute(f"PRAGMA user_version = {MARKS['replay']}")
    finally:
        out.close()
