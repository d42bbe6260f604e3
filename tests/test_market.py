"""Market providers against recorded bodies, the market pool's failover, and the market_data payload with its
slowly refreshed global figures and trending coins."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from config import Redactor
from services.market_data import SLOW_INTERVAL, MarketDataService, build
from sources.errors import AnswerError
from sources.fetcher import Fetcher
from sources.http import http_client
from sources.limits import Clock
from sources.pools import Pool
from sources.providers.coins import COINS
from sources.providers.exchanges import Binance, Coinbase, Kraken
from sources.providers.market import CoinCap, CoinGecko, CoinPaprika, CryptoCompare, MarketProvider
from sources.providers.values import count
from tests.support.clock import FakeClock
from tests.support.context import build_context
from tests.support.market_recordings import as_captured
from tests.support.recordings import Handler, Routes, recorded, routes_transport
from tests.support.recordings import recorded_json as body
from tests.support.settings import make_settings

GECKO = "https://api.coingecko.com/api/v3/coins/markets"
PAPRIKA = "https://api.coinpaprika.com/v1/tickers"
KRAKEN = "https://api.kraken.com/0/public/Ticker"
COINBASE = "https://api.exchange.coinbase.com/products/"
BINANCE = "https://data-api.binance.vision/api/v3/ticker/24hr"
COINCAP = "https://rest.coincap.io/v3/assets"
CRYPTOCOMPARE = "https://min-api.cryptocompare.com/data/pricemultifull"
GECKO_GLOBAL = "https://api.coingecko.com/api/v3/global"
GECKO_TRENDING = "https://api.coingecko.com/api/v3/search/trending"
PAPRIKA_GLOBAL = "https://api.coinpaprika.com/v1/global"
SPEC_KEYS = {"prices", "volumes", "market_caps", "price_changes", "source", "timestamp"}


# -- normalisers ----------------------------------------------------------------------------------------

def test_coingecko_markets_recorded() -> None:
    snapshot = CoinGecko.normalize_markets(orjson.loads(recorded("coingecko/coins-markets.json")))
    assert len(snapshot.quotes) == 250 and snapshot.quote_currency == "USD"
    btc = snapshot.quotes[0]
    assert (btc.id, btc.symbol, btc.rank) == ("bitcoin", "BTC", 1)
    assert btc.price > 0 and btc.market_cap and btc.volume_24h and btc.change_24h is not None
    tether = next(q for q in snapshot.quotes if q.id == "tether")
    assert tether.price == 0.999718  # a dollar, as a USD capture must have it (the EUR one said 0.9493)
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


def test_a_zero_price_is_unknown_not_a_price() -> None:
    """Providers write 0 for a price they do not know (a halted pair, a dead coin): that coin is left out."""
    gecko = CoinGecko.normalize_markets([{"id": "a", "current_price": 0}, {"id": "b", "current_price": 2.5}])
    assert [q.id for q in gecko.quotes] == ["b"]
    paprika = CoinPaprika.normalize_tickers([
        {"id": "btc-bitcoin", "symbol": "BTC", "rank": 1, "quotes": {"USD": {"price": 0}}},
        {"id": "eth-ethereum", "symbol": "ETH", "rank": 2, "quotes": {"USD": {"price": 2000.5}}}])
    assert [q.id for q in paprika.quotes] == ["ethereum"]
    ticker = {"c": ["0", "1"], "v": ["1", "2"], "p": ["1", "1"], "o": "0"}
    eth = {"c": ["2000", "1"], "v": ["1", "0"], "p": ["1", "2000"], "o": "0"}
    kraken = Kraken.normalize_ticker({"error": [], "result": {"XXBTZUSD": ticker, "XETHZUSD": eth}})
    [only] = kraken.quotes
    assert only.id == "ethereum" and only.volume_24h is None and only.change_24h is None  # 0 volume, 0 open


def test_odd_counts_are_left_out_never_a_crash_or_a_huge_number() -> None:
    assert [count(v) for v in (17397, "17397", " 42 ", 3.0, 0)] == [17397, 17397, 42, 3, 0]
    # unicode digits int() refuses, 5,000 digits, a float far past any count: absent, not an exception
    odd = ("\u00b2", "٣", "9" * 5000, "9" * 17, 1e30, 2**54, -1, 1.5, True, "1e3", None)
    assert [count(v) for v in odd] == [None] * len(odd)
    figures = CoinGecko.normalize_global({"data": {"total_market_cap": {"usd": 1e12}, "active_cryptocurrencies": 1e30}})
    assert figures.active_cryptocurrencies is None and figures.total_market_cap_usd == 1e12


def test_coinpaprika_tickers_recorded_and_ids_mapped() -> None:
    snapshot = CoinPaprika.normalize_tickers(orjson.loads(recorded("coinpaprika/tickers.json")))
    assert [q.id for q in snapshot.quotes] == ["bitcoin", "ethereum", "tether"]
    assert snapshot.quotes[0].price == pytest.approx(26426.246037855784)
    with pytest.raises(AnswerError):
        CoinPaprika.normalize_tickers({"error": "id not found"})
    with pytest.raises(AnswerError):
        CoinPaprika.normalize_tickers([{"id": "x", "rank": 0, "quotes": {}}])


def test_kraken_ticker_recorded() -> None:
    snapshot = Kraken.normalize_ticker(orjson.loads(recorded("kraken/ticker-2pairs.json")))
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

def market_service(routes: Routes, **fetcher_kwargs: Any) -> tuple[MarketDataService, Pool, Fetcher]:
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(routes)), backoff=0.001,
                      **fetcher_kwargs, replay=True)
    pool = Pool("market_data", [CoinGecko(), CoinPaprika(), Kraken()], fetcher)
    return MarketDataService(pool, fetcher, limit=100, interval=0.0, data_source="live"), pool, fetcher


def ok(name: str) -> httpx.Response:
    """The recording ``name`` as it was captured: ages count from its capture time, as in replay."""
    return as_captured(name)


async def test_preferred_provider_answers() -> None:
    service, pool, _ = market_service({GECKO: ok("coingecko/coins-markets.json")})
    payload = await service.collect()
    assert payload.keys() >= SPEC_KEYS
    assert payload["source"] == "coingecko" and payload["status"] == "ok"
    assert payload["prices"]["bitcoin"] > 0 and len(payload["prices"]) == 100  # the first 100 of 250
    assert payload["timestamp"].endswith("Z") and pool.failover_count == 0
    json.dumps(payload)


@pytest.mark.parametrize("failure", [
    httpx.ReadTimeout("timed out"),
    httpx.Response(429, headers={"retry-after": "60"}, content=recorded("coingecko/error-429-rate-limit.json")),
    httpx.Response(200, content=b'[{"id": "bitcoin", "current_price": 1'),  # malformed JSON
    httpx.Response(200, json={"unexpected": "shape"}),
], ids=["timeout", "429", "malformed-json", "changed-shape"])
async def test_failover_to_the_next_provider(failure: httpx.Response | Exception) -> None:
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
    routes: dict = {GECKO: httpx.Response(500), PAPRIKA: httpx.Response(500), KRAKEN: ok("kraken/ticker-2pairs.json")}
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


# -- the providers added after Kraken: normalisers --------------------------------------------------------


def test_coinbase_products_stats() -> None:
    """``/products/stats``: every product in one body. The replay body is built around the real BTC-USD capture
    (its SOURCES.md says so); the others are hand-written in the shape public clients read."""
    snapshot = Coinbase.normalize_products_stats(body("coinbase/products-stats.json"))
    (btc,) = snapshot.quotes
    assert (btc.id, btc.symbol, btc.price) == ("bitcoin", "BTC", 63212.41)
    assert btc.change_24h == pytest.approx((63212.41 - 62605.56) / 62605.56 * 100)
    # the statistics count volume in bitcoins only, carry no time, and an exchange knows no market cap
    assert btc.volume_24h is None and btc.market_cap is None and btc.rank is None and btc.time is None
    assert (snapshot.change_window, snapshot.quote_currency, snapshot.single_market) == ("24h", "USD", True)
    listed = Coinbase.normalize_products_stats({
        "ETH-USD": {"stats_30day": {"volume": "1"}, "stats_24hour": {"open": "3000", "last": "3030", "volume": "9"}},
        "BTC-USDT": {"stats_24hour": {"last": "70000"}},  # not a USD product: not read
        "BTC-USD": {"stats_24hour": {"open": "64000", "last": "65237", "volume": "9000.1"}}})
    assert [(q.id, q.price) for q in listed.quotes] == [("bitcoin", 65237.0), ("ethereum", 3030.0)]


def test_coinbase_error_body_and_changed_shape() -> None:
    with pytest.raises(AnswerError, match="NotFound"):
        Coinbase.normalize_products_stats(body("coinbase/error-notfound.json"))
    with pytest.raises(AnswerError, match="none of the USD products"):
        Coinbase.normalize_products_stats({"BTC-USD": ["63212.41"], "NOPE-USD": {"stats_24hour": {"last": "1"}}})
    with pytest.raises(AnswerError):
        Coinbase.normalize_products_stats([{"BTC-USD": {}}])
    # one product without a price costs that coin only; no opening price means no change, not a change of zero
    snap = Coinbase.normalize_products_stats({"ETH-USD": {"stats_24hour": {"last": "3000", "open": "0"}},
                                              "XRP-USD": {"stats_30day": {"volume": "5"}},
                                              "BTC-USD": {"stats_24hour": {"last": "0", "open": "1"}}})
    assert [(q.id, q.change_24h) for q in snap.quotes] == [("ethereum", None)]


def test_binance_ticker_recorded_is_in_usdt() -> None:
    snapshot = Binance.normalize_tickers(body("binance/ticker-24hr-BTCUSDT.json"))  # one symbol: one object
    (btc,) = snapshot.quotes
    assert (btc.id, btc.price, btc.change_24h) == ("bitcoin", 73369.84, 1.647)
    assert btc.volume_24h == pytest.approx(5167027510.68728707) and btc.market_cap is None
    assert snapshot.quote_currency == "USDT"
    # a symbols=[...] request answers with a list; pairs we do not follow are skipped, the table's order kept
    listed = Binance.normalize_tickers([{"symbol": "ETHUSDT", "lastPrice": "3000", "priceChangePercent": "-1"},
                                        {"symbol": "ETHBTC", "lastPrice": "0.05"},
                                        body("binance/ticker-24hr-BTCUSDT.json")])
    assert [q.id for q in listed.quotes] == ["bitcoin", "ethereum"]


def test_binance_error_body_and_changed_shape() -> None:
    with pytest.raises(AnswerError, match="restricted location"):
        Binance.normalize_tickers(body("binance/error-451-restricted-location.json"))
    with pytest.raises(AnswerError, match="none of the USDT pairs"):
        Binance.normalize_tickers({"symbol": "BTCUSDT", "price": "64000.1"})  # /ticker/price's shape
    with pytest.raises(AnswerError, match="none of the USDT pairs"):
        Binance.normalize_tickers([{"symbol": "BTCUSDT", "lastPrice": "0.00000000"}])  # a halted pair
    with pytest.raises(AnswerError):
        Binance.normalize_tickers("Service unavailable")


def test_coincap_assets_recorded_ids_mapped_to_ours() -> None:
    snapshot = CoinCap.normalize_assets(body("coincap/assets-v2-limit10.json"))
    ids = [q.id for q in snapshot.quotes]
    assert ids[:4] == ["bitcoin", "ethereum", "binancecoin", "cardano"]  # CoinCap says binance-coin
    assert "ripple" in ids and "polkadot" in ids  # CoinCap says xrp, polkadot
    btc = snapshot.quotes[0]
    assert btc.rank == 1 and btc.price == pytest.approx(60310.6888208343493939)
    assert btc.market_cap == pytest.approx(1137176492787.61) and btc.volume_24h == pytest.approx(18687028375.67)
    assert btc.change_24h == pytest.approx(-4.3370911053518709)
    assert [q.id for q in CoinCap.normalize_assets(body("coincap/assets-v2-limit10.json"), limit=2).quotes] == \
        ["bitcoin", "ethereum"]


def test_coincap_two_assets_matched_to_one_coin_keep_the_better_ranked() -> None:
    """CoinCap ids are its own, so coins are also matched by symbol: a look-alike token with ETH's symbol must
    not overwrite Ether's price."""
    snapshot = CoinCap.normalize_assets({"data": [
        {"id": "ethereum", "rank": "2", "symbol": "ETH", "name": "Ethereum", "priceUsd": "3000.5"},
        {"id": "eth-lookalike", "rank": "900", "symbol": "ETH", "name": "Look-alike", "priceUsd": "0.01"},
        {"id": "bitcoin", "rank": "1", "symbol": "BTC", "name": "Bitcoin", "priceUsd": "60000"}]})
    assert [(q.id, q.price) for q in snapshot.quotes] == [("bitcoin", 60000.0), ("ethereum", 3000.5)]


