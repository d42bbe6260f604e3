"""The ports through which one stream reads another: typed views of the hub's latest updates.

Streams never reach into one another's objects; a stream that needs another's figures gets a port built on the
latest update that stream published (the same bytes every client got), so renaming a field inside a stream
cannot silently break another, and a restored snapshot or a stale update is read with its own time and status.

- :func:`hub_prices`: market_data's USD prices by symbol (and who gave them, and when), for valuing whale
  transfers.
- :class:`HubHeadlines`: the headlines news published and how current they are, for the sentiment stream.
- :func:`hub_price_alerts`: the prices market_data's cross-check does not trust, for health_checker's events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from models.market import MarketDataPayload, PriceAlert
from models.messages import LatestUpdates, epoch
from models.news import Article, NewsPayload
from models.states import DataStatus
from sources.limits import Clock

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

#: An older market price is no price: valuing at it would mislead.
PRICE_MAX_AGE = 3600.0
#: The symbols whale_tracking values, by market_data's (CoinGecko) coin ids.
COIN_IDS: Mapping[str, str] = {"BTC": "bitcoin", "ETH": "ethereum"}
#: The USD stablecoins whale_tracking reads ERC-20 transfers of, valued at market_data's price where it has one.
STABLECOIN_IDS: Mapping[str, str] = {"USDT": "tether", "USDC": "usd-coin"}


def read_latest(latest: LatestUpdates, service: str, model: type[M]) -> M | None:
    """The latest update of ``service`` as its payload model; None when there is none or it does not read as one
    (a snapshot stored by an older version, say)."""
    update = latest.latest(service)
    if update is None:
        return None
    try:
        return model.model_validate(update.data)
    except ValidationError as exc:
        log.warning("the latest %s update does not read as %s: %s", service, model.__name__, exc)
        return None


@dataclass(frozen=True)
class Prices:
    """USD prices by symbol (``BTC``, ``ETH``, and ``USDT``/``USDC`` where market_data has them), when they were
    fetched and who gave them."""

    usd: dict[str, float] = field(default_factory=dict)
    fetched_at: float | None = None
    #: "USDT" when market_data's answer came from an exchange quoting in Tether, taken as the dollar's proxy.
    currency: str = "USD"
    #: The market provider that gave the prices (market_data's ``source``), e.g. "coingecko".
    source: str | None = None
    #: The market provider's own time of the prices (market_data's ``data_time``), where it gives one.
    data_time: float | None = None
    #: Replay only: when market_data's recording was captured.
    recorded_at: float | None = None


PriceSource = Callable[[], Prices]


def hub_prices(latest: LatestUpdates, *, max_age: float = PRICE_MAX_AGE, clock: Clock = time.time) -> PriceSource:
    """Prices from market_data's latest update (fresh or stale, as long as they are recent); none otherwise."""
    def read() -> Prices:
        market = read_latest(latest, "market_data", MarketDataPayload)
        if market is None or market.status is DataStatus.NO_DATA:
            return Prices()
        fetched_at = epoch(market.fetched_at)
        if fetched_at is None or clock() - fetched_at > max_age:
            return Prices()
        usd = {symbol: price for symbol, coin_id in {**COIN_IDS, **STABLECOIN_IDS}.items()
               if (price := market.prices.get(coin_id)) is not None and price > 0}
        return Prices(usd, fetched_at, market.quote_currency or "USD", source=market.source,
                      data_time=epoch(market.data_time), recorded_at=epoch(market.recorded_at))
    return read


class HeadlineSource(Protocol):
    def latest_articles(self) -> list[Article]: ...

    def headlines_fetched(self) -> tuple[float | None, float | None]:
        """When a feed last answered, and since when every feed fails (None while some answer)."""


class HubHeadlines:
    """The headlines of news's latest update, and how current they are."""

    def __init__(self, latest: LatestUpdates) -> None:
        self._latest = latest

    def _news(self) -> NewsPayload | None:
        return read_latest(self._latest, "news", NewsPayload)

    def latest_articles(self) -> list[Article]:
        news = self._news()
        return news.articles if news is not None else []

    def headlines_fetched(self) -> tuple[float | None, float | None]:
        news = self._news()
        if news is None:
            return None, None
        failing_since = epoch(news.stale_since) if news.status is not DataStatus.OK else None
        return epoch(news.fetched_at), failing_since


@dataclass(frozen=True)
class PriceAlerts:
    """The alerts of market_data's latest cross-check (a spread over the threshold, a de-peg), and the time of the
    update that carries them."""

    alerts: tuple[PriceAlert, ...] = ()
    at: str | None = None


def hub_price_alerts(latest: LatestUpdates, *, max_age: float = PRICE_MAX_AGE,
                     clock: Clock = time.time) -> Callable[[], PriceAlerts]:
    """The alerts of market_data's latest update, as long as its prices are recent; none otherwise."""
    def read() -> PriceAlerts:
        market = read_latest(latest, "market_data", MarketDataPayload)
        if market is None or market.consensus is None:
            return PriceAlerts()
        fetched_at = epoch(market.fetched_at)
        if fetched_at is None or clock() - fetched_at > max_age:
            return PriceAlerts()
        return PriceAlerts(tuple(market.consensus.alerts), market.timestamp)
    return read
