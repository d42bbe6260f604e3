"""Price series for the dashboard's chart: read from the history store once per coin, then extended in memory
from each new market update, so a page refresh every few seconds never re-reads the database.

Each point keeps the quote currency and the provider of its price (None where its update did not say), read as
:func:`storage.history.coin_quote` reads them; the store is the current mode's history only."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from models.states import DataStatus
from storage.history import coin_quote

log = logging.getLogger(__name__)


class SeriesStore(Protocol):
    async def coin_series(self, coin: str, since: float | None, until: float | None,
                          limit: int) -> dict[str, list[Any]]: ...


@dataclass
class Series:
    timestamps: deque[str]
    prices: deque[float]
    sources: deque[str | None]
    currencies: deque[str | None]  # each price's quote currency
    loaded_from_store: int = 0
    last_error: str | None = None
    #: The market update (its ``timestamp``) last folded in, so the same one is never added twice.
    seen: set[str] = field(default_factory=set)


class PriceHistory:
    """The last ``points`` prices of each coin viewed (at most ``coins`` coins kept), oldest first."""

    def __init__(self, store: SeriesStore | None, points: int = 720, coins: int = 16) -> None:
        self.store = store
        self.points = points
        self.coins = coins
        self._series: OrderedDict[str, Series] = OrderedDict()
        self._loading: dict[str, asyncio.Future[Series]] = {}

    async def series(self, coin: str, market: Mapping[str, Any] | None) -> Series:
        """``coin``'s series, with ``market`` (the latest market payload) folded in when it is new."""
        series = self._series.get(coin)
        if series is None:
            series = await self._load(coin)
        self._series.move_to_end(coin)
        self.fold(series, coin, market)
        return series

    def fold(self, series: Series, coin: str, market: Mapping[str, Any] | None) -> None:
        # A stale update repeats values already shown, under the timestamp they were fetched at.
        if not market or market.get("status") not in (DataStatus.OK, None):
            return
        when, value = market.get("timestamp"), (market.get("prices") or {}).get(coin)
        if not isinstance(when, str) or not isinstance(value, int | float) or when in series.seen:
            return
        if series.timestamps and when < series.timestamps[-1]:
            return
        currency, source = coin_quote(market, coin)
        series.timestamps.append(when)
        series.prices.append(float(value))
        series.sources.append(source)
        series.currencies.append(currency)
        series.seen.add(when)
        if len(series.seen) > 2 * self.points:  # keep the set as small as the window
            series.seen = set(series.timestamps)

    async def _load(self, coin: str) -> Series:
        pending = self._loading.get(coin)
        if pending is not None:  # another page asked for the same coin a moment ago
            return await asyncio.shield(pending)
        future: asyncio.Future[Series] = asyncio.get_running_loop().create_future()
        self._loading[coin] = future
        try:
            series = Series(deque(maxlen=self.points), deque(maxlen=self.points), deque(maxlen=self.points),
                            deque(maxlen=self.points))
            if self.store is not None:
                try:
                    stored = await self.store.coin_series(coin, None, None, self.points)
                except Exception as error:  # the chart then starts from the updates seen from now on
                    log.warning("price history of %s could not be read: %s", coin, error)
                    series.last_error = f"{type(error).__name__}: {error}"
                else:
                    stamps, prices = stored.get("timestamps", []), stored.get("prices", [])
                    sources = stored.get("sources") or [None] * len(stamps)
                    currencies = stored.get("quote_currencies") or [None] * len(stamps)  # never guessed
                    for when, value, source, currency in zip(stamps, prices, sources, currencies, strict=False):
                        if isinstance(when, str) and isinstance(value, int | float) and when not in series.seen:
                            series.timestamps.append(when)
                            series.prices.append(float(value))
                            series.sources.append(source)
                            series.currencies.append(currency)
                            series.seen.add(when)
                    series.loaded_from_store = len(series.timestamps)
            self._series[coin] = series
            while len(self._series) > self.coins:
                self._series.popitem(last=False)
            future.set_result(series)
            return series
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: nobody else need be waiting
            raise
        finally:
            del self._loading[coin]