def test_coincap_error_body_and_changed_shape() -> None:
    with pytest.raises(AnswerError, match="We are deprecating"):
        CoinCap.normalize_assets(body("coincap/v2-deprecated.json"))
    with pytest.raises(AnswerError, match="coincap error"):
        CoinCap.normalize_assets({"error": "Unauthorized", "timestamp": 1})
    with pytest.raises(AnswerError, match="no priced assets"):
        CoinCap.normalize_assets({"data": [{"id": "bitcoin", "priceUsd": None}], "timestamp": 1})
    # an unknown coin keeps CoinCap's id; a zero market cap means unknown
    snap = CoinCap.normalize_assets({"data": [{"id": "newcoin", "symbol": "nc", "rank": "7", "priceUsd": "2",
                                               "marketCapUsd": "0"}]})
    assert (snap.quotes[0].id, snap.quotes[0].rank, snap.quotes[0].market_cap) == ("newcoin", 7, None)


def test_cryptocompare_recorded_reads_usd_only() -> None:
    snapshot = CryptoCompare.normalize_pricemultifull(body("cryptocompare/pricemultifull-btc-usd-eur.json"))
    (btc,) = snapshot.quotes
    assert (btc.id, btc.price) == ("bitcoin", 59692.06)  # not the EUR quote beside it
    assert btc.market_cap == 1114993181949.22 and btc.volume_24h == pytest.approx(13203939884.314514)
    assert btc.change_24h == pytest.approx(2.272113589574189) and btc.rank is None


