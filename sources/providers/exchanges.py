"""Exchanges as market providers: Kraken, Coinbase Exchange and Binance, each one market per coin (a pair).

They honour the market contract (:class:`~sources.providers.market.MarketProvider`: ``fetch_quotes`` makes one
batched request through the fetcher, a pure ``normalize_*`` classmethod reads the answer) and say what their
figures are counted in: Kraken's ``<BASE>USD`` pairs and Coinbase's ``<BASE>-USD`` products are in US dollars,
Binance's ``<BASE>USDT`` pairs in Tether (taken as the dollar's proxy, never converted, and said so). An exchange
knows no market caps. Each quote carries the exchange's own time where the answer has one: Binance's
``closeTime``; Kraken's ticker and Coinbase's statistics carry none, so theirs is left null.
"""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

from sources.errors import AnswerError
from sources.fetcher import Fetcher
from sources.limits import Rate
from sources.providers.coins import BY_BINANCE, BY_COINBASE, BY_KRAKEN, COINS, TABLE_ORDER, Coin
from sources.providers.market import MarketProvider, MarketSnapshot, Quote, quote_time
from sources.providers.values import number, positive, require_list, require_object


def _by_table_order(quotes: list[Quote]) -> list[Quote]:
    return sorted(quotes, key=lambda q: TABLE_ORDER.get(q.id, len(TABLE_ORDER)))


class Kraken(MarketProvider):
    id = "kraken"
    name = "Kraken"
    base_url = "https://api.kraken.com/0/public"
    endpoints = ("/Ticker",)
    docs = "https://docs.kraken.com/api/docs/rest-api/get-ticker-information"
    rate = Rate(1, 2, burst=3)  # public endpoints: about one call a second per IP
    # One pair's ticker: a small answer that says whether the market data answers at all.
    probe_path = "/Ticker"
    probe_keys = ("result",)
    probe_params = MappingProxyType({"pair": "XBTUSD"})
    probe_interval = 60.0

    async def fetch_quotes(self, fetcher: Fetcher, limit: int, max_wait: float) -> MarketSnapshot:
        # Without ``pair`` Kraken lists every pair: one unknown pair in a list would fail the whole request.
        raw = await fetcher.get_json(self, "/Ticker", max_wait=max_wait)
        return self.normalize_ticker(raw, limit)

    @staticmethod
    def _pair_keys(coin: Coin) -> tuple[str, ...]:
        """The names of a coin's US dollar pair: ``XXBTZUSD``/``XBTUSD`` style, and ``BTC/USD`` as Kraken writes
        them when asked with ``assetVersion=1``."""
        base = coin.kraken or coin.symbol
        return (f"X{base}ZUSD", f"{base}USD", f"{base}ZUSD", f"{coin.symbol}/USD")

    @classmethod
    def normalize_ticker(cls, raw: Any, limit: int = 250) -> MarketSnapshot:
        """``result.<PAIR>``: ``c[0]`` last price, ``v[1]`` 24 h volume in the base asset, ``p[1]`` its
        volume-weighted average price, ``o`` the opening price of the UTC day. USD pairs only; no time."""
        if not isinstance(raw, dict):
            raise AnswerError(f"kraken: expected an object, got {type(raw).__name__}")
        if raw.get("error"):
            raise AnswerError(f"kraken error: {', '.join(map(str, raw['error']))}")
        result = raw["result"]
        quotes = []
        for coin in BY_KRAKEN.values():
            ticker = next((result[k] for k in cls._pair_keys(coin) if k in result), None)
            if ticker is None:
                continue
            price = positive(ticker["c"][0])
            if price is None:
                continue
            volume, vwap, opening = positive(ticker["v"][1]), positive(ticker["p"][1]), positive(ticker.get("o"))
            quotes.append(Quote(
                id=coin.id, symbol=coin.symbol, name=coin.name, price=price,
                volume_24h=volume * vwap if volume is not None and vwap is not None else None,
                change_24h=(price - opening) / opening * 100 if opening else None))
        if not quotes:
            raise AnswerError("kraken listed none of the USD pairs we follow")
        quotes.sort(key=lambda q: -(q.volume_24h or 0))
        return MarketSnapshot(tuple(quotes[:limit]), "utc_day", single_market=True)


