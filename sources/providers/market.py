"""Market data providers: prices, 24 h volumes, market caps and changes, normalised to :class:`MarketSnapshot`;
and the whole-market figures and trending coins some of them publish, normalised to the payload's own models
(:class:`~models.payloads.GlobalMarket`, :class:`~models.payloads.TrendingCoin`).

Each provider declares itself with class attributes; ``fetch_*`` makes its requests through the fetcher and hands
the raw answer to a pure ``normalize_*`` classmethod, which is what the tests exercise with recorded bodies.
Values a provider does not give are left out, never filled with zero: the exchanges (Kraken, Coinbase, Binance)
know no market caps, and Coinbase's public statistics give no volume in dollars.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from models.payloads import GlobalMarket, TrendingCoin
from sources.errors import AnswerError, ProviderBadResponse, ProviderError
from sources.fetcher import Fetcher, Provider
from sources.limits import Rate
from sources.providers.coins import (
    BY_BINANCE,
    BY_COINBASE,
    BY_ID,
    BY_KRAKEN,
    BY_SYMBOL,
    COINS,
    TABLE_ORDER,
    from_paprika,
)
from sources.providers.values import count, number, positive, require_list, require_object


@dataclass(frozen=True)
class Quote:
    id: str
    symbol: str
    name: str
    price: float
    rank: int | None = None
    volume_24h: float | None = None
    market_cap: float | None = None
    change_24h: float | None = None


@dataclass(frozen=True)
class MarketSnapshot:
    quotes: tuple[Quote, ...]
    change_window: Literal["24h", "utc_day"] = "24h"
    #: What prices and volumes are counted in. Binance trades our coins against USDT: its figures are in USDT,
    #: shown as they are (taken as the dollar's proxy, never converted), and the payload says so.
    quote_currency: Literal["USD", "USDT"] = "USD"


def _by_table_order(quotes: list[Quote]) -> list[Quote]:
    return sorted(quotes, key=lambda q: TABLE_ORDER.get(q.id, len(TABLE_ORDER)))


class MarketProvider(Provider):
    category = "market"

    async def fetch_quotes(self, fetcher: Fetcher, limit: int, max_wait: float) -> MarketSnapshot:
        raise NotImplementedError


class GlobalMarketProvider(MarketProvider):
    """A market provider that also publishes whole-market figures."""

    async def fetch_global(self, fetcher: Fetcher, max_wait: float) -> GlobalMarket:
        raise NotImplementedError


def _figures(figures: GlobalMarket, provider: str) -> GlobalMarket:
    if figures == GlobalMarket():
        raise AnswerError(f"{provider}: /global gave none of the figures we read")
    return figures


class CoinGecko(GlobalMarketProvider):
    id = "coingecko"
    name = "CoinGecko"
    base_url = "https://api.coingecko.com/api/v3"
    endpoints = ("/coins/markets", "/global", "/search/trending", "/ping")
    docs = "https://docs.coingecko.com/reference/coins-markets"
    # Keyless access is shared per IP and documented loosely ("5 to 15 calls per minute"); a Demo key gets 30.
    rate = Rate(8, 60, burst=3)
    keyed_rate = Rate(30, 60, burst=5)
    key_setting = "coingecko_api_key"
    key_required = False
    probe_path = "/ping"
    probe_interval = 120.0

    def auth(self) -> tuple[dict[str, str], dict[str, str]]:
        return ({"x-cg-demo-api-key": self.key}, {}) if self.key else ({}, {})

    async def fetch_quotes(self, fetcher: Fetcher, limit: int, max_wait: float) -> MarketSnapshot:
        params = {"vs_currency": "usd", "order": "market_cap_desc", "per_page": str(limit), "page": "1",
                  "sparkline": "false", "price_change_percentage": "24h"}
        raw = await fetcher.get_json(self, "/coins/markets", params, max_wait=max_wait)
        return self.normalize_markets(raw, limit)

    @classmethod
    def normalize_markets(cls, raw: Any, limit: int = 250) -> MarketSnapshot:
        if isinstance(raw, dict) and "status" in raw:
            raise AnswerError(f"coingecko error: {raw['status']}")
        quotes = []
        for item in require_list(raw, "coins"):
            price = positive(item.get("current_price"))  # 0 or less is a price the provider does not know
            if price is None or not item.get("id"):
                continue
            rank = item.get("market_cap_rank")
            quotes.append(Quote(
                id=str(item["id"]), symbol=str(item.get("symbol", "")).upper(), name=str(item.get("name", "")),
                price=price, rank=int(rank) if isinstance(rank, int) else None,
                volume_24h=positive(item.get("total_volume")), market_cap=positive(item.get("market_cap")),
                change_24h=number(item.get("price_change_percentage_24h"))))
        if not quotes:
            raise AnswerError("coingecko returned no priced coins")
        return MarketSnapshot(tuple(quotes[:limit]), "24h")

    async def fetch_global(self, fetcher: Fetcher, max_wait: float) -> GlobalMarket:
        return self.normalize_global(await fetcher.get_json(self, "/global", max_wait=max_wait))

    async def fetch_trending(self, fetcher: Fetcher, max_wait: float) -> tuple[TrendingCoin, ...]:
        return self.normalize_trending(await fetcher.get_json(self, "/search/trending", max_wait=max_wait))

    @staticmethod
    def _raise_for_error(raw: Any) -> dict[str, Any]:
        body = require_object(raw, "coingecko")
        if "status" in body or "error" in body:  # {"status": {"error_code": 429, ...}} or {"error": "..."}
            raise AnswerError(f"coingecko error: {body.get('status') or body.get('error')}")
        return body

    @classmethod
    def normalize_global(cls, raw: Any) -> GlobalMarket:
        """``data.total_market_cap.usd``, ``data.total_volume.usd``, ``data.market_cap_percentage.{btc,eth}``,
        ``data.market_cap_change_percentage_24h_usd``, ``data.active_cryptocurrencies``."""
        data = cls._raise_for_error(raw)["data"]
        caps = data.get("total_market_cap") or {}
        volumes = data.get("total_volume") or {}
        shares = data.get("market_cap_percentage") or {}
        return _figures(GlobalMarket(
            total_market_cap_usd=positive(caps.get("usd")), total_volume_usd=positive(volumes.get("usd")),
            btc_dominance=number(shares.get("btc")), eth_dominance=number(shares.get("eth")),
            market_cap_change_24h=number(data.get("market_cap_change_percentage_24h_usd")),
            active_cryptocurrencies=count(data.get("active_cryptocurrencies"))), "coingecko")

    @classmethod
    def normalize_trending(cls, raw: Any) -> tuple[TrendingCoin, ...]:
        """``coins[].item.{id, symbol, name, market_cap_rank, score}``; the NFTs and categories are not coins."""
        trends = []
        for entry in require_list(cls._raise_for_error(raw)["coins"], "trending coins"):
            item = entry.get("item") if isinstance(entry, dict) else None
            if not isinstance(item, dict) or not item.get("id"):
                continue
            trends.append(TrendingCoin(id=str(item["id"]), symbol=str(item.get("symbol", "")).upper(),
                                name=str(item.get("name", "")), market_cap_rank=count(item.get("market_cap_rank")),
                                score=count(item.get("score"))))
        if not trends:
            raise AnswerError("coingecko listed no trending coins")
        return tuple(trends)


class CoinPaprika(GlobalMarketProvider):
    id = "coinpaprika"
    name = "CoinPaprika"
    base_url = "https://api.coinpaprika.com/v1"
    endpoints = ("/tickers", "/global")
    docs = "https://api.coinpaprika.com/#tag/Tickers"
    rate = Rate(25, 3600, burst=5)  # the free plan: 20,000 calls a month
    probe_path = "/global"
    probe_interval = 900.0

    async def fetch_quotes(self, fetcher: Fetcher, limit: int, max_wait: float) -> MarketSnapshot:
        raw = await fetcher.get_json(self, "/tickers", {"quotes": "USD"}, max_wait=max_wait)
        return self.normalize_tickers(raw, limit)

    @classmethod
    def normalize_tickers(cls, raw: Any, limit: int = 250) -> MarketSnapshot:
        if isinstance(raw, dict) and "error" in raw:
            raise AnswerError(f"coinpaprika error: {raw['error']}")
        ranked = []
        for item in require_list(raw, "tickers"):
            usd = (item.get("quotes") or {}).get("USD") or {}
            price = positive(usd.get("price"))
            rank = item.get("rank")
            if price is None or not isinstance(rank, int) or rank <= 0 or not item.get("id"):
                continue
            symbol = str(item.get("symbol", ""))
            ranked.append(Quote(
                id=from_paprika(str(item["id"]), symbol), symbol=symbol.upper(), name=str(item.get("name", "")),
                price=price, rank=rank, volume_24h=positive(usd.get("volume_24h")),
                market_cap=positive(usd.get("market_cap")), change_24h=number(usd.get("percent_change_24h"))))
        if not ranked:
            raise AnswerError("coinpaprika returned no ranked coins")
        ranked.sort(key=lambda q: q.rank or 0)
        return MarketSnapshot(tuple(ranked[:limit]), "24h")

    async def fetch_global(self, fetcher: Fetcher, max_wait: float) -> GlobalMarket:
        return self.normalize_global(await fetcher.get_json(self, "/global", max_wait=max_wait))

    @classmethod
    def normalize_global(cls, raw: Any) -> GlobalMarket:
        """``market_cap_usd``, ``volume_24h_usd``, ``bitcoin_dominance_percentage``, ``market_cap_change_24h``
        (percent), ``cryptocurrencies_number``; no ether dominance."""
        body = require_object(raw, "coinpaprika")
        if "error" in body:
            raise AnswerError(f"coinpaprika error: {body['error']}")
        return _figures(GlobalMarket(
            total_market_cap_usd=positive(body.get("market_cap_usd")),
            total_volume_usd=positive(body.get("volume_24h_usd")),
            btc_dominance=number(body.get("bitcoin_dominance_percentage")),
            market_cap_change_24h=number(body.get("market_cap_change_24h")),
            active_cryptocurrencies=count(body.get("cryptocurrencies_number"))), "coinpaprika")


class Kraken(MarketProvider):
    id = "kraken"
    name = "Kraken"
    base_url = "https://api.kraken.com/0/public"
    endpoints = ("/Ticker", "/Time")
    docs = "https://docs.kraken.com/api/docs/rest-api/get-ticker-information"
    rate = Rate(1, 2, burst=3)  # public endpoints: about one call a second per IP
    probe_path = "/Time"
    probe_interval = 60.0

    async def fetch_quotes(self, fetcher: Fetcher, limit: int, max_wait: float) -> MarketSnapshot:
        # Without ``pair`` Kraken lists every pair: one unknown pair in a list would fail the whole request.
        raw = await fetcher.get_json(self, "/Ticker", max_wait=max_wait)
        return self.normalize_ticker(raw, limit)

    @staticmethod
    def _pair_keys(base: str) -> tuple[str, ...]:
        return (f"X{base}ZUSD", f"{base}USD", f"{base}ZUSD")

    @classmethod
    def normalize_ticker(cls, raw: Any, limit: int = 250) -> MarketSnapshot:
        """``result.<PAIR>``: ``c[0]`` last price, ``v[1]`` 24 h volume in the base asset, ``p[1]`` its
        volume-weighted average price, ``o`` the opening price of the UTC day."""
        if not isinstance(raw, dict):
            raise AnswerError(f"kraken: expected an object, got {type(raw).__name__}")
        if raw.get("error"):
            raise AnswerError(f"kraken error: {', '.join(map(str, raw['error']))}")
        result = raw["result"]
        quotes = []
        for base, coin in BY_KRAKEN.items():
            ticker = next((result[k] for k in cls._pair_keys(base) if k in result), None)
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
        return MarketSnapshot(tuple(quotes[:limit]), "utc_day")


class Coinbase(MarketProvider):
    """Coinbase Exchange: one ``/products/<BASE>-USD/stats`` call per coin of the table it lists."""

    id = "coinbase"
    name = "Coinbase Exchange"
    base_url = "https://api.exchange.coinbase.com"
    endpoints = ("/products/{BASE}-USD/stats",)
    docs = "https://docs.cdp.coinbase.com/exchange/reference/exchangerestapi_getproductstats"
    # Public endpoints: 10 requests a second per IP, bursts up to 15. A round over its ~35 products spreads
    # over about five seconds at 6 a second, leaving room for anything else on the same address.
    rate = Rate(6, 1, burst=10)
    probe_path = "/products/BTC-USD/stats"
    probe_interval = 120.0
    #: A product that answered 404 (delisted, renamed) is not asked for again for this long: each 404 counts
    #: against the provider's health and circuit breaker like any failed call.
    UNLISTED_FOR = 6 * 3600.0

    def __init__(self, key: str | None = None) -> None:
        super().__init__(key)
        self.unlisted: dict[str, float] = {}  # base currency -> when (fetcher clock) it answered 404

    async def fetch_quotes(self, fetcher: Fetcher, limit: int, max_wait: float) -> MarketSnapshot:
        now = fetcher.now()
        bases = [base for base in (c.coinbase for c in COINS[:limit] if c.coinbase)
                 if now - self.unlisted.get(base, -self.UNLISTED_FOR) >= self.UNLISTED_FOR]
        answers = await asyncio.gather(
            *(fetcher.get_json(self, f"/products/{base}-USD/stats", max_wait=max_wait) for base in bases),
            return_exceptions=True)
        bodies, failures = {}, []
        for base, answer in zip(bases, answers, strict=True):
            if not isinstance(answer, BaseException):
                bodies[base] = answer
            elif not isinstance(answer, ProviderError):
                raise answer  # not a provider's failure (a bug, a cancellation): never swallowed
            else:  # one product failing (delisted, a timeout) costs that coin only
                failures.append(answer)
                if isinstance(answer, ProviderBadResponse) and answer.status == 404:
                    self.unlisted[base] = now
        if not bodies:
            # Nothing answered: the first failure is the provider's (a 451, a 429, a timeout ...).
            raise failures[0] if failures else AnswerError("coinbase: no product left to ask for")
        return self.normalize_stats(bodies)

    @classmethod
    def normalize_stats(cls, bodies: Mapping[str, Any]) -> MarketSnapshot:
        """``/stats`` bodies by base currency: ``last`` price and ``open`` of the last 24 hours, in USD;
        ``volume`` is in the base currency only, so no dollar volume is given."""
        quotes, errors = [], []
        for base, raw in bodies.items():
            coin = BY_COINBASE.get(base)
            if coin is None:
                continue
            if not isinstance(raw, dict) or "message" in raw:  # {"message": "NotFound"}
                errors.append(f"{base}: {raw.get('message') if isinstance(raw, dict) else type(raw).__name__}")
                continue
            price, opening = positive(raw.get("last")), positive(raw.get("open"))
            if price is None:
                continue
            quotes.append(Quote(id=coin.id, symbol=coin.symbol, name=coin.name, price=price,
                                change_24h=(price - opening) / opening * 100 if opening else None))
        if not quotes:
            raise AnswerError("coinbase: no product answered with a price"
                              + (f" ({'; '.join(errors[:3])})" if errors else ""))
        return MarketSnapshot(tuple(_by_table_order(quotes)), "24h")


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
        the last 24 hours, ``quoteVolume`` (in USDT)."""
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
                                change_24h=number(item.get("priceChangePercent"))))
        if not quotes:
            raise AnswerError("binance listed none of the USDT pairs we follow")
        return MarketSnapshot(tuple(_by_table_order(quotes)[:limit]), "24h", "USDT")