def test_cryptocompare_error_body_and_changed_shape() -> None:
    with pytest.raises(AnswerError, match="market does not exist"):
        CryptoCompare.normalize_pricemultifull(body("cryptocompare/error-market-does-not-exist.json"))
    with pytest.raises(AnswerError, match="priced none"):
        CryptoCompare.normalize_pricemultifull({"RAW": {"BTC": {"EUR": {"PRICE": 49897.2}}}})
    with pytest.raises(KeyError):
        CryptoCompare.normalize_pricemultifull({"DISPLAY": {}})


def test_global_figures_recorded() -> None:
    captured = CoinGecko.normalize_global(body("coingecko/global-2021-05-18.json"))  # a live capture of 2021
    assert captured.total_market_cap_usd == pytest.approx(2142953338976.9612)
    assert captured.updated_at == "2021-05-18T13:55:59.000Z"  # the provider's own time of the figures
    gecko = CoinGecko.normalize_global(body("coingecko/global-doc-example-2026-05.json"))
    assert gecko.updated_at == "2026-05-27T10:39:11.000Z"
    assert gecko.total_market_cap_usd == pytest.approx(2621040321355.0405)
    assert gecko.total_volume_usd == pytest.approx(95133256404.37308)
    assert gecko.btc_dominance == pytest.approx(57.9539332566265)
    assert gecko.eth_dominance == pytest.approx(9.58227145398409)
    assert gecko.market_cap_change_24h == pytest.approx(-1.6081983639177684) and gecko.active_cryptocurrencies == 17397
    paprika = CoinPaprika.normalize_global(body("coinpaprika/global-2021-10-22.json"))
    assert (paprika.total_market_cap_usd, paprika.btc_dominance, paprika.active_cryptocurrencies) == \
        (2559344984924, 44.68, 5438)
    assert paprika.market_cap_change_24h == -1.86
    assert paprika.eth_dominance is None  # CoinPaprika does not give it: absent, not zero
    assert paprika.updated_at == "2021-10-22T18:36:46.000Z"
    # a figure dated before Bitcoin existed is a wrong time: dropped, never shown
    assert CoinPaprika.normalize_global({"market_cap_usd": 1e12, "last_updated": 0}).updated_at is None


