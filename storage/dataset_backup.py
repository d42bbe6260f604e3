"""Optional backup of the history database to a private Hugging Face dataset repo.

A Space without persistent storage loses ``data/`` at every restart. With ``HF_TOKEN`` and ``HF_BACKUP_REPO``
set, a scheduled job uploads a consistent snapshot of the database every ``HF_BACKUP_INTERVAL`` seconds, and
start-up puts the newest snapshot back before the store opens, when the local database is missing or empty.
Off by default. No failure stops the server: start-up goes on without history, a failed upload is logged by
the scheduler and shown in the ``persistence`` stream. The token never appears in a log line, an error or a
status: huggingface_hub sends it only in the ``Authorization`` header, and error texts are scrubbed of it.

The snapshot comes from sqlite3's online backup API over a read connection: one read transaction copies every
page, so it is consistent while the store's writer thread goes on committing (WAL lets both run at once).
Older snapshots stay in the dataset repo's commit history.

Live history only: replayed updates are never uploaded. In replay mode there is no backup at all
(:func:`from_settings` gives None; the replay history has its own file, see :mod:`storage.history`), and an upload
sends only a file marked as live-only (``PRAGMA user_version``, :data:`~storage.history.MARKS`), nor does a
restore put a replay file in the live file's place.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.errors import RemoteEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

from config import Redactor
from models.messages import iso
from storage.files import MARKS

if TYPE_CHECKING:
    from config import Settings

log = logging.getLogger(__name__)

#: Where the snapshot lives in the dataset repo.
SNAPSHOT_PATH = "history/history.sqlite3"
#: A Hub that stops answering must not hold the job forever: huggingface_hub's client has no timeout of its own
#: for create_repo and commits. (The blocked thread is abandoned; ``busy`` stays True until it ends.)
UPLOAD_TIMEOUT = 900.0
RESTORE_CHECK_TIMEOUT = 15.0
_TEMP_PREFIX = ".hub-backup-"


class BackupError(Exception):
    """An upload or restore that did not happen; the message is already scrubbed of the token."""


class DatasetBackup:
    def __init__(self, db_path: Path, repo_id: str, token: str, interval: float, endpoint: str | None = None,
                 *, upload_timeout: float = UPLOAD_TIMEOUT) -> None:
        self.db_path = db_path
        self.repo_id = repo_id
        self.interval = interval
        self.upload_timeout = upload_timeout
        self._redact = Redactor([token])  # huggingface_hub's error texts may quote it
        self._api = HfApi(endpoint=endpoint, token=token)
        self._upload_lock = threading.Lock()  # held by the worker thread for the whole upload
        self._repo_ready = False
        self._last_upload: float | None = None
        self._last_error: str | None = None
        self._restored = False

    # -- status ---------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while an upload is in flight."""
        return self._upload_lock.locked()

    def status(self) -> dict[str, str | bool | None]:
        return {
            "enabled": True,
            "repo": self.repo_id,
            "last_upload": iso(self._last_upload),
            "last_error": self._last_error,
            "restored_from_hub": self._restored,
        }

    def _describe(self, error: BaseException) -> str:
        """``Type: message`` on one line, scrubbed of the token, short enough for a status."""
        text = self._redact(" ".join(str(error).split())) or "no details"
        text = f"{type(error).__name__}: {text}"
        return text if len(text) <= 300 else text[:299] + "…"

    # -- restore --------------------------------------------------------------------------------------
    async def restore_if_needed(self) -> bool:
        """Before the store opens: put the Hub's snapshot in place when the local history is missing or empty.

        Returns True when it did. Never raises, and never replaces a database that holds rows.
        """
        try:
            return await asyncio.to_thread(self._restore)
        except Exception as error:  # start-up goes on without history, whatever happened
            log.warning("history not restored from the Hub: %s", self._describe(error))
            return False

    def _restore(self) -> bool:
        self._sweep_leftovers()
        rows = _local_rows(self.db_path)
        if rows is None:
            log.warning("%s is not a readable database: not restoring over it (the store sets it aside)",
                        self.db_path)
            return False
        if rows:
            log.info("local history holds %d updates: not restoring from the Hub", rows)
            return False
        url = hf_hub_url(self.repo_id, SNAPSHOT_PATH, repo_type="dataset", endpoint=self._api.endpoint)
        try:
            # One HEAD, no retries: an unreachable Hub must not hold start-up for long.
            metadata = self._api.get_hf_file_metadata(url=url, timeout=RESTORE_CHECK_TIMEOUT)
        except RepositoryNotFoundError:
            log.info("no backup repo %s on the Hub yet (or the token cannot read it): starting with no history",
                     self.repo_id)
            return False
        except (RemoteEntryNotFoundError, RevisionNotFoundError):
            log.info("no snapshot in %s yet: starting with no history", self.repo_id)
            return False
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        # Downloaded beside the database (same file system), so the final rename is atomic.
        with tempfile.TemporaryDirectory(prefix=f"{_TEMP_PREFIX}restore-", dir=self.db_path.parent) as folder:
            downloaded = Path(self._api.hf_hub_download(
                self.repo_id, SNAPSHOT_PATH, repo_type="dataset", revision=metadata.commit_hash,
                local_dir=folder, cache_dir=Path(folder) / "cache"))  # not the machine's shared cache
            restored = _snapshot_rows(downloaded)
            # An empty database's leftover WAL would be replayed over the restored file: drop it first.
            for suffix in ("-wal", "-shm"):
                Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
            os.replace(downloaded, self.db_path)
        self._restored = True
        log.info("restored %d updates from the Hub (%s at commit %s)", restored, self.repo_id,
                 (metadata.commit_hash or "?")[:8])
        return True

    def _sweep_leftovers(self) -> None:
        """Temporary folders of a process that was killed mid-transfer: a whole snapshot each."""
        if not self.db_path.parent.is_dir():
            return
        for folder in self.db_path.parent.glob(f"{_TEMP_PREFIX}*"):
            if folder.is_dir():
                log.info("removing %s, left by an interrupted backup", folder)
                shutil.rmtree(folder, ignore_errors=True)

    # -- upload ---------------------------------------------------------------------------------------
    async def upload(self) -> str | None:
        """Snapshot the live database and upload it; "done", or "skipped_empty" for a database with no rows.

        Raises :class:`BackupError` (already scrubbed) on failure, and keeps the error for :meth:`status`.
        """
        try:
            result = await asyncio.wait_for(asyncio.to_thread(self._upload), self.upload_timeout)
        except TimeoutError:
            self._last_error = f"TimeoutError: no answer from the Hub within {self.upload_timeout:g} s"
            raise BackupError(self._last_error) from None
        except Exception as error:
            self._last_error = self._describe(error)
            raise BackupError(self._last_error) from None  # the original text may hold the token
        self._last_error = None
        if result == "done":
            self._last_upload = time.time()
        return result

    def _upload(self) -> str:
        if not self._upload_lock.acquire(blocking=False):
            raise BackupError("the previous upload is still running")
        try:
            with tempfile.TemporaryDirectory(prefix=f"{_TEMP_PREFIX}upload-", dir=self.db_path.parent) as folder:
                snapshot = Path(folder) / self.db_path.name
                rows, mark = _snapshot(self.db_path, snapshot)
                if mark != MARKS["live"]:
                    raise BackupError(f"{self.db_path.name} is not marked as live-only history (user_version "
                                      f"{mark}): not uploaded, so replayed updates never reach the Hub")
                if not rows:
                    # Never replace a good snapshot with an empty one (say, after a start-up that could not
                    # restore): there is nothing worth keeping yet.
                    log.info("history is empty: nothing to back up")
                    return "skipped_empty"
                if not self._repo_ready:
                    self._api.create_repo(self.repo_id, repo_type="dataset", private=True, exist_ok=True)
                    self._repo_ready = True
                size = snapshot.stat().st_size
                self._api.upload_file(path_or_fileobj=snapshot, path_in_repo=SNAPSHOT_PATH, repo_id=self.repo_id,
                                      repo_type="dataset", commit_message=f"History snapshot: {rows} updates")
            log.info("backed up %d updates (%d bytes) to %s", rows, size, self.repo_id)
            return "done"
        finally:
            self._upload_lock.release()


