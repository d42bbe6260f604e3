"""market_data's payload: prices (the spec's dicts), each coin with its currency, source, time and cross-check,
the whole-market figures and trending coins."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from models.freshness import Freshness
from models.states import DataStatus, PriceState


class SourcePrice(BaseModel):
    """Another provider's price of a coin, as the cross-check compared it with the primary one."""

    source: str
    price: float
    quote_currency: Literal["USD", "USDT"]
    time: str | None = None  # the provider's own time of the price; None where it gives none (Kraken, Coinbase)
    fetched_at: str | None = None
    agrees: bool  # within the threshold of the median


class PriceCheck(BaseModel):
    """A coin's price cross-checked against the other providers that priced it at the same moment."""

    state: PriceState
    median: float  # of every source's price, the primary's included
    spread_pct: float  # (highest - lowest) / median, in percent; 0 with one source
    quorum: int  # sources whose price is within the threshold of the median (the primary's included)
    sources: int  # sources that priced the coin
    others: list[SourcePrice] = Field(default_factory=list)
    #: A USD stablecoin more than 1% off $1 (either way), said by more than one thin source.
    depeg: bool = False
    note: str | None = None  # why a coin is unconfirmed or a de-peg is not flagged


class CoinInfo(BaseModel):
    id: str
    symbol: str
    name: str
    rank: int | None = None
    #: The coin's price as ``prices`` has it, with what it is counted in, who gave it and the provider's own time
    #: of it (None where the provider gives none).
    price: float | None = None
    quote_currency: Literal["USD", "USDT"] | None = None
    source: str | None = None
    time: str | None = None
    check: PriceCheck | None = None  # None until a cross-check has run


class PriceAlert(BaseModel):
    """A price the cross-check does not trust: the sources spread over the threshold, or a stablecoin de-pegged."""

    kind: Literal["spread", "depeg"]
    coin: str  # coin id
    symbol: str
    message: str
    median: float
    spread_pct: float


class CheckSource(Freshness):
    """One cross-checking provider's latest answer: its freshness, and what it priced."""

    source: str
    coins: int = 0  # coins of the table it priced
    compared: bool = False  # False when its answer is not of the moment of the prices shown (or not there)


class PriceConsensus(BaseModel):
    """The cross-check of the prices shown against other providers: each coin's verdict is in ``coins[].check``."""

    threshold_pct: float  # a spread over this (percent of the median) is an alert
    checked_at: str | None = None  # when the newest cross-check answer was fetched
    sources: list[CheckSource] = Field(default_factory=list)
    confirmed: int = 0
    disputed: int = 0
    unconfirmed: int = 0
    alerts: list[PriceAlert] = Field(default_factory=list)


class GlobalMarket(BaseModel):
    """Whole-market figures (CoinGecko or CoinPaprika ``/global``), fetched on their own, slower schedule."""

    total_market_cap_usd: float | None = None
    total_volume_usd: float | None = None
    btc_dominance: float | None = None  # percent
    eth_dominance: float | None = None
    market_cap_change_24h: float | None = None  # percent
    active_cryptocurrencies: int | None = None
    updated_at: str | None = None  # the provider's own time of the figures
    #: Set by market_data from the pool's answer; a provider's normaliser leaves them out.
    source: str | None = None
    fetched_at: str | None = None
    status: DataStatus | None = None  # ok, or stale (past max_age_seconds, or its providers failing)
    age_seconds: float | None = None
    max_age_seconds: float | None = None
    recorded_at: str | None = None  # replay only: when the answer was captured


class TrendingCoin(BaseModel):
    id: str
    symbol: str
    name: str
    market_cap_rank: int | None = None
    score: int | None = None  # position in the provider's trending list, 0 first


class MarketDataPayload(Freshness):
    prices: dict[str, float] = Field(default_factory=dict)
    volumes: dict[str, float] = Field(default_factory=dict)
    market_caps: dict[str, float] = Field(default_factory=dict)
    price_changes: dict[str, float] = Field(default_factory=dict)
    source: str | None = None
    timestamp: str
    #: ``24h`` (rolling) or ``utc_day`` (since 00:00 UTC, what Kraken's ``o`` gives)
    price_change_window: Literal["24h", "utc_day"] | None = None
    coins: list[CoinInfo] = Field(default_factory=list)
    #: What prices and volumes are counted in: ``USDT`` when they come from Binance's USDT pairs (not converted)
    quote_currency: Literal["USD", "USDT"] | None = None
    global_market: GlobalMarket | None = None
    trending: list[TrendingCoin] = Field(default_factory=list)
    trending_fetched_at: str | None = None  # trending has its own, slower schedule
    trending_status: DataStatus | None = None  # and its own maximum age
    trending_age_seconds: float | None = None
    trending_recorded_at: str | None = None  # replay only
    #: The prices cross-checked against other providers; None before the first check answered.
    consensus: PriceConsensus | None = None
