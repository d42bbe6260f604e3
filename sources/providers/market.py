"""Market data providers: the contract every one of them honours, and the aggregators (CoinGecko, CoinPaprika,
CoinCap, CryptoCompare); the exchanges (Kraken, Coinbase, Binance) are in :mod:`sources.providers.exchanges`.

The contract: a :class:`MarketProvider` has ``fetch_quotes(fetcher, limit, max_wait)``, which makes one batched
request through the fetcher and hands the raw answer to a pure ``normalize_*`` classmethod (what the tests
exercise with recorded bodies), giving a :class:`MarketSnapshot`: quotes, the currency they are counted in, and
each quote's own time as the provider put it on the data (null where it gives none). Some also publish
whole-market figures and trending coins, normalised to the payload's own models
(:class:`~models.market.GlobalMarket`, :class:`~models.market.TrendingCoin`).
Values a provider does not give are left out, never filled with zero; a provider time before 2009-01-03 (or
a day ahead of our clock) is no time and is dropped (:func:`quote_time`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from models.market import GlobalMarket, TrendingCoin
from models.messages import iso
from sources.errors import AnswerError
from sources.fetcher import Fetcher, Provider
from sources.limits import Rate
from sources.providers.coins import BY_ID, BY_SYMBOL, COINS, TABLE_ORDER, from_paprika
from sources.providers.values import count, number, positive, provider_time, require_list, require_object


def quote_time(value: Any, *, millis: bool = False) -> float | None:
    """A provider's own time of a quote, as Unix seconds, through the one reader of provider times
    (:func:`~sources.providers.values.provider_time`: none before 2009-01-03 or a day ahead of our clock);
    ``millis`` for providers that send Unix milliseconds (Binance, CoinCap)."""
    if millis:
        moment = number(value)
        return provider_time(moment / 1000) if moment is not None else None
    return provider_time(value)


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
    #: The provider's own time of this quote (Unix seconds), where it gives one.
    time: float | None = None


@dataclass(frozen=True)
class MarketSnapshot:
    quotes: tuple[Quote, ...]
    change_window: Literal["24h", "utc_day"] = "24h"
    #: What prices and volumes are counted in. Binance trades our coins against USDT: its figures are in USDT,
    #: shown as they are (taken as the dollar's proxy, never converted), and the payload says so.
    quote_currency: Literal["USD", "USDT"] = "USD"
    #: True for an exchange: each price is one market (a pair), not an aggregate over many.
    single_market: bool = False

    def data_time(self) -> float | None:
        """The median of the quotes' own times: the time of the data as a whole, which neither one freshly
        traded coin nor one that has not moved for days can pass for. None when the provider gives no times."""
        times = [q.time for q in self.quotes if q.time is not None]
        return statistics.median(times) if times else None


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
    probe_keys = ("gecko_says",)
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
                change_24h=number(item.get("price_change_percentage_24h")),
                time=quote_time(item.get("last_updated"))))
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
        ``data.market_cap_change_percentage_24h_usd``, ``data.active_cryptocurrencies``, ``data.updated_at``
        (Unix seconds: the figures' own time)."""
        data = cls._raise_for_error(raw)["data"]
        caps = data.get("total_market_cap") or {}
        volumes = data.get("total_volume") or {}
        shares = data.get("market_cap_percentage") or {}
        return _figures(GlobalMarket(
            total_market_cap_usd=positive(caps.get("usd")), total_volume_usd=positive(volumes.get("usd")),
            btc_dominance=number(shares.get("btc")), eth_dominance=number(shares.get("eth")),
            market_cap_change_24h=number(data.get("market_cap_change_percentage_24h_usd")),
            active_cryptocurrencies=count(data.get("active_cryptocurrencies")),
            updated_at=iso(quote_time(data.get("updated_at")))), "coingecko")

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
    probe_keys = ("market_cap_usd",)
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
                market_cap=positive(usd.get("market_cap")), change_24h=number(usd.get("percent_change_24h")),
                time=quote_time(item.get("last_updated"))))
        if not ranked:
            raise AnswerError("coinpaprika returned no ranked coins")
        ranked.sort(key=lambda q: q.rank or 0)
        return MarketSnapshot(tuple(ranked[:limit]), "24h")

    async def fetch_global(self, fetcher: Fetcher, max_wait: float) -> GlobalMarket:
        return self.normalize_global(await fetcher.get_json(self, "/global", max_wait=max_wait))

    @classmethod
    def normalize_global(cls, raw: Any) -> GlobalMarket:
        """``market_cap_usd``, ``volume_24h_usd``, ``bitcoin_dominance_percentage``, ``market_cap_change_24h``
        (percent), ``cryptocurrencies_number``, ``last_updated`` (Unix seconds); no ether dominance."""
        body = require_object(raw, "coinpaprika")
        if "error" in body:
            raise AnswerError(f"coinpaprika error: {body['error']}")
        return _figures(GlobalMarket(
            total_market_cap_usd=positive(body.get("market_cap_usd")),
            total_volume_usd=positive(body.get("volume_24h_usd")),
            btc_dominance=number(body.get("bitcoin_dominance_percentage")),
            market_cap_change_24h=number(body.get("market_cap_change_24h")),
            active_cryptocurrencies=count(body.get("cryptocurrencies_number")),
            updated_at=iso(quote_time(body.get("last_updated")))), "coinpaprika")


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
    probe_keys = ("data",)
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
        ``changePercent24Hr``, ``rank``); the envelope's ``timestamp`` (Unix milliseconds) is every quote's time.
        CoinCap ids are its own (``binance-coin``): coins of our table are found by CoinGecko id or symbol, others
        keep CoinCap's id."""
        body = require_object(raw, "coincap")
        if body.get("error"):
            raise AnswerError(f"coincap error: {body['error']}")
        data = body.get("data")
        if not isinstance(data, list):  # e.g. v2's farewell: {"data": {"message": "We are deprecating ..."}}
            message = data.get("message") if isinstance(data, dict) else None
            raise AnswerError(f"coincap: expected a list of assets, got {message or type(data).__name__}")
        moment = quote_time(body.get("timestamp"), millis=True)
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
                change_24h=number(item.get("changePercent24Hr")), time=moment))
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
    probe_keys = ("USD",)
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
        ``CHANGEPCT24HOUR``, ``LASTUPDATE`` (Unix seconds). Errors come as HTTP 200 with
        ``{"Response": "Error", "Message": ...}``."""
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
                                change_24h=number(usd.get("CHANGEPCT24HOUR")),
                                time=quote_time(usd.get("LASTUPDATE"))))
        if not quotes:
            raise AnswerError("cryptocompare priced none of the coins we follow")
        quotes = _by_table_order(quotes)
        quotes.sort(key=lambda q: -(q.market_cap or 0))  # stable: coins without a cap keep the table's order
        return MarketSnapshot(tuple(quotes[:limit]), "24h")