class CoinCap(MarketProvider):
    """CoinCap v3 ``/assets`` (keyed: v2, keyless, was shut down on 2025-03-31)."""

    id = "coincap"
    name = "CoinCap"
    base_url = "https://rest.coincap.io/v3"
    endpoints = ("/assets",)
    docs = "https://pro.coincap.io/api-docs"
    key_setting = "coincap_api_key"
    # Keys hold prepaid credits (a free key starts with very few): a last resort, a few calls an hour at most,
    # and a probe only every six hours.
    rate = Rate(3, 3600, burst=1)
    probe_path = "/assets"
    probe_params = MappingProxyType({"limit": "1"})
    probe_interval = 6 * 3600.0

    def auth(self) -> tuple[dict[str, str], dict[str, str]]:
        return ({"Authorization": f"Bearer {self.key}"}, {}) if self.key else ({}, {})

    async def fetch_quotes(self, fetcher: Fetcher, limit: int, max_wait: float) -> MarketSnapshot:
        raw = await fetcher.get_json(self, "/assets", {"limit": str(limit)}, max_wait=max_wait)
        return self.normalize_assets(raw, limit)

    @classmethod
    def normalize_assets(cls, raw: Any, limit: int = 250) -> MarketSnapshot:
        """``data[]``: numbers as strings (``priceUsd``, ``marketCapUsd``, ``volumeUsd24Hr``,
        ``changePercent24Hr``, ``rank``). CoinCap ids are its own (``binance-coin``): coins of our table are
        found by CoinGecko id or symbol, others keep CoinCap's id."""
        body = require_object(raw, "coincap")
        if body.get("error"):
            raise AnswerError(f"coincap error: {body['error']}")
        data = body.get("data")
        if not isinstance(data, list):  # e.g. v2's farewell: {"data": {"message": "We are deprecating ..."}}
            message = data.get("message") if isinstance(data, dict) else None
            raise AnswerError(f"coincap: expected a list of assets, got {message or type(data).__name__}")
        quotes = []
        for item in data:
            price = positive(item.get("priceUsd")) if isinstance(item, dict) else None
            if price is None or not item.get("id"):
                continue
            symbol = str(item.get("symbol", "")).upper()
            coin = BY_ID.get(str(item["id"])) or BY_SYMBOL.get(symbol)
            quotes.append(Quote(
                id=coin.id if coin else str(item["id"]), symbol=coin.symbol if coin else symbol,
                name=coin.name if coin else str(item.get("name", "")), price=price, rank=count(item.get("rank")),
                volume_24h=positive(item.get("volumeUsd24Hr")), market_cap=positive(item.get("marketCapUsd")),
                change_24h=number(item.get("changePercent24Hr"))))
        if not quotes:
            raise AnswerError("coincap returned no priced assets")
        quotes.sort(key=lambda q: q.rank if q.rank is not None else 1 << 30)
        # Matching by symbol can name two assets one coin (a bridged or look-alike token with a table coin's
        # symbol): the better ranked one is that coin, and the other must not overwrite its price.
        unique: dict[str, Quote] = {}
        for quote in quotes:
            unique.setdefault(quote.id, quote)
        return MarketSnapshot(tuple(list(unique.values())[:limit]), "24h")