def test_global_figures_error_body_and_changed_shape() -> None:
    with pytest.raises(AnswerError, match="coingecko error"):
        CoinGecko.normalize_global(body("coingecko/error-429-rate-limit.json"))
    with pytest.raises(AnswerError, match="none of the figures"):
        CoinGecko.normalize_global({"data": {"total_market_cap": {"btc": 1}}})
    with pytest.raises(AttributeError):
        CoinGecko.normalize_global({"data": {"total_market_cap": [1, 2]}})
    with pytest.raises(AnswerError, match="coinpaprika error"):
        CoinPaprika.normalize_global({"error": "Too many requests"})
    with pytest.raises(AnswerError, match="none of the figures"):
        CoinPaprika.normalize_global({"market_cap": "2.5T"})


def test_trending_recorded_error_and_changed_shape() -> None:
    (bonk,) = CoinGecko.normalize_trending(body("coingecko/search-trending-doc-example-2026.json"))  # no NFT, category
    assert (bonk.id, bonk.symbol, bonk.name, bonk.market_cap_rank, bonk.score) == ("bonk", "BONK", "Bonk", 103, 0)
    captured = CoinGecko.normalize_trending(body("coingecko/search-trending-2021-05-18.json"))  # 2021's shape: 7 coins
    assert [(t.id, t.score) for t in captured[:2]] == [("matic-network", 0), ("shiba-inu", 1)] and len(captured) == 7
    with pytest.raises(AnswerError, match="coingecko error"):
        CoinGecko.normalize_trending(body("coingecko/error-429-rate-limit.json"))
    with pytest.raises(AnswerError, match="no trending coins"):
        CoinGecko.normalize_trending({"coins": [{"id": "bonk"}], "nfts": []})
    with pytest.raises(KeyError):
        CoinGecko.normalize_trending({"trending": []})