class Coinbase(MarketProvider):
    """Coinbase Exchange: every product's statistics of the last 24 hours in one ``/products/stats`` call.

    That endpoint is not in Coinbase's reference (which documents ``/products/<ID>/stats``, one product a call,
    used here as the probe), but it is what Coinbase's own pages and many public clients read: one call instead
    of one per coin keeps the round inside any budget.
    """

    id = "coinbase"
    name = "Coinbase Exchange"
    base_url = "https://api.exchange.coinbase.com"
    endpoints = ("/products/stats", "/products/BTC-USD/stats")
    docs = "https://docs.cdp.coinbase.com/exchange/reference/exchangerestapi_getproductstats"
    # Public endpoints: 10 requests a second per IP, bursts up to 15; one call prices every coin.
    rate = Rate(6, 1, burst=10)
    probe_path = "/products/BTC-USD/stats"
    probe_keys = ("last",)
    probe_interval = 120.0

    async def fetch_quotes(self, fetcher: Fetcher, limit: int, max_wait: float) -> MarketSnapshot:
        raw = await fetcher.get_json(self, "/products/stats", max_wait=max_wait)
        return self.normalize_products_stats(raw, limit)

    @classmethod
    def normalize_products_stats(cls, raw: Any, limit: int = 250) -> MarketSnapshot:
        """``{"<BASE>-USD": {"stats_24hour": {"last", "open", "volume", ...}, "stats_30day": {...}}, ...}``: the
        last price and the open of the last 24 hours, in USD. ``volume`` is in the base currency only, so no
        dollar volume is given; the statistics carry no time. Errors come as ``{"message": ...}``."""
        body = require_object(raw, "coinbase")
        if isinstance(body.get("message"), str):  # {"message": "NotFound"}
            raise AnswerError(f"coinbase error: {body['message']}")
        quotes = []
        for base, coin in BY_COINBASE.items():
            product = body.get(f"{base}-USD")
            day = product.get("stats_24hour") if isinstance(product, dict) else None
            if not isinstance(day, dict) or (price := positive(day.get("last"))) is None:
                continue
            opening = positive(day.get("open"))
            quotes.append(Quote(id=coin.id, symbol=coin.symbol, name=coin.name, price=price,
                                change_24h=(price - opening) / opening * 100 if opening else None))
        if not quotes:
            raise AnswerError("coinbase: none of the USD products we follow has a price")
        return MarketSnapshot(tuple(_by_table_order(quotes)[:limit]), "24h", single_market=True)


class Binance(MarketProvider):
    """Binance spot ``/ticker/24hr`` for the table's ``<BASE>USDT`` pairs, from its market-data-only host.

    Binance refuses US and many cloud addresses with HTTP 451: the fetcher reports that as unavailable and the
    pool passes on to the next provider, as for any failure.
    """

    id = "binance"
    name = "Binance"
    base_url = "https://data-api.binance.vision/api/v3"
    endpoints = ("/ticker/24hr",)
    docs = ("https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints"
            "#24hr-ticker-price-change-statistics")
    # 6,000 request weight a minute per IP; a call for 21-100 symbols weighs 40, so 20 calls use 800.
    rate = Rate(20, 60, burst=3)
    probe_path = "/ticker/24hr"
    probe_keys = ("lastPrice",)
    probe_params = MappingProxyType({"symbol": "BTCUSDT"})
    probe_interval = 300.0

    async def fetch_quotes(self, fetcher: Fetcher, limit: int, max_wait: float) -> MarketSnapshot:
        # One unknown symbol fails the whole call (HTTP 400, code -1121): only the table's pairs are asked for.
        symbols = [f"{c.binance}USDT" for c in COINS[:limit] if c.binance]
        raw = await fetcher.get_json(self, "/ticker/24hr", {"symbols": json.dumps(symbols, separators=(",", ":"))},
                                     max_wait=max_wait)
        return self.normalize_tickers(raw, limit)

    @classmethod
    def normalize_tickers(cls, raw: Any, limit: int = 250) -> MarketSnapshot:
        """A list of tickers (one object for a single ``symbol``): ``lastPrice``, ``priceChangePercent`` over
        the last 24 hours, ``quoteVolume`` (in USDT), ``closeTime`` (Unix milliseconds: the ticker's time)."""
        if isinstance(raw, dict):
            if "code" in raw and "msg" in raw:  # {"code": -1121, "msg": "Invalid symbol."}
                raise AnswerError(f"binance error {raw['code']}: {raw['msg']}")
            raw = [raw]
        quotes = []
        for item in require_list(raw, "tickers"):
            symbol = item.get("symbol") if isinstance(item, dict) else None
            coin = BY_BINANCE.get(symbol[:-4]) if isinstance(symbol, str) and symbol.endswith("USDT") else None
            price = positive(item.get("lastPrice")) if coin else None
            if coin is None or price is None:  # 0 is the last price of a halted pair
                continue
            quotes.append(Quote(id=coin.id, symbol=coin.symbol, name=coin.name, price=price,
                                volume_24h=positive(item.get("quoteVolume")),
                                change_24h=number(item.get("priceChangePercent")),
                                time=quote_time(item.get("closeTime"), millis=True)))
        if not quotes:
            raise AnswerError("binance listed none of the USDT pairs we follow")
        return MarketSnapshot(tuple(_by_table_order(quotes)[:limit]), "24h", "USDT", single_market=True)
