"""market_data: the top coins by market cap from the market pool, in the spec's shape (ids are CoinGecko's).

Beside the prices, each payload carries the whole-market figures (pool ``market_global``: CoinGecko, then
CoinPaprika) and the trending coins (pool ``market_trending``: CoinGecko) once they are known. Those change
slowly and share CoinGecko's small keyless budget with the prices, so each is a
:class:`~services.cadence.PacedSection` with its own cadence: fetched every few minutes, at most one of them per run
and only after the prices, and shown with its own ``fetched_at`` until a newer one arrives. Before the first
answer they are absent, never zeros.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

from models.messages import iso, now_iso
from models.payloads import CoinInfo, GlobalMarket, MarketDataPayload, TrendingCoin
from services.base import BuildContext, Service, Tracker
from services.cadence import Cadence, PacedSection
from sources.fetcher import Fetcher
from sources.limits import Clock
from sources.pools import Pool, PoolResult
from sources.providers.market import (
    Binance,
    Coinbase,
    CoinCap,
    CoinGecko,
    CoinPaprika,
    CryptoCompare,
    GlobalMarketProvider,
    Kraken,
    MarketProvider,
    MarketSnapshot,
)

#: Seconds between refreshes of the global figures and of the trending list (times INTERVAL_SCALE).
SLOW_INTERVAL = 300.0


class MarketDataService(Service):
    name = "market_data"

    def __init__(self, pool: Pool[MarketProvider], fetcher: Fetcher, *, limit: int, interval: float,
                 data_source: Literal["live", "replay"], global_pool: Pool[GlobalMarketProvider] | None = None,
                 trending_pool: Pool[CoinGecko] | None = None, slow_interval: float = SLOW_INTERVAL,
                 clock: Clock = time.monotonic) -> None:
        self.pool = pool
        self.fetcher = fetcher
        self.limit = limit
        # Wait up to one interval for the preferred provider's budget before passing to the next one.
        self.max_wait = interval
        self.tracker: Tracker[PoolResult[MarketSnapshot]] = Tracker(data_source)
        self.clock = clock
        # The slow calls come right after the prices took a CoinGecko token: allow them two intervals to get the
        # next one (7.5 s keyless) rather than spend CoinPaprika's smaller budget.
        slow_wait = 2 * interval
        retry = slow_interval / 5
        self.global_market: PacedSection[GlobalMarket] | None = None
        self.trending: PacedSection[tuple[TrendingCoin, ...]] | None = None
        if global_pool is not None:
            self.global_market = PacedSection(global_pool, lambda p: p.fetch_global(fetcher, slow_wait),
                                              Cadence(slow_interval, retry=retry, clock=clock),
                                              data_source=data_source)
        if trending_pool is not None:
            self.trending = PacedSection(trending_pool, lambda p: p.fetch_trending(fetcher, slow_wait),
                                         Cadence(slow_interval, retry=retry, clock=clock), data_source=data_source)

    async def collect(self) -> Mapping[str, Any]:
        result = await self.pool.fetch(lambda p: p.fetch_quotes(self.fetcher, self.limit, self.max_wait))
        await self._refresh_slow_section()
        shown, freshness = self.tracker.observe(result)
        # data.timestamp: when the values shown were fetched (now, when there are none)
        payload = MarketDataPayload(timestamp=freshness.fetched_at or now_iso(), **freshness.fields())
        if shown is not None and shown.value is not None:
            snapshot = shown.value
            payload.source = shown.source
            payload.price_change_window = snapshot.change_window
            payload.quote_currency = snapshot.quote_currency
            for q in snapshot.quotes:
                payload.prices[q.id] = q.price
                if q.volume_24h is not None:
                    payload.volumes[q.id] = q.volume_24h
                if q.market_cap is not None:
                    payload.market_caps[q.id] = q.market_cap
                if q.change_24h is not None:
                    payload.price_changes[q.id] = round(q.change_24h, 4)
                payload.coins.append(CoinInfo(id=q.id, symbol=q.symbol, name=q.name, rank=q.rank))
        self._add_slow_sections(payload)
        return payload.model_dump(mode="json")

    async def _refresh_slow_section(self) -> None:
        """Refresh the most overdue slow section, if any: one extra call per run at most, so the prices' next
        run still finds its provider's budget."""
        due = [s for s in (self.global_market, self.trending) if s is not None and s.due()]
        if due:
            await min(due, key=lambda s: s.next_due).refresh()

    def _add_slow_sections(self, payload: MarketDataPayload) -> None:
        if self.global_market and (known := self.global_market.latest) and known.value and known.source:
            payload.global_market = known.value.model_copy(update={
                "source": known.source, "fetched_at": iso(known.fetched_at) or now_iso()})
        if self.trending and (trends := self.trending.latest) and trends.value:
            payload.trending = list(trends.value)
            payload.trending_fetched_at = iso(trends.fetched_at)


def build(ctx: BuildContext) -> list[Service]:
    gecko, paprika = ctx.provider(CoinGecko), ctx.provider(CoinPaprika)
    # Keyless sources first; the exchanges know no market caps; the keyed ones spend prepaid credits, so last.
    pool = ctx.pool("market_data", [gecko, paprika, ctx.provider(Kraken), ctx.provider(Coinbase),
                                    ctx.provider(Binance), ctx.provider(CoinCap), ctx.provider(CryptoCompare)])
    global_pool = ctx.pool("market_global", [gecko, paprika])
    trending_pool = ctx.pool("market_trending", [gecko])
    return [MarketDataService(pool, ctx.fetcher, limit=ctx.settings.market_coins,
                              interval=ctx.intervals["market_data"], data_source=ctx.data_source,
                              global_pool=global_pool, trending_pool=trending_pool,
                              slow_interval=SLOW_INTERVAL * ctx.settings.interval_scale)]
