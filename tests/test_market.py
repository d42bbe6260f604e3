"""Market providers against recorded bodies, the market pool's failover, and the market_data payload."""

from __future__ import annotations

import json

import httpx
import orjson
import pytest

from services.fetch import AnswerError, Fetcher
from services.market_data import MarketDataService
from services.pools import Pool
from services.providers.market import CoinGecko, CoinPaprika, Kraken
from tests.conftest import recorded, routes_transport

GECKO = "https://api.coingecko.com/api/v3/coins/markets"
PAPRIKA = "https://api.coinpaprika.com/v1/tickers"
KRAKEN = "https://api.kraken.com/0/public/Ticker"
SPEC_KEYS = {"prices", "volumes", "market_caps", "price_changes", "source", "timestamp"}


# -- normalisers ----------------------------------------------------------------------------------------

def test_coingecko_markets_recorded() -> None:
    snapshot = CoinGecko.normalize_markets(orjson.loads(recorded("coingecko/coins-markets.json")))
    assert len(snapshot.quotes) == 30
    btc = snapshot.quotes[0]
    assert (btc.id, btc.symbol, btc.rank) == ("bitcoin", "BTC", 1)
    assert btc.price > 0 and btc.market_cap and btc.volume_24h and btc.change_24h is not None
    one = CoinGecko.normalize_markets(orjson.loads(recorded("coingecko/coins-markets-1.json")))
    assert one.quotes[0].price == 77671 and one.quotes[0].market_cap == 1555886872303


def test_coingecko_error_body_and_changed_shape() -> None:
    with pytest.raises(AnswerError, match="coingecko error"):
        CoinGecko.normalize_markets(orjson.loads(recorded("coingecko/error-429-rate-limit.json")))
    with pytest.raises(AnswerError):
        CoinGecko.normalize_markets({"coins": []})
    # a coin without a price is left out, a zero market cap is "unknown", not zero
    snap = CoinGecko.normalize_markets([{"id": "a", "current_price": None}, {"id": "b", "symbol": "b",
                                        "current_price": 2, "market_cap": 0, "total_volume": "n/a"}])
    assert [q.id for q in snap.quotes] == ["b"] and snap.quotes[0].market_cap is None
    assert snap.quotes[0].volume_24h is None


def test_coinpaprika_tickers_recorded_and_ids_mapped() -> None:
    snapshot = CoinPaprika.normalize_tickers(orjson.loads(recorded("coinpaprika/tickers.json")))
    assert [q.id for q in snapshot.quotes] == ["bitcoin", "ethereum", "tether"]
    assert snapshot.quotes[0].price == pytest.approx(26426.246037855784)
    with pytest.raises(AnswerError):
        CoinPaprika.normalize_tickers({"error": "id not found"})
    with pytest.raises(AnswerError):
        CoinPaprika.normalize_tickers([{"id": "x", "rank": 0, "quotes": {}}])


def test_kraken_ticker_recorded() -> None:
    snapshot = Kraken.normalize_ticker(orjson.loads(recorded("kraken/ticker.json")))
    assert snapshot.change_window == "utc_day"
    by_id = {q.id: q for q in snapshot.quotes}
    assert set(by_id) == {"bitcoin", "ethereum"}
    btc = by_id["bitcoin"]
    assert btc.price == 64547.2
    assert btc.volume_24h == pytest.approx(6253.84063618 * 64670.01016)
    assert btc.change_24h == pytest.approx((64547.2 - 67600) / 67600 * 100)
    assert btc.market_cap is None  # an exchange knows no market cap


def test_kraken_error_list_and_pairs_we_do_not_follow() -> None:
    with pytest.raises(AnswerError, match="EQuery:Unknown asset pair"):
        Kraken.normalize_ticker({"error": ["EQuery:Unknown asset pair"]})
    with pytest.raises(AnswerError, match="none of the USD pairs"):
        Kraken.normalize_ticker(orjson.loads(recorded("kraken/ticker-XBTUSDT.json")))  # a USDT pair only
    with pytest.raises(KeyError):
        Kraken.normalize_ticker({"error": [], "data": {}})


# -- pool failover --------------------------------------------------------------------------------------

