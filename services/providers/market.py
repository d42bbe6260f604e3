"""Market data providers: prices, 24 h volumes, market caps and changes, normalised to :class:`MarketSnapshot`.

Each provider declares itself with class attributes; ``fetch_quotes`` makes its requests through the fetcher and
hands the raw answer to a pure ``normalize_*`` classmethod, which is what the tests exercise with recorded bodies.
Values a provider does not give are left out, never filled with zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from services.fetch import AnswerError, Fetcher, Provider, Rate
from services.providers.coins import BY_KRAKEN, from_paprika


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


def _num(value: Any) -> float | None:
    """A provider's number (JSON number or numeric string) as float; None when absent or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


def _positive(value: Any) -> float | None:
    """Market caps and volumes of 0 mean "unknown" at these providers: leave them out."""
    number = _num(value)
    return number if number is not None and number > 0 else None


def _require_list(raw: Any, what: str) -> list[Any]:
    if not isinstance(raw, list):
        raise AnswerError(f"expected a list of {what}, got {type(raw).__name__}: {str(raw)[:120]}")
    return raw


class MarketProvider(Provider):
    category = "market"

    async def fetch_quotes(self, fetcher: Fetcher, limit: int, max_wait: float) -> MarketSnapshot:
        raise NotImplementedError


class CoinGecko(MarketProvider):
    id = "coingecko"
    name = "CoinGecko"
    base_url = "https://api.coingecko.com/api/v3"
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
        for item in _require_list(raw, "coins"):
            price = _num(item.get("current_price"))
            if price is None or not item.get("id"):
                continue
            rank = item.get("market_cap_rank")
            quotes.append(Quote(
                id=str(item["id"]), symbol=str(item.get("symbol", "")).upper(), name=str(item.get("name", "")),
                price=price, rank=int(rank) if isinstance(rank, int) else None,
                volume_24h=_positive(item.get("total_volume")), market_cap=_positive(item.get("market_cap")),
                change_24h=_num(item.get("price_change_percentage_24h"))))
        if not quotes:
            raise AnswerError("coingecko returned no priced coins")
        return MarketSnapshot(tuple(quotes[:limit]), "24h")


class CoinPaprika(MarketProvider):
    id = "coinpaprika"
    name = "CoinPaprika"
    base_url = "https://api.coinpaprika.com/v1"
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
        for item in _require_list(raw, "tickers"):
            usd = (item.get("quotes") or {}).get("USD") or {}
            price = _num(usd.get("price"))
            rank = item.get("rank")
            if price is None or not isinstance(rank, int) or rank <= 0 or not item.get("id"):
                continue
            symbol = str(item.get("symbol", ""))
            ranked.append(Quote(
                id=from_paprika(str(item["id"]), symbol), symbol=symbol.upper(), name=str(item.get("name", "")),
                price=price, rank=rank, volume_24h=_positive(usd.get("volume_24h")),
                market_cap=_positive(usd.get("market_cap")), change_24h=_num(usd.get("percent_change_24h"))))
        if not ranked:
            raise AnswerError("coinpaprika returned no ranked coins")
        ranked.sort(key=lambda q: q.rank or 0)
        return MarketSnapshot(tuple(ranked[:limit]), "24h")


class Kraken(MarketProvider):
    id = "kraken"
    name = "Kraken"
    base_url = "https://api.kraken.com/0/public"
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
            price = _num(ticker["c"][0])
            if price is None:
                continue
            volume, vwap, opening = _num(ticker["v"][1]), _num(ticker["p"][1]), _num(ticker.get("o"))
            quotes.append(Quote(
                id=coin.id, symbol=coin.symbol, name=coin.name, price=price,
                volume_24h=volume * vwap if volume is not None and vwap is not None else None,
                change_24h=(price - opening) / opening * 100 if opening else None))
        if not quotes:
            raise AnswerError("kraken listed none of the USD pairs we follow")
        quotes.sort(key=lambda q: -(q.volume_24h or 0))
        return MarketSnapshot(tuple(quotes[:limit]), "utc_day")

