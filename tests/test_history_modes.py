"""History by mode: live and replayed updates in separate files, a shared file of before the split sorted out once
with nothing lost, and coin series points that carry their quote currency and source."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from app import create_app
from services.persistence import PersistenceService
from storage.files import FILES, MARKS
from storage.history import Store, coin_quote
from tests.support.server import serve
from tests.support.settings import make_settings
from tests.support.wsclient import Client
from ui.history import PriceHistory
from ws.hub import Hub

LIVE, REPLAY = FILES["live"], FILES["replay"]


def market(price: float, mode: str, n: int = 0, **extra: Any) -> dict[str, Any]:
    return {"prices": {"bitcoin": price}, "volumes": {"bitcoin": 1e9}, "market_caps": {"bitcoin": 1e12},
            "source": "coingecko", "quote_currency": "USD", "status": "ok", "data_source": mode,
            "timestamp": f"2026-11-26T10:00:{n:02d}.000Z", **extra}


async def until_written(store: Store, count: int, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while store.stats.written < count:
        assert asyncio.get_running_loop().time() < deadline, f"only {store.stats.written} of {count} written"
        await asyncio.sleep(0.01)


def open_mode(data_dir: Path, mode: str) -> Store:
    return Store.for_mode(data_dir, mode, retention_days=1e6, retention_per_service=10_000,  # type: ignore[arg-type]
                          flush_interval=0.01)


def file_rows(path: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT service, seq, ts, body FROM updates ORDER BY id").fetchall()
    finally:
        conn.close()


def mark(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        value: int = conn.execute("PRAGMA user_version").fetchone()[0]
        return value
    finally:
        conn.close()


async def write_runs(path: Path, runs: Sequence[Sequence[tuple[str, Mapping[str, Any]]]]) -> None:
    """A file as the single history of before the split had it: runs of either mode, one after another, seq
    going on across them."""
    async with Store(path, retention_days=1e6, retention_per_service=10_000, flush_interval=0.01) as store:
        hub = Hub()
        hub.add_listener(store.append)
        published = 0
        for run in runs:
            for service, data in run:
                hub.publish(service, data)
                published += 1
        await until_written(store, published)


# -- two files, never one -----------------------------------------------------------------------------------

async def test_each_mode_reads_and_restores_only_its_own_updates(tmp_path: Path) -> None:
    for mode, price in (("live", 90_000.0), ("replay", 50_000.0)):
        async with open_mode(tmp_path, mode) as store:
            hub = Hub()
            hub.add_listener(store.append)
            for n in range(3 if mode == "live" else 5):
                hub.publish("market_data", market(price + n, mode, n))
            await until_written(store, 3 if mode == "live" else 5)
    assert {p.name for p in tmp_path.glob("*.sqlite3")} == {LIVE, REPLAY}
    assert (mark(tmp_path / LIVE), mark(tmp_path / REPLAY)) == (MARKS["live"], MARKS["replay"])
    async with open_mode(tmp_path, "live") as live:
        assert [u["data"]["data_source"] for u in await live.history("market_data", None, None, 100)] == ["live"] * 3
        assert (await live.coin_series("bitcoin", None, None, 100))["prices"] == [90_000.0, 90_001.0, 90_002.0]
        assert [m["data"]["data_source"] async for m in live.export("market_data", None, None)] == ["live"] * 3
        assert live.max_seq_per_service() == {"market_data": 3}  # not the replay history's 5
        [snapshot] = live.latest_per_service()
        assert snapshot["data"]["prices"]["bitcoin"] == 90_002.0
        payload = await PersistenceService(live).collect()
        assert (payload["data_source"], payload["history_file"], payload["total_records"]) == ("live", LIVE, 3)
        assert payload["backup"] == {"enabled": False}
    async with open_mode(tmp_path, "replay") as replay:
        assert replay.max_seq_per_service() == {"market_data": 5}
        assert (await replay.coin_series("bitcoin", None, None, 100))["prices"][-1] == 50_004.0
        payload = await PersistenceService(replay).collect()
        assert (payload["data_source"], payload["history_file"], payload["total_records"]) == ("replay", REPLAY, 5)
        assert payload["backup"]["enabled"] is False and "never backed up" in str(payload["backup"]["reason"])


async def test_a_file_marked_for_the_other_mode_is_set_aside_not_opened_nor_lost(tmp_path: Path) -> None:
    async with open_mode(tmp_path, "replay") as replay:
        hub = Hub()
        hub.add_listener(replay.append)
        hub.publish("market_data", market(1.0, "replay"))
        await until_written(replay, 1)
    replayed = file_rows(tmp_path / REPLAY)
    (tmp_path / REPLAY).rename(tmp_path / LIVE)  # a replay history where the live one belongs (copied by hand)
    async with open_mode(tmp_path, "live") as live:
        assert live.stats.total_records == 0 and live.latest_per_service() == []
    [aside] = tmp_path.glob(f"{LIVE}.corrupt-*")
    assert file_rows(aside) == replayed and mark(aside) == MARKS["replay"]


# -- the single file of before the split --------------------------------------------------------------------

LIVE_RUN = [("market_data", market(90_000.0, "live")), ("news", {"articles": [], "data_source": "live"}),
            ("scheduler", {"jobs": [], "run": "live 1"})]
REPLAY_RUN = [("market_data", market(50_000.0, "replay", 1)), ("news", {"articles": [], "data_source": "replay"}),
              ("scheduler", {"jobs": [], "run": "replay"}), ("persistence", {"total_records": 3})]
LIVE_AGAIN = [("market_data", market(91_000.0, "live", 2)), ("scheduler", {"jobs": [], "run": "live 2"})]


async def test_an_existing_live_history_keeps_working_unchanged(tmp_path: Path) -> None:
    await write_runs(tmp_path / LIVE, [LIVE_RUN, LIVE_AGAIN])
    before = file_rows(tmp_path / LIVE)
    async with open_mode(tmp_path, "live") as live:
        assert file_rows(tmp_path / LIVE) == before  # not a row moved, changed or lost
        assert mark(tmp_path / LIVE) == MARKS["live"]
        restored = {m["service"]: m["data"] for m in live.latest_per_service()}
        assert restored["market_data"]["prices"] == {"bitcoin": 91_000.0}
        assert live.max_seq_per_service() == {"market_data": 2, "news": 1, "scheduler": 2}
    assert not (tmp_path / REPLAY).exists()


async def test_the_shared_file_is_split_once_by_mode_with_nothing_lost(tmp_path: Path) -> None:
    await write_runs(tmp_path / LIVE, [LIVE_RUN, REPLAY_RUN, LIVE_AGAIN])
    before = file_rows(tmp_path / LIVE)
    async with open_mode(tmp_path, "live") as live:  # the first start after the upgrade
        restored = {m["service"]: m["data"] for m in live.latest_per_service()}
        # The replay run's updates are gone from the live history: no replayed snapshot, price or row of it.
        assert restored["market_data"]["prices"] == {"bitcoin": 91_000.0}
        assert restored["news"]["data_source"] == "live" and restored["scheduler"]["run"] == "live 2"
        assert "persistence" not in restored  # only the replay run published it
        assert (await live.coin_series("bitcoin", None, None, 100))["prices"] == [90_000.0, 91_000.0]
        assert live.stats.records_by_service == {"market_data": 2, "news": 1, "scheduler": 2}
    live_rows, replay_rows = file_rows(tmp_path / LIVE), file_rows(tmp_path / REPLAY)
    assert sorted(live_rows + replay_rows) == sorted(before)  # every row kept, in one file or the other
    assert [row[:2] for row in replay_rows] == [("market_data", 2), ("news", 2), ("scheduler", 2),
                                                ("persistence", 1)]  # the run's updates that name no mode too
    assert (mark(tmp_path / LIVE), mark(tmp_path / REPLAY)) == (MARKS["live"], MARKS["replay"])
    async with open_mode(tmp_path, "replay") as replay:
        restored = {m["service"]: m["data"] for m in replay.latest_per_service()}
        assert restored["market_data"]["prices"] == {"bitcoin": 50_000.0}
    async with open_mode(tmp_path, "live"):  # once: a second start finds nothing to sort out
        assert file_rows(tmp_path / LIVE) == live_rows


async def test_replay_started_first_sorts_the_shared_file_out_too(tmp_path: Path) -> None:
    await write_runs(tmp_path / LIVE, [LIVE_RUN, REPLAY_RUN])
    async with open_mode(tmp_path, "replay") as replay:
        assert replay.stats.records_by_service == {"market_data": 1, "news": 1, "scheduler": 1, "persistence": 1}
        [market_snapshot] = [m for m in replay.latest_per_service() if m["service"] == "market_data"]
        assert market_snapshot["data"]["data_source"] == "replay"
    assert mark(tmp_path / LIVE) == MARKS["live"] and len(file_rows(tmp_path / LIVE)) == 3


async def test_replayed_rows_never_mix_into_a_replay_history_begun_since(tmp_path: Path) -> None:
    async with open_mode(tmp_path, "replay") as replay:  # a replay history of the new layout...
        hub = Hub()
        hub.add_listener(replay.append)
        hub.publish("market_data", market(60_000.0, "replay"))
        await until_written(replay, 1)
    newer = file_rows(tmp_path / REPLAY)
    await write_runs(tmp_path / LIVE, [LIVE_RUN, REPLAY_RUN])  # ...and then a shared file (say, a Hub restore)
    before = file_rows(tmp_path / LIVE)
    async with open_mode(tmp_path, "live"):
        pass
    [kept] = tmp_path.glob("history-replay.split-*.sqlite3")
    assert file_rows(tmp_path / REPLAY) == newer  # its seq 1 and the moved seq 1 would have clashed
    assert sorted(file_rows(tmp_path / LIVE) + file_rows(kept)) == sorted(before)


async def test_a_damaged_shared_file_is_left_for_the_live_store_to_set_aside(tmp_path: Path) -> None:
    (tmp_path / LIVE).write_bytes(b"not a database" * 100)
    async with open_mode(tmp_path, "replay") as replay:
        assert replay.stats.total_records == 0
    assert (tmp_path / LIVE).read_bytes() == b"not a database" * 100


# -- coin series: quote currency and source per point --------------------------------------------------------

def test_coin_quote_reads_the_coins_own_entry_then_the_payload_and_never_guesses() -> None:
    payload = market(1.0, "live", coins=[{"id": "bitcoin", "quote_currency": "USDT", "source": "binance"},
                                         {"id": "ethereum"}])
    assert coin_quote(payload, "bitcoin") == ("USDT", "binance")
    assert coin_quote(payload, "ethereum") == ("USD", "coingecko")  # no own figures: the payload's
    assert coin_quote({"coins": {"bitcoin": {"currency": "EUR", "source": "kraken"}}}, "bitcoin") == ("EUR", "kraken")
    assert coin_quote({"prices": {"bitcoin": 1.0}}, "bitcoin") == (None, None)  # an update of before: not said


async def test_series_points_carry_their_quote_currency_and_source(tmp_path: Path) -> None:
    async with open_mode(tmp_path, "live") as store:
        hub = Hub()
        hub.add_listener(store.append)
        hub.publish("market_data", {"prices": {"bitcoin": 1.0}, "timestamp": "2026-11-26T09:59:00.000Z"})
        hub.publish("market_data", market(90_000.0, "live", 1))
        hub.publish("market_data", market(90_010.0, "live", 2, source="binance", quote_currency="USDT"))
        hub.publish("market_data", market(90_020.0, "live", 3, coins=[
            {"id": "bitcoin", "symbol": "btc", "name": "Bitcoin", "quote_currency": "USD", "source": "kraken"}]))
        await until_written(store, 4)
        series = await store.coin_series("bitcoin", None, None, 100)
    assert series["quote_currencies"] == [None, "USD", "USDT", "USD"]
    assert series["sources"] == [None, "coingecko", "binance", "kraken"]


async def test_the_dashboard_chart_keeps_each_points_currency_and_source(tmp_path: Path) -> None:
    async with open_mode(tmp_path, "live") as store:
        hub = Hub()
        hub.add_listener(store.append)
        hub.publish("market_data", market(90_000.0, "live", 1))
        await until_written(store, 1)
        history = PriceHistory(store)
        newer = market(90_010.0, "live", 2, coins=[{"id": "bitcoin", "quote_currency": "USDT", "source": "binance"}])
        series = await history.series("bitcoin", newer)
    assert list(series.prices) == [90_000.0, 90_010.0]
    assert (list(series.currencies), list(series.sources)) == (["USD", "USDT"], ["coingecko", "binance"])


# -- the whole server, one mode after the other -------------------------------------------------------------

def test_a_restart_in_the_other_mode_restores_nothing_of_it(tmp_path: Path) -> None:
    replay = make_settings(tmp_path, data_source="replay")
    with serve(lambda: create_app(replay), replay) as server:
        for n in range(3):
            server.publish("market_data", market(50_000.0 + n, "replay", n))
        store = server.app.state.store
        server.wait_for(lambda: store.stats.records_by_service.get("market_data", 0) >= 3)
        replay_seq = server.app.state.hub.seq("market_data")
        body = httpx.get(f"{server.base}/api/history/market_data/bitcoin").json()
        assert body["data_source"] == "replay" and body["quote_currencies"][-1] == "USD"
        exported = httpx.get(f"{server.base}/api/export/market_data")
        assert "market_data-replay-" in exported.headers["content-disposition"]

    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        raise httpx.ReadTimeout("never", request=request)

    live = make_settings(tmp_path, data_source="live", http_timeout=120)  # no poll publishes during the test
    with serve(lambda: create_app(live, transport=httpx.MockTransport(never)), live) as server:
        assert server.app.state.store.path == live.data_dir / LIVE
        assert server.app.state.hub.seq("market_data") == 0  # not the replay run's seq
        assert server.app.state.hub.latest("market_data") is None  # nor its snapshot
        with Client(server.ws, "/ws/market_data") as client:
            confirmed = client.recv_type("subscription_confirmed")
        assert confirmed["type"] == "subscription_confirmed"
        body = httpx.get(f"{server.base}/api/history/market_data").json()
        assert (body["data_source"], body["count"]) == ("live", 0)
        assert httpx.get(f"{server.base}/api/history/market_data/bitcoin").status_code == 404
        assert httpx.get(f"{server.base}/api/export/market_data").json() == []
        assert server.publish("market_data", market(90_000.0, "live")).seq == 1
    with serve(lambda: create_app(replay, transport=httpx.MockTransport(never)), replay) as server:
        assert server.app.state.hub.seq("market_data") == replay_seq  # its own history, as it left it
        assert server.app.state.hub.latest_data("market_data")["data_source"] == "replay"



async def test_a_coin_series_decompresses_one_stored_update_at_a_time(tmp_path: Path, monkeypatch: Any) -> None:
    """500 market updates of 41 KiB each would be 20 MB of text at once; a series needs one at a time (a peak each
    worker thread's heap would otherwise keep: the soak's RSS rose with it until the history held 500)."""
    import storage.history

    decompressed = 0
    real_decompress = storage.history.zlib.decompress

    def counting(body: bytes) -> bytes:
        nonlocal decompressed
        decompressed += 1
        return real_decompress(body)

    taken: list[int] = []  # how many had been decompressed when the series took each text
    real_series_of = storage.history.series_of

    def watching(coin: str, texts: Any) -> dict[str, list[Any]]:
        def each() -> Any:
            for text in texts:
                taken.append(decompressed)
                yield text
        return real_series_of(coin, each())

    async with open_mode(tmp_path, "live") as store:
        hub = Hub()
        hub.add_listener(store.append)
        for n in range(20):
            hub.publish("market_data", market(90_000.0 + n, "live", n))
        await until_written(store, 20)
        monkeypatch.setattr(storage.history.zlib, "decompress", counting)
        monkeypatch.setattr(storage.history, "series_of", watching)
        series = store._coin_series("bitcoin", None, None, 500)
    assert series["prices"] == [90_000.0 + n for n in range(20)]
    assert taken == list(range(1, 21))


async def test_an_export_parses_a_bounded_chunk_at_a_time_and_misses_nothing(tmp_path: Path) -> None:
    """500 parsed market updates at once would hold some 170 MB of Python objects: a chunk stops at its bytes."""
    async with open_mode(tmp_path, "live") as store:
        hub = Hub()
        hub.add_listener(store.append)
        for n in range(150):
            hub.publish("market_data", market(90_000.0 + n, "live", n % 60, pad="x" * 40_000))
        await until_written(store, 150)
        sizes: list[int] = []
        real_chunk = store._export_chunk

        def recording(sql: str, params: tuple[Any, ...], chunk_bytes: int) -> Any:
            rows, more = real_chunk(sql, params, chunk_bytes)
            sizes.append(len(rows))
            return rows, more

        store._export_chunk = recording  # type: ignore[method-assign]
        seqs = [m["seq"] async for m in store.export("market_data", None, None, chunk_bytes=100_000)]
        assert seqs == list(range(1, 151))
        assert max(sizes) == 3  # 3 x 40 KB reach 100 KB
        # A chunk full at its count limit, and a last one cut by bytes at its last row: nothing lost, none twice
        assert [m["seq"] async for m in store.export("market_data", None, None, chunk=50)] == list(range(1, 151))
        assert len([m async for m in store.export("market_data", None, None, chunk=3, chunk_bytes=80_000)]) == 150
