"""Hub backups of the history database, against a fake Hub on 127.0.0.1 through the real huggingface_hub client.

No request leaves the machine: huggingface_hub's shared client is swapped for one that refuses any host but
127.0.0.1 (tests/support/fake_hf_hub.py), which also steps around the HF_HUB_OFFLINE=1 that tests/conftest.py sets.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from storage.dataset_backup import SNAPSHOT_PATH, BackupError, DatasetBackup, from_settings
from storage.files import FILES, MARKS, Mode
from storage.history import Store
from tests.support.fake_hf_hub import FakeHfHub, loopback_only_session, running
from tests.support.settings import make_settings
from ws.hub import Hub

TOKEN = "hf_fake_token_only_for_the_fake_hub"
REPO = "someone/crypto-monitor-history"


@pytest.fixture
def fake_hf() -> Iterator[FakeHfHub]:
    hf = FakeHfHub(TOKEN)
    with running(hf), loopback_only_session():
        yield hf


def backup_at(data_dir: Path, hf: FakeHfHub, **overrides: Any) -> DatasetBackup:
    values: dict[str, Any] = {"repo_id": REPO, "token": TOKEN, "interval": 3600, "endpoint": hf.base_url}
    values.update(overrides)
    return DatasetBackup(data_dir / "history.sqlite3", **values)


def open_store(data_dir: Path, mode: Mode = "live") -> Store:
    return Store.for_mode(data_dir, mode, retention_days=30, retention_per_service=100_000, flush_interval=0.01)


def rows(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT id, service, seq, ts, body FROM updates ORDER BY id").fetchall()
    finally:
        conn.close()


async def until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def store_with_rows(data_dir: Path, count: int, service: str = "market_data") -> None:
    async with open_store(data_dir) as store:
        hub = Hub()
        hub.add_listener(store.append)
        for n in range(count):
            hub.publish(service, {"n": n})
        await until(lambda: store.stats.written == count)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once the socket is closed


# -- upload and restore -----------------------------------------------------------------------------------

async def test_upload_while_the_store_writes_then_restore_gives_the_same_rows(fake_hf: FakeHfHub,
                                                                               tmp_path: Path) -> None:
    live_dir = tmp_path / "live"
    async with open_store(live_dir) as store:
        hub = Hub()
        hub.add_listener(store.append)
        for n in range(200):
            hub.publish("market_data", {"n": n})
        await until(lambda: store.stats.written == 200)
        stop = asyncio.Event()

        async def keep_publishing() -> None:
            n = 0
            while not stop.is_set():
                hub.publish("news", {"n": n})
                n += 1
                await asyncio.sleep(0.001)

        writer = asyncio.create_task(keep_publishing())
        await until(lambda: store.stats.written > 200)  # news rows committed before the snapshot
        backup = backup_at(live_dir, fake_hf)
        assert await backup.upload() == "done"
        # Go on writing after the snapshot: a commit that ends after upload() returned is not in it.
        # (Conditions, not sleeps: a loaded machine may commit nothing in a fixed 50 ms.)
        written = store.stats.written
        await until(lambda: store.stats.written > written)
        stop.set()
        await writer
        await until(lambda: store.stats.written == hub.published)

        # The snapshot taken mid-write is consistent: exactly the first N committed rows of the live database.
        snapshot = tmp_path / "snapshot.sqlite3"
        snapshot.write_bytes(fake_hf.file(REPO, SNAPSHOT_PATH))
        assert snapshot.read_bytes()[18] == 1  # rollback journal: one self-contained file, no WAL needed
        taken, live = rows(snapshot), rows(store.path)
        assert 200 < len(taken) < len(live)
        assert taken == live[:len(taken)]
        status = backup.status()
        assert status["last_upload"] is not None
        assert status["last_error"] is None
        assert status["restored_from_hub"] is False

        # Into a data dir whose database the store created but never filled: replaced by the snapshot.
        empty_dir = tmp_path / "empty"
        async with open_store(empty_dir):
            pass
        restorer = backup_at(empty_dir, fake_hf)
        assert await restorer.restore_if_needed() is True
        assert restorer.status()["restored_from_hub"] is True
        assert rows(empty_dir / "history.sqlite3") == taken

        # Once writing has stopped, a new upload restored into a data dir with no database is the live history.
        assert await backup.upload() == "done"
        fresh_dir = tmp_path / "fresh"
        assert await backup_at(fresh_dir, fake_hf).restore_if_needed() is True
        async with open_store(fresh_dir) as restored:  # the store opens the restored file as its own
            assert restored.stats.total_records == len(live)
            assert restored.stats.records_by_service == store.stats.records_by_service
            newest = await restored.history("news", None, None, 1)
            assert newest == await store.history("news", None, None, 1)
        assert rows(fresh_dir / "history.sqlite3") == live
    assert not list(fresh_dir.glob(".hub-*")), "temporary folders are cleaned up"

    repo = fake_hf.repos[("dataset", REPO)]
    assert repo.private is True
    assert {seen.authorization for seen in fake_hf.requests} == {f"Bearer {TOKEN}"}


async def test_restore_is_skipped_when_the_local_database_has_rows(fake_hf: FakeHfHub, tmp_path: Path) -> None:
    await store_with_rows(tmp_path / "other", 5, service="news")
    assert await backup_at(tmp_path / "other", fake_hf).upload() == "done"
    local_dir = tmp_path / "local"
    await store_with_rows(local_dir, 3)
    before = rows(local_dir / "history.sqlite3")
    leftover = local_dir / ".hub-backup-upload-killed"  # as a process killed mid-upload leaves it
    leftover.mkdir()
    (leftover / "history.sqlite3").write_bytes(b"x" * 1000)
    fake_hf.requests.clear()

    backup = backup_at(local_dir, fake_hf)
    assert await backup.restore_if_needed() is False
    assert rows(local_dir / "history.sqlite3") == before
    assert fake_hf.requests == []  # decided locally, without asking the Hub
    assert not leftover.exists()
    assert backup.status()["restored_from_hub"] is False


async def test_restore_never_writes_over_an_unreadable_database(fake_hf: FakeHfHub, tmp_path: Path) -> None:
    await store_with_rows(tmp_path / "other", 5)
    assert await backup_at(tmp_path / "other", fake_hf).upload() == "done"
    damaged = tmp_path / "local" / "history.sqlite3"
    damaged.parent.mkdir()
    damaged.write_bytes(b"not a database at all" * 100)

    assert await backup_at(tmp_path / "local", fake_hf).restore_if_needed() is False
    assert damaged.read_bytes() == b"not a database at all" * 100  # left for the store to set aside


async def test_restore_without_repo_or_snapshot_returns_false(fake_hf: FakeHfHub, tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="storage.dataset_backup")
    backup = backup_at(tmp_path, fake_hf)
    assert await backup.restore_if_needed() is False  # no repo
    assert "no backup repo" in caplog.text

    # The repo exists (made by another client of the same Hub) but holds no snapshot yet.
    await asyncio.to_thread(HfApi(endpoint=fake_hf.base_url, token=TOKEN).create_repo, REPO, repo_type="dataset",
                            private=True)
    assert await backup.restore_if_needed() is False
    assert "no snapshot" in caplog.text
    assert not (tmp_path / "history.sqlite3").exists()
    assert backup.status()["restored_from_hub"] is False


async def test_empty_history_is_never_uploaded(fake_hf: FakeHfHub, tmp_path: Path) -> None:
    async with open_store(tmp_path):
        backup = backup_at(tmp_path, fake_hf)
        assert await backup.upload() == "skipped_empty"
    assert fake_hf.repos == {}  # an empty snapshot must never replace a good one
    assert backup.status()["last_upload"] is None


async def test_one_upload_at_a_time(fake_hf: FakeHfHub, tmp_path: Path) -> None:
    await store_with_rows(tmp_path, 50)
    backup = backup_at(tmp_path, fake_hf)
    assert backup.busy is False
    first = asyncio.create_task(backup.upload())
    await until(lambda: backup.busy or first.done())
    with pytest.raises(BackupError, match="previous upload is still running"):
        await backup.upload()
    assert await first == "done"
    assert backup.busy is False


# -- failures ---------------------------------------------------------------------------------------------

def assert_no_token(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text


async def test_unreachable_hf_hub(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    await store_with_rows(tmp_path / "full", 5)
    with loopback_only_session():
        endpoint = closed_port_url()
        restorer = DatasetBackup(tmp_path / "empty" / "history.sqlite3", REPO, TOKEN, 3600, endpoint=endpoint)
        assert await restorer.restore_if_needed() is False
        assert "not restored" in caplog.text

        backup = DatasetBackup(tmp_path / "full" / "history.sqlite3", REPO, TOKEN, 3600, endpoint=endpoint)
        with pytest.raises(BackupError) as raised:
            await backup.upload()
    status = backup.status()
    assert status["last_error"] is not None and "ConnectError" in str(status["last_error"])
    assert status["last_upload"] is None
    assert backup.busy is False
    assert_no_token(str(status), caplog.text, "".join(traceback.format_exception(raised.value)))


async def test_an_error_text_holding_the_token_is_scrubbed(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A proxy that echoes the Authorization header into its error must not leak it into logs or status."""
    await store_with_rows(tmp_path, 5)

    async def echoing_proxy(scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope["headers"])
        body = f"refused {headers.get(b'authorization', b'').decode()}".encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    proxy = FakeHfHub(TOKEN)
    proxy.app = echoing_proxy  # type: ignore[assignment]
    with running(proxy), loopback_only_session():
        backup = backup_at(tmp_path, proxy)
        with pytest.raises(BackupError) as raised:
            await backup.upload()
    error = str(backup.status()["last_error"])
    assert "refused Bearer ***" in error
    assert_no_token(error, str(raised.value), caplog.text, "".join(traceback.format_exception(raised.value)))


