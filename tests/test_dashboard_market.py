"""The market cross-check on the dashboard: each coin's verdict in the table, the alerts on the Market tab and as a
headline warning, the checks' ages, and the global figures' own time and staleness."""

from __future__ import annotations

import re
import time
from typing import Any

from models.freshness import SourceState
from models.market import MarketDataPayload
from ui.tabs.header import render_header
from ui.tabs.market import market_rows, market_summary, market_table
from ui.widgets import View

NOW = time.time()
VIEW = View(now=NOW, names={"coingecko": "CoinGecko", "coinpaprika": "CoinPaprika", "kraken": "Kraken"},
            intervals={"market_data": 5.0}, running=frozenset({"market_data"}))


def iso(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(NOW - seconds_ago))


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def check(state: str, *, median: float, spread: float, quorum: int, sources: int, depeg: bool = False,
          others: list[dict[str, Any]] | None = None, note: str | None = None) -> dict[str, Any]:
    return {"state": state, "median": median, "spread_pct": spread, "quorum": quorum, "sources": sources,
            "others": others or [], "depeg": depeg, "note": note}


def market(**overrides: Any) -> dict[str, Any]:
    eth_alert = "ETH: providers disagree by 3.39% (3000 shown; coinpaprika 3100, kraken 3105); 2 of 3 agree"
    values: dict[str, Any] = {
        "timestamp": iso(2), "fetched_at": iso(2), "source": "coingecko", "quote_currency": "USD",
        "prices": {"bitcoin": 64000.0, "ethereum": 3000.0, "tether": 0.96, "solana": 150.0},
        "providers": {"coingecko": SourceState(status="ok")},
        "coins": [
            {"id": "bitcoin", "symbol": "BTC", "name": "Bitcoin", "rank": 1, "price": 64000.0,
             "quote_currency": "USD", "source": "coingecko", "time": iso(20),
             "check": check("confirmed", median=64050.0, spread=0.156, quorum=3, sources=3, others=[
                 {"source": "coinpaprika", "price": 64100.0, "quote_currency": "USD", "time": iso(60),
                  "agrees": True},
                 {"source": "kraken", "price": 64050.0, "quote_currency": "USD", "agrees": True}])},
            {"id": "ethereum", "symbol": "ETH", "name": "Ethereum", "rank": 2, "price": 3000.0,
             "quote_currency": "USD", "source": "coingecko",
             "check": check("disputed", median=3100.0, spread=3.3871, quorum=2, sources=3)},
            {"id": "tether", "symbol": "USDT", "name": "Tether", "rank": 3, "price": 0.96,
             "check": check("confirmed", median=0.9595, spread=0.1, quorum=2, sources=2, depeg=True)},
            {"id": "solana", "symbol": "SOL", "name": "Solana", "rank": 5, "price": 150.0,
             "check": check("unconfirmed", median=150.0, spread=0.0, quorum=1, sources=1,
                            note="no other provider priced it")},
        ],
        "consensus": {
            "threshold_pct": 2.0, "checked_at": iso(60), "confirmed": 2, "disputed": 1, "unconfirmed": 1,
            "sources": [
                {"source": "coinpaprika", "status": "ok", "fetched_at": iso(60), "coins": 3, "compared": True},
                {"source": "kraken", "status": "ok", "fetched_at": iso(2000), "recorded_at": iso(2000), "coins": 2,
                 "compared": False},
                {"source": "coinbase", "status": "no_data", "coins": 0, "compared": False}],
            "alerts": [
                {"kind": "spread", "coin": "ethereum", "symbol": "ETH", "median": 3100.0, "spread_pct": 3.3871,
                 "message": eth_alert},
                {"kind": "depeg", "coin": "tether", "symbol": "USDT", "median": 0.9595, "spread_pct": 0.1,
                 "message": "USDT is off its $1 peg: 0.9595 (-4.05%) by the median of 2 sources"}]},
        "global_market": {"total_market_cap_usd": 2.1e12, "active_cryptocurrencies": 7362, "source": "coingecko",
                          "fetched_at": iso(10), "updated_at": iso(5000), "status": "stale", "age_seconds": 5000.0,
                          "max_age_seconds": 3600.0},
    }
    values.update(overrides)
    return MarketDataPayload(**values).model_dump(mode="json")


def test_each_coin_says_how_its_price_was_checked() -> None:
    rows = {text_of(row[1]).strip(): row for row in market_rows(market(), VIEW)}
    assert "3/3 agree" in rows["Bitcoin BTC"][7] and "CoinPaprika $64,100.00" in rows["Bitcoin BTC"][7]
    assert "spread 3.4%" in rows["Ethereum ETH"][7]
    assert "de-peg" in rows["Tether USDT"][7]
    assert "unconfirmed" in rows["Solana SOL"][7] and "no other provider priced it" in rows["Solana SOL"][7]
    # before any cross-check: n/a, not a verdict
    bare = market(coins=[{"id": "bitcoin", "symbol": "BTC", "name": "Bitcoin"}], consensus=None)
    assert text_of(market_rows(bare, VIEW)[0][7]).strip() == "n/a"
    assert "Checked" in market_table(market(), VIEW)


def test_the_market_tab_lists_the_alerts_and_the_checks_ages() -> None:
    html = market_summary(market(), VIEW)
    text = text_of(html)
    assert "PRICE CHECK" in html and "2 prices not to trust" in text
    assert "ETH: providers disagree by 3.39%" in text and "USDT is off its $1 peg" in text
    assert "2 confirmed, 1 disputed, 1 unconfirmed" in text and "over 2.0% apart is disputed" in text
    assert "CoinPaprika fetched" in text and "Kraken recorded" in text and "not of the moment shown" in text
    assert "coinbase no answer yet" in text
    # the global figures: dated by the provider, and said to be stale
    assert "stale" in text and "CoinGecko ·" in text
    calm = market_summary(market(consensus={"threshold_pct": 2.0, "sources": [], "alerts": []}), VIEW)
    assert "PRICE CHECK" not in calm


def test_the_header_warns_while_a_price_is_flagged() -> None:
    html = render_header(market(), None, None, {}, VIEW, {"live"})
    assert "PRICE CHECK" in html and "ETH: providers disagree by 3.39%" in text_of(html)
    assert "USDT is off its $1 peg" in text_of(html)
    quiet = render_header(market(consensus=None), None, None, {}, VIEW, {"live"})
    assert "PRICE CHECK" not in quiet and "$64,000.00" in quiet
