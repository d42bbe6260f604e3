"""Market truth: each quote's provider time and the stream's age from it, and the price cross-check (median, spread,
quorum, unconfirmed, de-peg) against other providers, in the stream, and as health events.

Bodies are recordings (served with their capture time) or hand-written in the providers' real formats."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.messages import iso
from models.states import PriceState
from services.consensus import Answer, cross_check
from services.health_checker import HealthCheckerService
from services.market_data import QUOTES_MAX_AGE, MarketDataService, build, check_section
from services.ports import hub_price_alerts
from sources.fetcher import Fetcher
from sources.http import http_client
from sources.pools import Pool
from sources.providers.exchanges import Binance, Coinbase, Kraken
from sources.providers.market import (
    CoinCap,
    CoinGecko,
    CoinPaprika,
    CryptoCompare,
    MarketSnapshot,
    Quote,
    quote_time,
)
from sources.providers.values import EARLIEST_DATA_TIME
from tests.support.clock import FakeClock
from tests.support.context import build_context
from tests.support.market_recordings import as_captured
from tests.support.recordings import Routes, routes_transport
from tests.support.recordings import recorded_json as body
from tests.support.settings import make_settings
from ws.hub import Hub

GECKO = "https://api.coingecko.com/api/v3/coins/markets"
PAPRIKA = "https://api.coinpaprika.com/v1/tickers"
KRAKEN = "https://api.kraken.com/0/public/Ticker"
COINBASE = "https://api.exchange.coinbase.com/products/stats"



# -- provider time --------------------------------------------------------------------------------------

def test_provider_times_are_read_and_wrong_ones_dropped() -> None:
    assert quote_time("2023-07-28T20:03:30.055Z") == pytest.approx(1690574610.055)
    assert quote_time(1618082612) == 1618082612 and quote_time("1710328245391", millis=True) == 1710328245.391
    # before 2009-01-03 (a 1970 zero, a date of 2008) or a day ahead of our clock: no time, never shown
    for wrong in (0, "1970-01-01T00:00:00Z", "2008-12-31T23:59:59Z", EARLIEST_DATA_TIME - 1,
                  time.time() + 2 * 86400, "yesterday", None, True):
        assert quote_time(wrong) is None
    assert quote_time(EARLIEST_DATA_TIME) == EARLIEST_DATA_TIME
    assert quote_time(1710328245391) is None  # milliseconds read as seconds: the year 56,000, refused


def test_each_quote_carries_its_providers_own_time() -> None:
    gecko = CoinGecko.normalize_markets(body("coingecko/coins-markets.json"))
    assert iso(gecko.quotes[0].time) == "2023-07-28T20:03:29.093Z"  # bitcoin's last_updated
    assert iso(gecko.data_time()) == "2023-07-28T20:03:21.186Z"  # the median of the 250
    paprika = CoinPaprika.normalize_tickers(body("coinpaprika/tickers.json"))
    assert iso(paprika.quotes[0].time) == "2023-09-14T12:41:18.000Z"
    binance = Binance.normalize_tickers(body("binance/ticker-24hr-BTCUSDT.json"))  # closeTime, a string here
    assert iso(binance.quotes[0].time) == "2024-03-13T11:10:45.391Z"
    coincap = CoinCap.normalize_assets(body("coincap/assets-v2-limit10.json"))  # the envelope's timestamp
    assert {iso(q.time) for q in coincap.quotes} == {"2021-10-27T00:05:52.930Z"}
    cryptocompare = CryptoCompare.normalize_pricemultifull(body("cryptocompare/pricemultifull-btc-usd-eur.json"))
    assert iso(cryptocompare.quotes[0].time) == "2021-04-10T19:23:32.000Z"  # LASTUPDATE
    # Kraken's ticker and Coinbase's statistics give no time: null, never a made-up one
    kraken = Kraken.normalize_ticker(body("kraken/ticker.json"))
    coinbase = Coinbase.normalize_products_stats(body("coinbase/products-stats.json"))
    assert {q.time for q in kraken.quotes + coinbase.quotes} == {None}
    assert kraken.data_time() is None and coinbase.data_time() is None
    # a 1970 time on one coin drops that time only
    odd = CoinGecko.normalize_markets([{"id": "a", "current_price": 1, "last_updated": "1970-01-01T00:00:00Z"}])
    assert odd.quotes[0].time is None and odd.quotes[0].price == 1


def gecko_body(age: float, prices: dict[str, float]) -> list[dict[str, Any]]:
    """A /coins/markets body (real field names) whose quotes were last updated ``age`` seconds ago."""
    stamp = iso(time.time() - age)
    names = {"bitcoin": ("btc", "Bitcoin"), "ethereum": ("eth", "Ethereum"), "tether": ("usdt", "Tether"),
             "usd-coin": ("usdc", "USDC"), "solana": ("sol", "Solana")}
    return [{"id": cid, "symbol": names[cid][0], "name": names[cid][1], "current_price": price,
             "market_cap": 1e9, "market_cap_rank": rank, "total_volume": 5e8, "price_change_percentage_24h": 0.5,
             "last_updated": stamp} for rank, (cid, price) in enumerate(prices.items(), start=1)]


def service_with(routes: Routes, **kwargs: Any) -> MarketDataService:
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(routes)), backoff=0.001, retries=0, replay=True)
    return MarketDataService(Pool("market_data", [CoinGecko()], fetcher), fetcher, limit=100, interval=0.0,
                             data_source="live", **kwargs)


async def test_quotes_served_fresh_but_old_are_stale() -> None:
    fresh = await service_with({GECKO: httpx.Response(200, json=gecko_body(30, {"bitcoin": 64000.0}))}).collect()
    assert fresh["status"] == "ok" and 30 <= fresh["age_seconds"] < 40 and fresh["max_age_seconds"] == QUOTES_MAX_AGE
    assert fresh["data_time"] == fresh["coins"][0]["time"]
    old = await service_with({GECKO: httpx.Response(200, json=gecko_body(1200, {"bitcoin": 64000.0}))}).collect()
    assert old["status"] == "stale" and old["age_seconds"] >= 1200 and "over the 600 s" in old["message"]
    assert old["prices"] == {"bitcoin": 64000.0}  # still shown, and said to be old


async def test_global_figures_past_an_hour_are_stale_and_dated_by_their_provider() -> None:
    updated = int(time.time() - 7200)
    old = {"data": {"total_market_cap": {"usd": 2.1e12}, "active_cryptocurrencies": 9000, "updated_at": updated}}
    routes = {GECKO: httpx.Response(200, json=gecko_body(30, {"bitcoin": 64000.0})),
              "https://api.coingecko.com/api/v3/global": httpx.Response(200, json=old)}
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(routes)), backoff=0.001, retries=0, replay=True)
    service = service_with(routes, global_pool=Pool("market_global", [CoinGecko()], fetcher))
    figures = (await service.collect())["global_market"]
    assert figures["updated_at"] == iso(updated) and figures["max_age_seconds"] == 3600
    assert figures["status"] == "stale" and figures["age_seconds"] >= 7200
    assert figures["total_market_cap_usd"] == 2.1e12  # still shown, said to be old


async def test_every_price_says_its_currency_source_and_time() -> None:
    payload = await service_with({GECKO: as_captured("coingecko/coins-markets.json")}).collect()
    tether = next(c for c in payload["coins"] if c["id"] == "tether")
    assert tether == {**tether, "price": 0.999718, "quote_currency": "USD", "source": "coingecko",
                      "time": "2023-07-28T20:00:00.793Z"}
    assert payload["prices"]["tether"] == tether["price"]  # the spec's dicts unchanged beside it
    assert payload["recorded_at"] == "2023-07-28T20:03:30.000Z" and payload["status"] == "ok"


# -- the cross-check, pure ------------------------------------------------------------------------------

def snapshot(*quotes: Quote, currency: str = "USD", single: bool = False) -> MarketSnapshot:
    return MarketSnapshot(tuple(quotes), quote_currency=currency, single_market=single)  # type: ignore[arg-type]


def q(cid: str, symbol: str, price: float, *, at: float | None = None, volume: float | None = None) -> Quote:
    return Quote(id=cid, symbol=symbol, name=symbol, price=price, time=at, volume_24h=volume)


NOW = 1_700_000_000.0


def test_three_exchanges_of_one_moment_confirm_bitcoin() -> None:
    """A real same-moment set (ccxt's records of 2024-03-13 11:10 UTC, all in USDT): Binance's BTCUSDT ticker,
    Coinbase's BTC-USDT ticker (price 73367.8 at 11:10:41) and Kraken's XBTUSDT (last 73380.6)."""
    binance = Binance.normalize_tickers(body("binance/ticker-24hr-BTCUSDT.json"))
    coinbase_time = 1710328241.270099
    others = [Answer("coinbase", snapshot(q("bitcoin", "BTC", 73367.8, at=coinbase_time), currency="USDT",
                                          single=True), coinbase_time),
              Answer("kraken", snapshot(q("bitcoin", "BTC", 73380.6), currency="USDT", single=True), coinbase_time)]
    verdicts = cross_check(Answer("binance", binance, binance.data_time() or 0), others, threshold=0.02,
                           max_skew=600)
    check = verdicts.checks["bitcoin"]
    assert check.state is PriceState.CONFIRMED and (check.sources, check.quorum) == (3, 3)
    assert check.median == 73369.84 and check.spread_pct == pytest.approx((73380.6 - 73367.8) / 73369.84 * 100,
                                                                          abs=1e-4)
    assert [(o.source, o.price, o.quote_currency, o.agrees) for o in check.others] == [
        ("coinbase", 73367.8, "USDT", True), ("kraken", 73380.6, "USDT", True)]
    assert check.others[0].time == "2024-03-13T11:10:41.270Z" and check.others[1].time is None
    assert verdicts.alerts == [] and verdicts.compared == {"coinbase", "kraken"}


def test_a_spread_over_the_threshold_is_disputed_with_its_quorum() -> None:
    primary = Answer("coingecko", snapshot(q("bitcoin", "BTC", 64000.0, at=NOW), q("ethereum", "ETH", 3000.0,
                                                                                     at=NOW)), NOW)
    paprika = Answer("coinpaprika", snapshot(q("bitcoin", "BTC", 64100.0, at=NOW - 60),
                                             q("ethereum", "ETH", 3100.0, at=NOW - 60)), NOW - 60)
    kraken = Answer("kraken", snapshot(q("bitcoin", "BTC", 64050.0), q("ethereum", "ETH", 3105.0), single=True),
                    NOW - 30)
    verdicts = cross_check(primary, [paprika, kraken], threshold=0.02, max_skew=600)
    btc, eth = verdicts.checks["bitcoin"], verdicts.checks["ethereum"]
    assert btc.state is PriceState.CONFIRMED and btc.quorum == 3
    # 3000 against 3100 and 3105: a 3.5% spread; two of three within 2% of the median (3100)
    assert eth.state is PriceState.DISPUTED and eth.median == 3100.0 and (eth.quorum, eth.sources) == (2, 3)
    assert eth.spread_pct == pytest.approx(105 / 3100 * 100, abs=1e-3)
    (alert,) = verdicts.alerts
    assert (alert.kind, alert.coin, alert.symbol) == ("spread", "ethereum", "ETH")
    assert "3.39%" in alert.message and "2 of 3 agree" in alert.message
    # the threshold is a setting: at 5% the same prices agree
    assert cross_check(primary, [paprika, kraken], threshold=0.05, max_skew=600).alerts == []


def test_a_price_nobody_else_gives_or_of_another_moment_is_unconfirmed() -> None:
    primary = Answer("coingecko", snapshot(q("bitcoin", "BTC", 29300.0, at=NOW), q("pepe", "PEPE", 1e-6, at=NOW)),
                     NOW)
    year_later = Answer("kraken", snapshot(q("bitcoin", "BTC", 64000.0), single=True), NOW + 365 * 86400)
    verdicts = cross_check(primary, [year_later], threshold=0.02, max_skew=600)
    btc, pepe = verdicts.checks["bitcoin"], verdicts.checks["pepe"]
    assert btc.state is PriceState.UNCONFIRMED and btc.sources == 1 and btc.others == []
    assert btc.note == "no other provider priced it at the same moment"  # never a "disputed" 2023 vs 2024
    assert pepe.state is PriceState.UNCONFIRMED and pepe.note == "no other provider priced it"
    assert verdicts.alerts == [] and verdicts.compared == set()
    # a look-alike with another symbol under the same id is not the coin
    other = Answer("coinpaprika", snapshot(q("bitcoin", "XBT", 1.0, at=NOW)), NOW)
    assert cross_check(primary, [other], threshold=0.02, max_skew=600).checks["bitcoin"].sources == 1
    # and the primary never checks itself
    itself = Answer("coingecko", snapshot(q("bitcoin", "BTC", 29300.0, at=NOW)), NOW)
    assert cross_check(primary, [itself], threshold=0.02, max_skew=600).checks["bitcoin"].sources == 1


def peg(primary: Answer, *others: Answer) -> Any:
    return cross_check(primary, list(others), threshold=0.02, max_skew=600)


def test_a_depeg_is_flagged_either_way_by_more_than_one_thin_source() -> None:
    # the mislabelled EUR recording's tether, said by an aggregator: a de-peg (this is what would have caught it)
    eur = peg(Answer("coingecko", snapshot(q("tether", "USDT", 0.949312, at=NOW)), NOW))
    assert eur.checks["tether"].depeg and [a.kind for a in eur.alerts] == ["depeg"]
    assert "-5.07%" in eur.alerts[0].message
    # two sources say 1.02: above the peg is off it too
    high = peg(Answer("coingecko", snapshot(q("usd-coin", "USDC", 1.02, at=NOW)), NOW),
               Answer("coinpaprika", snapshot(q("usd-coin", "USDC", 1.021, at=NOW)), NOW))
    assert high.checks["usd-coin"].depeg and high.checks["usd-coin"].state is PriceState.CONFIRMED
    # 0.995 is within the band
    assert not peg(Answer("coingecko", snapshot(q("dai", "DAI", 0.995, at=NOW)), NOW)).checks["dai"].depeg


def test_one_thin_source_alone_is_no_depeg() -> None:
    # one exchange says 0.97 while an aggregator says 1.0003: its own figure disagrees with the others
    split = peg(Answer("coinpaprika", snapshot(q("tether", "USDT", 1.0003, at=NOW)), NOW),
                Answer("coinbase", snapshot(q("tether", "USDT", 0.97), single=True), NOW))
    check = split.checks["tether"]
    assert not check.depeg and "only coinbase puts it at $0.9700 (the other providers put it on its peg)" in \
        str(check.note)
    assert [a.kind for a in split.alerts] == ["spread"]  # the providers still disagree by 3%: said as a spread
    # a single exchange pair with little volume, alone
    thin = peg(Answer("kraken", snapshot(q("tether", "USDT", 0.98, volume=20_000.0), single=True), NOW))
    assert not thin.checks["tether"].depeg and "a single thin exchange pair" in str(thin.checks["tether"].note)
    # the same pair with deep volume is not thin
    deep = peg(Answer("kraken", snapshot(q("tether", "USDT", 0.98, volume=180e6), single=True), NOW))
    assert deep.checks["tether"].depeg
    # a USDT-quoted price of USDC is a ratio of two stablecoins, not a dollar price: no peg verdict from it
    ratio = peg(Answer("binance", snapshot(q("usd-coin", "USDC", 0.985, at=NOW), currency="USDT", single=True),
                       NOW))
    assert not ratio.checks["usd-coin"].depeg and ratio.checks["usd-coin"].note == "no other provider priced it"


# -- the cross-check in the stream ----------------------------------------------------------------------

def paprika_body(age: float, prices: dict[str, tuple[str, str, float]]) -> list[dict[str, Any]]:
    """A /v1/tickers body (real field names): id -> (paprika id, symbol, price)."""
    stamp = iso(time.time() - age)
    return [{"id": pid, "name": symbol, "symbol": symbol, "rank": rank, "last_updated": stamp,
             "quotes": {"USD": {"price": price, "volume_24h": 1e9, "market_cap": 1e10, "percent_change_24h": 0.1}}}
            for rank, (pid, symbol, price) in enumerate(prices.values(), start=1)]


def kraken_body(prices: dict[str, float]) -> dict[str, Any]:
    """A /0/public/Ticker body (real field names and string numbers) for the given pairs."""
    return {"error": [], "result": {pair: {"a": [str(p), "1", "1.000"], "b": [str(p), "1", "1.000"],
                                           "c": [str(p), "0.1"], "v": ["10", "2000"], "p": [str(p), str(p)],
                                           "t": [5, 900], "l": [str(p), str(p)], "h": [str(p), str(p)], "o": str(p)}
                                    for pair, p in prices.items()}}


def counted(answer: Any, calls: dict[str, int], key: str) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        calls[key] = calls.get(key, 0) + 1
        return httpx.Response(200, json=answer)
    return handle


async def test_every_update_carries_the_latest_cross_check_within_the_budgets() -> None:
    calls: dict[str, int] = {}
    prices = {"bitcoin": 64000.0, "ethereum": 3000.0, "tether": 1.0, "usd-coin": 0.999, "solana": 150.0}
    routes = {
        GECKO: counted(gecko_body(20, prices), calls, "coingecko"),
        PAPRIKA: counted(paprika_body(60, {"bitcoin": ("btc-bitcoin", "BTC", 64100.0),
                                           "ethereum": ("eth-ethereum", "ETH", 3100.0),
                                           "tether": ("usdt-tether", "USDT", 1.0003)}), calls, "coinpaprika"),
        KRAKEN: counted(kraken_body({"XXBTZUSD": 64050.0, "XETHZUSD": 3105.0, "USDTZUSD": 0.9998}), calls, "kraken"),
        COINBASE: httpx.Response(503),
    }
    clock = FakeClock()
    # budgets off: the cadences, not the token buckets, are what this test counts (they run on the fake clock)
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(routes)), backoff=0.001, retries=0,
                      budgets=False, replay=True)
    checks = [check_section(p, fetcher, every=every, data_source="live", clock=clock)
              for p, every in ((CoinPaprika(), 300.0), (Kraken(), 60.0), (Coinbase(), 60.0))]
    service = MarketDataService(Pool("market_data", [CoinGecko()], fetcher), fetcher, limit=100, interval=5.0,
                                data_source="live", checks=checks, clock=clock)
    first = await service.collect()
    for _ in range(11):  # a minute of 5 s runs
        clock.advance(5)
        last = await service.collect()
    # the prices every run; each check one batched call on its own cadence; Coinbase failed, so it is asked again
    # on the next runs until its circuit breaker opens after three failures, then given a trial of one request
    # every other run (at 20, 30, 40, 50 s): one call every 10 s to a dead exchange, never more
    assert calls == {"coingecko": 12, "coinpaprika": 1, "kraken": 1}
    assert fetcher.runtime("coinbase").health.requests == 3 + 4
    for payload in (first, last):
        consensus = payload["consensus"]
        assert (consensus["confirmed"], consensus["disputed"], consensus["unconfirmed"]) == (2, 1, 2)
        coins = {c["id"]: c["check"] for c in payload["coins"]}
        assert coins["ethereum"]["state"] == "disputed" and coins["solana"]["state"] == "unconfirmed"
        assert coins["bitcoin"] == {**coins["bitcoin"], "state": "confirmed", "median": 64050.0, "quorum": 3}
        assert coins["usd-coin"]["state"] == "unconfirmed" and not coins["usd-coin"]["depeg"]
        assert coins["tether"] == {**coins["tether"], "state": "confirmed", "sources": 3, "depeg": False}
        assert [a["coin"] for a in consensus["alerts"]] == ["ethereum"]
        by_source = {s["source"]: s for s in consensus["sources"]}
        assert by_source["coinpaprika"]["compared"] and by_source["kraken"]["compared"]
        assert by_source["coinpaprika"]["status"] == "ok" and by_source["coinpaprika"]["fetched_at"]
        assert by_source["coinbase"]["status"] == "no_data" and not by_source["coinbase"]["compared"]
        assert consensus["threshold_pct"] == 2.0 and consensus["checked_at"]
    # the spec's keys are untouched beside it
    assert last["prices"] == prices and last["source"] == "coingecko"


async def test_a_check_whose_provider_is_back_is_compared_again_within_two_runs() -> None:
    """A cross-check that failed is due again on the next run (not a fifth of its interval later): behind its open
    breaker that costs nothing, its pool gives it a trial every other run, so once Kraken answers again the update
    compares it within two runs, and a dead Kraken is asked once every two runs, inside its budget."""
    routes: dict[str, Any] = {GECKO: httpx.Response(200, json=gecko_body(20, {"bitcoin": 64000.0})),
                              KRAKEN: httpx.Response(503)}
    clock = FakeClock()
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(routes)), backoff=0.001, retries=0,
                      budgets=False, replay=True, clock=clock)
    checks = [check_section(Kraken(), fetcher, every=60.0, data_source="live", clock=clock)]
    service = MarketDataService(Pool("market_data", [CoinGecko()], fetcher), fetcher, limit=100, interval=5.0,
                                data_source="live", checks=checks, clock=clock)
    for _ in range(24):  # two minutes of 5 s runs with Kraken down: its breaker opened after three failures
        await service.collect()
        clock.advance(5)
    kraken = fetcher.runtime("kraken")
    assert kraken.breaker.state.value == "open" and kraken.health.requests == 3 + 10
    routes[KRAKEN] = httpx.Response(200, json=kraken_body({"XXBTZUSD": 64050.0}))
    sources = []
    for _ in range(2):
        payload = await service.collect()
        sources.append(payload["consensus"]["sources"][0]["status"])
        clock.advance(5)
    assert "ok" in sources and kraken.breaker.state.value == "closed"
    assert payload["coins"][0]["check"]["state"] == "confirmed"


async def test_the_shown_provider_never_checks_itself() -> None:
    calls: dict[str, int] = {}
    routes = {GECKO: httpx.Response(503),
              PAPRIKA: counted(paprika_body(30, {"bitcoin": ("btc-bitcoin", "BTC", 64000.0)}), calls, "coinpaprika")}
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(routes)), backoff=0.001, retries=0, replay=True)
    service = MarketDataService(Pool("market_data", [CoinGecko(), CoinPaprika()], fetcher), fetcher, limit=100,
                                interval=0.0, data_source="live",
                                checks=[check_section(CoinPaprika(), fetcher, every=300.0, data_source="live")])
    payload = await service.collect()
    assert payload["source"] == "coinpaprika" and calls == {"coinpaprika": 1}  # the prices, not a second call
    assert payload["coins"][0]["check"]["state"] == "unconfirmed"
    assert payload["consensus"]["sources"][0]["status"] == "no_data"


async def test_alerts_become_health_events_through_the_port() -> None:
    hub = Hub()
    routes = {GECKO: httpx.Response(200, json=gecko_body(20, {"bitcoin": 64000.0, "tether": 0.96})),
              PAPRIKA: httpx.Response(200, json=paprika_body(20, {"bitcoin": ("btc-bitcoin", "BTC", 61000.0),
                                                                  "tether": ("usdt-tether", "USDT", 0.959)}))}
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(routes)), backoff=0.001, retries=0, replay=True)
    service = service_with(routes, checks=[check_section(CoinPaprika(), fetcher, every=300.0, data_source="live")])
    health = HealthCheckerService(fetcher, interval=30.0, data_source="live", price_alerts=hub_price_alerts(hub))
    assert health.snapshot()["events"] == []  # market_data has published nothing yet
    hub.publish("market_data", await service.collect())
    events = health.snapshot()["events"]
    assert [(e["kind"], e["subject"], e["service"]) for e in events] == [
        ("price_spread", "bitcoin", "market_data"), ("depeg", "tether", "market_data")]
    assert "BTC: providers disagree by 4.80%" in events[0]["message"] and events[0]["at"]
    # an alert of an hour-old update is no news
    stale = hub_price_alerts(hub, clock=lambda: time.time() + 7200)
    assert stale().alerts == ()


# -- replay ---------------------------------------------------------------------------------------------

async def test_replay_updates_say_when_their_data_was_captured(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, data_source="replay", interval_scale=1.0)
    http = http_client(settings)
    fetcher = Fetcher(http, budgets=False, replay=True)
    (service,) = build(build_context(settings, fetcher))
    payload = await service.collect()
    assert payload is not None and payload["recorded_at"] == "2023-07-28T20:03:30.000Z" and payload["status"] == "ok"
    # the median time of the 100 quotes shown, 7.1 s before the capture
    assert payload["data_time"] == "2023-07-28T20:03:22.925Z" and payload["age_seconds"] == 7.1
    assert all(c["quote_currency"] == "USD" and c["time"] for c in payload["coins"])
    # no recording of another provider is of that moment: every price says it is unconfirmed, and why
    consensus = payload["consensus"]
    assert consensus["unconfirmed"] == 100 and consensus["alerts"] == []
    assert {s["source"]: (s["status"], s["compared"]) for s in consensus["sources"]} == {
        "coinpaprika": ("ok", False), "kraken": ("ok", False), "coinbase": ("ok", False)}
    by_source = {s["source"]: s for s in consensus["sources"]}
    assert by_source["kraken"]["recorded_at"] == "2026-06-24T15:44:02.000Z"
    assert payload["coins"][0]["check"]["note"] == "no other provider priced it at the same moment"
    await http.aclose()