async def test_an_hf_hub_that_stops_answering_does_not_hold_the_job(tmp_path: Path) -> None:
    await store_with_rows(tmp_path, 5)
    answer = threading.Event()

    async def hanging_hf_hub(scope: Any, receive: Any, send: Any) -> None:
        while not answer.is_set():
            await asyncio.sleep(0.01)
        await send({"type": "http.response.start", "status": 503, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    silent = FakeHfHub(TOKEN)
    silent.app = hanging_hf_hub  # type: ignore[assignment]
    with running(silent), loopback_only_session():
        backup = backup_at(tmp_path, silent, upload_timeout=0.3)
        with pytest.raises(BackupError, match=r"no answer from the Hub within 0\.3 s"):
            await backup.upload()
        assert backup.status()["last_error"] == "TimeoutError: no answer from the Hub within 0.3 s"
        # The abandoned request still runs in its thread: no second upload beside it.
        assert backup.busy is True
        with pytest.raises(BackupError, match="previous upload is still running"):
            await backup.upload()
        answer.set()
        await until(lambda: not backup.busy)


# -- settings ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("token", "repo"), [(None, REPO), (TOKEN, None), ("  ", REPO), (TOKEN, "  ")])
def test_backups_are_off_without_token_and_repo(tmp_path: Path, token: str | None, repo: str | None) -> None:
    settings = make_settings(tmp_path, hf_token=token, hf_backup_repo=repo)
    assert from_settings(settings, tmp_path / "history.sqlite3") is None


def test_a_malformed_repo_id_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dataset repo id"):
        make_settings(tmp_path, hf_token=TOKEN, hf_backup_repo="not a repo id")


def test_from_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, hf_token=TOKEN, hf_backup_repo=REPO, hf_backup_interval=600,
                             data_source="live")
    backup = from_settings(settings, tmp_path / "history.sqlite3")
    assert backup is not None
    assert (backup.repo_id, backup.interval, backup.busy) == (REPO, 600, False)
    assert backup.status() == {"enabled": True, "repo": REPO, "last_upload": None, "last_error": None,
                               "restored_from_hub": False}
    assert_no_token(str(backup.status()), repr(backup.status()))


# -- live history only ------------------------------------------------------------------------------------

def test_replay_has_no_backup(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, hf_token=TOKEN, hf_backup_repo=REPO, data_source="replay")
    assert from_settings(settings, tmp_path / FILES["replay"]) is None


async def test_only_a_file_marked_live_is_uploaded(fake_hf: FakeHfHub, tmp_path: Path) -> None:
    async with open_store(tmp_path / "replay", "replay") as store:  # a replay history, wherever it is pointed at
        hub = Hub()
        hub.add_listener(store.append)
        hub.publish("market_data", {"n": 1, "data_source": "replay"})
        await until(lambda: store.stats.written == 1)
    unmarked = tmp_path / "unmarked"  # written by a store without a mode: of before the split, may hold both
    async with Store(unmarked / "history.sqlite3", retention_days=30, retention_per_service=10,
                     flush_interval=0.01) as store:
        hub = Hub()
        hub.add_listener(store.append)
        hub.publish("market_data", {"n": 1, "data_source": "replay"})
        await until(lambda: store.stats.written == 1)
    for data_dir, path in ((tmp_path / "replay", FILES["replay"]), (unmarked, "history.sqlite3")):
        backup = DatasetBackup(data_dir / path, REPO, TOKEN, 3600, endpoint=fake_hf.base_url)
        with pytest.raises(BackupError, match="not marked as live-only history"):
            await backup.upload()
    assert fake_hf.repos == {}  # nothing reached the Hub


async def test_a_replay_snapshot_on_the_hub_is_never_restored_as_live(fake_hf: FakeHfHub, tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    await store_with_rows(tmp_path / "live", 3)
    backup = backup_at(tmp_path / "live", fake_hf)
    assert await backup.upload() == "done"
    # The snapshot on the Hub turns out to be a replay history (put there by hand, say).
    replay_file = tmp_path / "replayed.sqlite3"
    replay_file.write_bytes(fake_hf.file(REPO, SNAPSHOT_PATH))
    conn = sqlite3.connect(replay_file)
    conn.execute(f"PRAGMA user_version = {MARKS['replay']}")
    conn.close()
    await asyncio.to_thread(HfApi(endpoint=fake_hf.base_url, token=TOKEN).upload_file,
                            path_or_fileobj=replay_file, path_in_repo=SNAPSHOT_PATH, repo_id=REPO,
                            repo_type="dataset")
    restorer = backup_at(tmp_path / "empty", fake_hf)
    assert await restorer.restore_if_needed() is False
    assert "not live history (user_version 2)" in caplog.text
    assert not (tmp_path / "empty" / FILES["live"]).exists()