class CryptoCompare(MarketProvider):
    """CryptoCompare (CoinDesk Data) ``/data/pricemultifull`` for the table's symbols against USD (keyed)."""

    id = "cryptocompare"
    name = "CryptoCompare"
    base_url = "https://min-api.cryptocompare.com"
    endpoints = ("/data/pricemultifull", "/data/price")
    docs = "https://developers.coindesk.com/documentation/legacy/Price/multipleSymbolsFullPriceEndpoint"
    key_setting = "cryptocompare_api_key"
    # The free key's allowance is monthly (its size has changed over the years): at most 20 calls an hour,
    # about 15,000 a month, and only when every provider before it failed.
    rate = Rate(20, 3600, burst=2)
    probe_path = "/data/price"
    probe_params = MappingProxyType({"fsym": "BTC", "tsyms": "USD"})
    probe_interval = 3600.0

    def auth(self) -> tuple[dict[str, str], dict[str, str]]:
        return ({"authorization": f"Apikey {self.key}"}, {}) if self.key else ({}, {})

    async def fetch_quotes(self, fetcher: Fetcher, limit: int, max_wait: float) -> MarketSnapshot:
        symbols = ",".join(c.symbol for c in COINS[:limit])
        raw = await fetcher.get_json(self, "/data/pricemultifull", {"fsyms": symbols, "tsyms": "USD"},
                                     max_wait=max_wait)
        return self.normalize_pricemultifull(raw, limit)

    @classmethod
    def normalize_pricemultifull(cls, raw: Any, limit: int = 250) -> MarketSnapshot:
        """``RAW.<SYMBOL>.USD``: ``PRICE``, ``TOTALVOLUME24HTO`` (every market, in USD), ``MKTCAP``,
        ``CHANGEPCT24HOUR``. Errors come as HTTP 200 with ``{"Response": "Error", "Message": ...}``."""
        body = require_object(raw, "cryptocompare")
        if body.get("Response") == "Error":
            raise AnswerError(f"cryptocompare error: {body.get('Message')}")
        quotes = []
        for symbol, by_currency in body["RAW"].items():
            coin = BY_SYMBOL.get(str(symbol).upper())
            usd = by_currency.get("USD") if isinstance(by_currency, dict) else None
            if coin is None or not isinstance(usd, dict) or (price := positive(usd.get("PRICE"))) is None:
                continue
            quotes.append(Quote(id=coin.id, symbol=coin.symbol, name=coin.name, price=price,
                                volume_24h=positive(usd.get("TOTALVOLUME24HTO")),
                                market_cap=positive(usd.get("MKTCAP")),
                                change_24h=number(usd.get("CHANGEPCT24HOUR"))))
        if not quotes:
            raise AnswerError("cryptocompare priced none of the coins we follow")
        quotes = _by_table_order(quotes)
        quotes.sort(key=lambda q: -(q.market_cap or 0))  # stable: coins without a cap keep the table's order
        return MarketSnapshot(tuple(quotes[:limit]), "24h")