@pytest.mark.parametrize(("provider", "calls_per_second"), [
    (Coinbase, 10),  # public endpoints, per IP (docs.cdp.coinbase.com/exchange/rest-api/rate-limits)
    (Binance, 6000 / 40 / 60),  # 6,000 weight a minute per IP; one call for 21-100 symbols weighs 40
])
def test_budgets_stay_inside_the_documented_limits(provider: type[MarketProvider], calls_per_second: float) -> None:
    assert provider.rate is not None and provider.rate.per_second < calls_per_second


def test_keyed_providers_are_off_without_their_key_and_send_it_as_documented() -> None:
    assert not CoinCap().enabled and not CryptoCompare().enabled
    assert CoinCap("k1").auth() == ({"Authorization": "Bearer k1"}, {})
    assert CryptoCompare("k2").auth() == ({"authorization": "Apikey k2"}, {})


# -- the longer pool ------------------------------------------------------------------------------------

KEYS = {"coincap": "coincap-secret-key", "cryptocompare": "cryptocompare-secret-key"}


def long_pool_service(routes: Routes, *, keys: bool = True, clock: Clock = time.monotonic, **fetcher_kwargs: Any) \
        -> tuple[MarketDataService, Pool, Fetcher]:
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(routes)), backoff=0.001,
                      redact=Redactor(KEYS.values()), **fetcher_kwargs, replay=True)
    gecko, paprika = CoinGecko(), CoinPaprika()
    providers = [gecko, paprika, Kraken(), Coinbase(), Binance(), CoinCap(KEYS["coincap"] if keys else None),
                 CryptoCompare(KEYS["cryptocompare"] if keys else None)]
    pool = Pool("market_data", providers, fetcher)
    service = MarketDataService(pool, fetcher, limit=100, interval=0.0, data_source="live",
                                global_pool=Pool("market_global", [gecko, paprika], fetcher),
                                trending_pool=Pool("market_trending", [gecko], fetcher), clock=clock)
    return service, pool, fetcher


def keyless_down() -> dict:
    return {GECKO: httpx.Response(503), PAPRIKA: httpx.Response(503), KRAKEN: httpx.Response(503),
            GECKO_GLOBAL: httpx.Response(503), GECKO_TRENDING: httpx.Response(503),
            PAPRIKA_GLOBAL: httpx.Response(503)}


#: Products of the table that Coinbase does not list: absent from its answer.
UNLISTED = ("DAI", "MKR", "ZEC")


def coinbase_products(request: httpx.Request) -> httpx.Response:
    """Every product in one body, as ``/products/stats`` answers: BTC-USD with its recorded figures, the table's
    other products (but three) with a small body of the same shape."""
    stats = {f"{c.coinbase}-USD": {"stats_30day": {"volume": "3000"}, "stats_24hour": {
        "open": "1.0", "high": "2.5", "low": "0.5", "last": "2.0", "volume": "100"}}
        for c in COINS if c.coinbase and c.coinbase not in UNLISTED}
    stats.update(orjson.loads(recorded("coinbase/products-stats.json")))
    return httpx.Response(200, json=stats)