def _local_rows(path: Path) -> int | None:
    """How many updates the database at ``path`` holds: 0 when it is missing or has no table, None if unreadable."""
    if not path.exists():
        return 0
    try:
        # Read-write on purpose: it replays a WAL left by a killed process, as the store would.
        conn = sqlite3.connect(path, timeout=10)
        try:
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'updates'")
            if tables.fetchone() is None:
                return 0
            count: int = conn.execute("SELECT COUNT(*) FROM updates").fetchone()[0]
            return count
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return None


def _snapshot(source_path: Path, target_path: Path) -> tuple[int, int]:
    """A consistent copy of the live database at ``target_path``; returns its number of updates and its mark
    (``PRAGMA user_version``)."""
    source = sqlite3.connect(f"{source_path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        target = sqlite3.connect(target_path)
        try:
            source.backup(target)  # all pages in one step: one read transaction, never restarted by writes
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            rows: int = target.execute("SELECT COUNT(*) FROM updates").fetchone()[0]
            mark: int = target.execute("PRAGMA user_version").fetchone()[0]
            return rows, mark
        finally:
            target.close()
    finally:
        source.close()


def _snapshot_rows(path: Path) -> int:
    """Check a downloaded snapshot before it replaces anything; returns its number of updates."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise BackupError("the snapshot on the Hub failed SQLite's integrity check")
            mark = conn.execute("PRAGMA user_version").fetchone()[0]
            if mark not in (0, MARKS["live"]):  # 0: of before the split; the store sorts it out when it opens it
                raise BackupError(f"the snapshot on the Hub is not live history (user_version {mark})")
            rows: int = conn.execute("SELECT COUNT(*) FROM updates").fetchone()[0]
            return rows
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise BackupError(f"the snapshot on the Hub is not a history database ({error})") from None


def from_settings(settings: Settings, db_path: Path) -> DatasetBackup | None:
    """The backup when ``HF_TOKEN`` and ``HF_BACKUP_REPO`` are both set, in live mode; otherwise None (backups
    off). Replay has no backup: replayed updates are never uploaded, and the live snapshot on the Hub must not be
    restored into (or replaced by) a replay history.

    ``HF_BACKUP_REPO`` is already a valid repo id (:data:`config.REPO_ID`) or None: :class:`~config.Settings`
    strips and checks it, refusing to start on a malformed one."""
    token = settings.key("hf_token")
    if not token or not settings.hf_backup_repo:
        return None
    if settings.data_source != "live":
        log.info("replay mode: the history is not backed up to the Hub (%s holds live history only)",
                 settings.hf_backup_repo)
        return None
    return DatasetBackup(db_path, settings.hf_backup_repo, token, settings.hf_backup_interval)