def market_service(routes: dict, **fetcher_kwargs) -> tuple[MarketDataService, Pool, Fetcher]:
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(routes)), backoff=0.001, **fetcher_kwargs)
    pool = Pool("market_data", [CoinGecko(), CoinPaprika(), Kraken()], fetcher)
    return MarketDataService(pool, fetcher, limit=100, interval=0.0, data_source="live"), pool, fetcher


def ok(name: str) -> httpx.Response:
    return httpx.Response(200, content=recorded(name), headers={"content-type": "application/json"})


async def test_preferred_provider_answers() -> None:
    service, pool, _ = market_service({GECKO: ok("coingecko/coins-markets.json")})
    payload = await service.collect()
    assert payload.keys() >= SPEC_KEYS
    assert payload["source"] == "coingecko" and payload["status"] == "ok"
    assert payload["prices"]["bitcoin"] > 0 and len(payload["prices"]) == 30
    assert payload["timestamp"].endswith("Z") and pool.failover_count == 0
    json.dumps(payload)


@pytest.mark.parametrize("failure", [
    httpx.ReadTimeout("timed out"),
    httpx.Response(429, headers={"retry-after": "60"}, content=recorded("coingecko/error-429-rate-limit.json")),
    httpx.Response(200, content=b'[{"id": "bitcoin", "current_price": 1'),  # malformed JSON
    httpx.Response(200, json={"unexpected": "shape"}),
], ids=["timeout", "429", "malformed-json", "changed-shape"])
async def test_failover_to_the_next_provider(failure) -> None:
    service, pool, _ = market_service({GECKO: failure, PAPRIKA: ok("coinpaprika/tickers.json")})
    pool.active = "coingecko"  # it answered before
    payload = await service.collect()
    assert payload["source"] == "coinpaprika" and payload["status"] == "ok"
    assert payload["prices"]["bitcoin"] == pytest.approx(26426.246037855784)
    assert payload["providers"]["coingecko"]["status"] in ("error", "rate_limited")
    assert payload["providers"]["coingecko"]["error"]
    assert pool.failover_count == 1 and pool.failovers[-1].to_source == "coinpaprika"
    assert pool.failovers[-1].from_source == "coingecko"


async def test_failover_down_to_the_exchange_then_back() -> None:
    routes: dict = {GECKO: httpx.Response(500), PAPRIKA: httpx.Response(500), KRAKEN: ok("kraken/ticker.json")}
    service, pool, _ = market_service(routes, retries=0)
    payload = await service.collect()
    assert payload["source"] == "kraken" and payload["price_change_window"] == "utc_day"
    assert set(payload["prices"]) == {"bitcoin", "ethereum"} and payload["market_caps"] == {}
    routes[GECKO] = ok("coingecko/coins-markets.json")
    payload = await service.collect()
    assert payload["source"] == "coingecko" and pool.failover_count == 1  # first answer was no failover


async def test_all_providers_down_without_history_sends_no_data_never_zeros() -> None:
    service, pool, _ = market_service({}, retries=0)  # every request fails to connect
    payload = await service.collect()
    assert payload["status"] == "no_data" and payload["source"] is None
    assert payload["prices"] == {} and payload["volumes"] == {} and payload["market_caps"] == {}
    assert "every provider failed" in payload["message"]
    assert all(s["status"] == "error" and s["since"] for s in payload["providers"].values())
    assert not pool.last_ok


async def test_all_providers_down_after_data_sends_it_stale() -> None:
    routes: dict = {GECKO: ok("coingecko/coins-markets.json")}
    service, _, _ = market_service(routes, retries=0)
    first = await service.collect()
    routes.clear()
    stale = await service.collect()
    assert stale["status"] == "stale" and stale["prices"] == first["prices"]
    assert stale["source"] == "coingecko" and stale["timestamp"] == first["timestamp"]
    assert stale["stale_since"] and stale["age_seconds"] >= 0 and "last good data" in stale["message"]


async def test_open_circuit_skips_the_provider_without_calling_it() -> None:
    calls = []

    def failing(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(502)

    service, _, _ = market_service({GECKO: failing, PAPRIKA: ok("coinpaprika/tickers.json")}, retries=0)
    for _ in range(3):
        await service.collect()
    assert len(calls) == 3
    payload = await service.collect()
    assert len(calls) == 3 and payload["providers"]["coingecko"]["status"] == "circuit_open"