async def test_failover_to_coinbase_one_call_for_every_product_and_no_invented_figures() -> None:
    paths: list[str] = []

    def counting(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return coinbase_products(request)

    routes = {**keyless_down(), COINBASE: counting}
    service, _, fetcher = long_pool_service(routes, retries=0, budgets=False)
    payload = await service.collect()
    assert payload["source"] == "coinbase" and payload["status"] == "ok"
    assert paths == ["/products/stats"]  # one call, not one per coin
    listed = [c for c in COINS if c.coinbase]
    assert set(payload["prices"]) == {c.id for c in listed if c.coinbase not in UNLISTED}  # the rest: absent
    assert payload["prices"]["bitcoin"] == 63212.41 and payload["price_changes"]["ethereum"] == 100.0
    assert payload["volumes"] == {} and payload["market_caps"] == {}  # Coinbase gives neither in dollars
    assert payload["quote_currency"] == "USD" and payload["price_change_window"] == "24h"
    # Coinbase's statistics carry no time: each quote says so, and the data's age counts from the fetch
    assert {c["time"] for c in payload["coins"]} == {None} and payload["data_time"] is None
    assert fetcher.runtime("coinbase").breaker.state.value == "closed"


async def test_failover_past_a_binance_451_to_the_keyed_providers() -> None:
    restricted = httpx.Response(451, content=recorded("binance/error-451-restricted-location.json"),
                                headers={"content-type": "application/json"})
    routes = {**keyless_down(), COINBASE: httpx.Response(503), BINANCE: restricted,
              COINCAP: ok("coincap/assets-v2-limit10.json")}
    service, pool, fetcher = long_pool_service(routes, retries=0)
    pool.active = "binance"
    payload = await service.collect()
    assert payload["source"] == "coincap" and payload["market_caps"]["bitcoin"] > 0
    assert payload["prices"]["binancecoin"] == pytest.approx(477.6148568179112637)
    binance = payload["providers"]["binance"]
    assert binance["status"] == "error" and "451" in binance["error"] and "restricted location" in binance["error"]
    assert payload["providers"]["cryptocompare"]["status"] == "not_tried"
    assert pool.failovers[-1].from_source == "binance" and pool.failovers[-1].to_source == "coincap"
    assert fetcher.runtime("binance").health.requests == 1  # 451 is not retried


async def test_binance_answers_in_usdt_and_says_so() -> None:
    routes = {**keyless_down(), COINBASE: httpx.Response(503), BINANCE: ok("binance/ticker-24hr-BTCUSDT.json")}
    seen = []

    def binance(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.url.params["symbols"]))
        return ok("binance/ticker-24hr-BTCUSDT.json")

    routes[BINANCE] = binance
    service, _, _ = long_pool_service(routes, retries=0)
    payload = await service.collect()
    assert payload["source"] == "binance" and payload["quote_currency"] == "USDT"
    assert payload["prices"] == {"bitcoin": 73369.84} and payload["market_caps"] == {}
    assert seen == [[f"{c.binance}USDT" for c in COINS if c.binance]]  # only the pairs we know exist


async def test_cryptocompare_is_the_last_resort() -> None:
    calls = []

    def cryptocompare(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return ok("cryptocompare/pricemultifull-btc-usd-eur.json")

    routes = {**keyless_down(), COINBASE: httpx.Response(503), BINANCE: httpx.Response(503),
              COINCAP: httpx.Response(402, json={"error": "out of credits"}), CRYPTOCOMPARE: cryptocompare}
    service, _, _ = long_pool_service(routes, retries=0)
    payload = await service.collect()
    assert payload["source"] == "cryptocompare" and payload["prices"] == {"bitcoin": 59692.06}
    assert calls[0].headers["authorization"] == f"Apikey {KEYS['cryptocompare']}"
    assert calls[0].url.params["tsyms"] == "USD" and calls[0].url.params["fsyms"].startswith("BTC,ETH,")


async def test_keyed_providers_without_keys_are_never_called() -> None:
    called = []

    def record(request: httpx.Request) -> httpx.Response:
        called.append(request.url.host)
        return httpx.Response(200, json={})

    routes = {**keyless_down(), COINBASE: httpx.Response(503), BINANCE: httpx.Response(503),
              COINCAP: record, CRYPTOCOMPARE: record}
    service, _, _ = long_pool_service(routes, keys=False, retries=0)
    payload = await service.collect()
    assert called == [] and payload["status"] == "no_data" and payload["prices"] == {}
    assert payload["providers"]["coincap"]["status"] == "missing_api_key"
    assert payload["providers"]["cryptocompare"]["status"] == "missing_api_key"


async def test_keys_never_reach_the_payload() -> None:
    def echo_key(request: httpx.Request) -> httpx.Response:  # a provider quoting the key back in its error
        return httpx.Response(403, text=f"bad key {request.headers.get('authorization')}")

    routes = {**keyless_down(), COINBASE: httpx.Response(503), BINANCE: httpx.Response(503),
              COINCAP: echo_key, CRYPTOCOMPARE: echo_key}
    service, _, _ = long_pool_service(routes, retries=0)
    text = json.dumps(await service.collect())
    assert "403" in text and not any(key in text for key in KEYS.values())


# -- global figures and trending: their own, slower schedule ---------------------------------------------

def counting_routes(routes: dict) -> tuple[dict, dict[str, int]]:
    counts: dict[str, int] = {}

    def wrap(prefix: str, answer: Handler | httpx.Response) -> Handler:
        def handle(request: httpx.Request) -> httpx.Response:
            counts[prefix] = counts.get(prefix, 0) + 1
            if isinstance(answer, httpx.Response):
                return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
            return answer(request)
        return handle

    return {prefix: wrap(prefix, answer) for prefix, answer in routes.items()}, counts


def same_figures(shown: dict, first: dict) -> bool:
    """The same figures from the same fetch; only their age (and, once old, their status) moves on."""
    moving = {"age_seconds", "status"}
    return {k: v for k, v in shown.items() if k not in moving} == {k: v for k, v in first.items() if k not in moving}


async def test_global_and_trending_follow_their_slow_schedule() -> None:
    routes, counts = counting_routes({GECKO: ok("coingecko/coins-markets.json"),
                                      GECKO_GLOBAL: ok("coingecko/global-2021-05-18.json"),
                                      GECKO_TRENDING: ok("coingecko/search-trending-2021-05-18.json")})
    clock = FakeClock()
    service, _, _ = long_pool_service(routes, clock=clock, budgets=False)  # the schedule, not the budget

    first = await service.collect()  # at most one slow call per run: the global figures first
    assert counts == {GECKO: 1, GECKO_GLOBAL: 1}
    assert first["global_market"]["source"] == "coingecko" and first["global_market"]["fetched_at"].endswith("Z")
    assert first["global_market"]["total_market_cap_usd"] == pytest.approx(2142953338976.9612)
    assert first["global_market"]["updated_at"] == "2021-05-18T13:55:59.000Z"  # the provider's time
    assert first["global_market"]["status"] == "ok" and first["global_market"]["age_seconds"] == 313.0
    assert first["trending"] == [] and first["trending_fetched_at"] is None  # not known yet: absent

    clock.now += 5
    second = await service.collect()
    assert counts == {GECKO: 2, GECKO_GLOBAL: 1, GECKO_TRENDING: 1}
    assert second["trending"][0] == {"id": "matic-network", "symbol": "MATIC", "name": "Polygon",
                                     "market_cap_rank": 16, "score": 0}
    assert second["trending_status"] == "ok" and second["trending_recorded_at"] == "2021-05-18T14:01:13.000Z"
    assert second["trending_fetched_at"] and same_figures(second["global_market"], first["global_market"])

    for _ in range(50):  # 250 s of 5 s runs: prices every time, nothing else
        clock.now += 5
        payload = await service.collect()
        assert same_figures(payload["global_market"], first["global_market"])
        assert payload["trending"] == second["trending"]
    assert counts == {GECKO: 52, GECKO_GLOBAL: 1, GECKO_TRENDING: 1}

    clock.now += SLOW_INTERVAL - 250 + 1
    await service.collect()
    await service.collect()
    assert counts == {GECKO: 54, GECKO_GLOBAL: 2, GECKO_TRENDING: 2}


async def test_slow_calls_never_go_past_coingeckos_budget() -> None:
    routes, counts = counting_routes({GECKO: ok("coingecko/coins-markets.json"),
                                      GECKO_GLOBAL: ok("coingecko/global-2021-05-18.json"),
                                      GECKO_TRENDING: ok("coingecko/search-trending-2021-05-18.json"),
                                      PAPRIKA: ok("coinpaprika/tickers.json")})
    clock = FakeClock()
    service, _, _ = long_pool_service(routes, clock=clock)  # keyless budget: bursts of 3, then 8 a minute
    await service.collect()
    clock.now += 5
    second = await service.collect()  # the prices took the last token: trending waits, uncalled
    assert counts == {GECKO: 2, GECKO_GLOBAL: 1}
    assert second["trending"] == [] and service.trending is not None
    assert service.trending.next_due == clock.now + SLOW_INTERVAL / 5  # tried again in a minute, not each run


async def test_global_figures_fail_over_to_coinpaprika() -> None:
    routes = {GECKO: ok("coingecko/coins-markets.json"), GECKO_GLOBAL: httpx.Response(500),
              PAPRIKA_GLOBAL: ok("coinpaprika/global-2021-10-22.json")}
    service, _, _ = long_pool_service(routes, clock=FakeClock(), retries=0)
    payload = await service.collect()
    market = payload["global_market"]
    assert market["source"] == "coinpaprika" and market["btc_dominance"] == 44.68
    assert market["eth_dominance"] is None and market["active_cryptocurrencies"] == 5438


async def test_a_failed_slow_section_is_retried_sooner_but_not_every_run() -> None:
    routes, counts = counting_routes({GECKO: ok("coingecko/coins-markets.json"), GECKO_GLOBAL: httpx.Response(500),
                                      PAPRIKA_GLOBAL: httpx.Response(500),
                                      GECKO_TRENDING: ok("coingecko/search-trending-2021-05-18.json")})
    clock = FakeClock()
    service, _, _ = long_pool_service(routes, clock=clock, retries=0, budgets=False)
    first = await service.collect()
    assert first["global_market"] is None  # never fetched: absent, not zeros
    clock.now += 5
    await service.collect()  # trending's turn
    for _ in range(5):
        clock.now += 5
        payload = await service.collect()
    assert counts[GECKO_GLOBAL] == 1 and payload["global_market"] is None and payload["trending"]
    clock.now += SLOW_INTERVAL / 5
    await service.collect()
    assert counts[GECKO_GLOBAL] == 2


async def test_known_figures_stay_when_the_prices_fail() -> None:
    routes = {GECKO: ok("coingecko/coins-markets.json"), GECKO_GLOBAL: ok("coingecko/global-2021-05-18.json")}
    clock = FakeClock()
    service, _, _ = long_pool_service(routes, clock=clock, retries=0)
    first = await service.collect()
    for prefix in (GECKO, GECKO_GLOBAL):
        routes[prefix] = httpx.Response(503)
    clock.now += SLOW_INTERVAL + 1
    stale = await service.collect()
    assert stale["status"] == "stale" and same_figures(stale["global_market"], first["global_market"])
    assert stale["global_market"]["fetched_at"] == first["global_market"]["fetched_at"]  # its own age


# -- build(ctx) and replay --------------------------------------------------------------------------------

async def test_build_wires_the_pools_and_replays_end_to_end(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, data_source="replay", interval_scale=1.0)
    http = http_client(settings)
    fetcher = Fetcher(http, budgets=False, replay=True)
    ctx = build_context(settings, fetcher)
    (service,) = build(ctx)
    assert isinstance(service, MarketDataService) and service.global_market is not None
    assert service.global_market.cadence.every == SLOW_INTERVAL  # INTERVAL_SCALE 1
    assert list(ctx.pools) == ["market_data", "market_global", "market_trending"]
    assert [p.id for p in ctx.pools["market_data"].providers] == \
        ["coingecko", "coinpaprika", "kraken", "coinbase", "binance", "coincap", "cryptocompare"]
    assert not fetcher.runtime("coincap").provider.enabled  # no key in these settings
    first = await service.collect()
    second = await service.collect()
    assert first["data_source"] == "replay" and first["source"] == "coingecko" and len(first["prices"]) == 100
    assert first["recorded_at"] == "2023-07-28T20:03:30.000Z" and first["status"] == "ok"
    # no recording of the global figures or the trending list is of the prices' moment: none is replayed, and the
    # update says so rather than showing 2021's market cap beside 2023's prices
    assert first["global_market"] is None and second["trending"] == []
    assert "no recording" in str(service.global_market.tracker.view()[1].message)
    for provider in (Coinbase(), Binance()):  # the new replay recordings answer the probes
        await provider.probe(fetcher)
        assert fetcher.runtime(provider.id).health.consecutive_failures == 0
    await http.aclose()


async def test_replayed_exchanges_normalise_their_recordings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, data_source="replay")
    http = http_client(settings)
    fetcher = Fetcher(http, budgets=False, retries=0, replay=True)
    assert (await Binance().fetch_quotes(fetcher, 100, 0.0)).quotes[0].price == 73369.84
    coinbase = await Coinbase().fetch_quotes(fetcher, 3, 0.0)  # only BTC-USD is recorded
    assert [q.id for q in coinbase.quotes] == ["bitcoin"]
    await http.aclose()


async def test_our_own_spent_budget_reads_as_waiting_not_as_a_failure() -> None:
    routes = {GECKO: ok("coingecko/coins-markets.json"), PAPRIKA: ok("coinpaprika/tickers.json")}
    service, _, fetcher = market_service(routes)  # CoinGecko's keyless budget: bursts of 3
    for _ in range(3):
        assert (await service.collect())["source"] == "coingecko"
    payload = await service.collect()
    assert payload["source"] == "coinpaprika" and payload["status"] == "ok"
    assert payload["providers"]["coingecko"]["status"] == "waiting"
    assert fetcher.runtime("coingecko").health.consecutive_failures == 0  # CoinGecko did nothing wrong
