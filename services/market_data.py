"""market_data: the top coins by market cap from the market pool, in the spec's shape (ids are CoinGecko's).

Every coin says what its price is counted in, who gave it and the provider's own time of it (``coins[]``); the
stream's age counts from the median of those times (:meth:`~sources.providers.market.MarketSnapshot.data_time`),
so quotes served fresh but minutes old are stale past :data:`QUOTES_MAX_AGE`.

Beside the prices, each payload carries the whole-market figures (pool ``market_global``: CoinGecko, then
CoinPaprika) and the trending coins (pool ``market_trending``: CoinGecko) once they are known. Those change
slowly and share CoinGecko's small keyless budget with the prices, so each is a
:class:`~services.cadence.PacedSection` with its own cadence and maximum age: fetched every few minutes, at most
one of them per run and only after the prices, and shown with their own time and status (stale past an hour, or
while their providers fail) until a newer one arrives. Before the first answer they are absent, never zeros.

The prices are cross-checked (:mod:`services.consensus`) against other providers, each asked in one batched call
on its own, slower cadence (:data:`CHECK_EVERY`: CoinPaprika's whole ticker list within its monthly allowance,
the exchanges for the majors), never the provider whose prices are shown; a check that failed is due again on
the next run (see :func:`check_section`). Every update carries each coin's verdict and the latest answer of every
checking provider with its time and age (``consensus``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from models.freshness import Freshness
from models.market import CheckSource, CoinInfo, GlobalMarket, MarketDataPayload, PriceConsensus, TrendingCoin
from models.messages import epoch, iso, now_iso
from models.states import PriceState
from services.base import BuildContext, Service, Tracker
from services.cadence import Cadence, PacedSection
from services.consensus import Answer, Verdicts, cross_check
from sources.fetcher import Fetcher
from sources.limits import Clock
from sources.pools import Pool, PoolResult
from sources.providers.exchanges import Binance, Coinbase, Kraken
from sources.providers.market import (
    CoinCap,
    CoinGecko,
    CoinPaprika,
    CryptoCompare,
    GlobalMarketProvider,
    MarketProvider,
    MarketSnapshot,
)

#: Seconds between refreshes of the global figures and of the trending list (times INTERVAL_SCALE).
SLOW_INTERVAL = 300.0
#: Quotes older than this (by their provider's own time) are shown as stale.
QUOTES_MAX_AGE = 600.0
#: Whole-market figures and the trending list change slowly: an hour old, they are stale.
SLOW_MAX_AGE = 3600.0
#: Seconds between the cross-checks of each checking provider (times INTERVAL_SCALE). CoinPaprika's free plan
#: allows about 27 calls an hour, shared with its other uses: 12 go to the check. The exchanges answer in one call.
CHECK_EVERY: Mapping[str, float] = {"coinpaprika": 300.0, "kraken": 60.0, "coinbase": 60.0}
#: Two prices whose times are further apart than this are not of the same moment: neither checks the other.
CHECK_MAX_SKEW = QUOTES_MAX_AGE
#: Coins a check asks for: all a batched answer holds, so a coin ranked lower there than here is still checked.
CHECK_LIMIT = 250

Snapshot = PoolResult[MarketSnapshot]


def snapshot_time(result: Snapshot) -> float | None:
    return result.value.data_time() if result.value is not None else None


def global_time(result: PoolResult[GlobalMarket]) -> float | None:
    return epoch(result.value.updated_at) if result.value is not None else None


def moment(result: Snapshot) -> float:
    """The moment an answer stands for: its provider's time, else when it was captured (replay) or fetched."""
    return snapshot_time(result) or result.recorded_at or result.fetched_at or 0.0


class MarketDataService(Service):
    name = "market_data"

    def __init__(self, pool: Pool[MarketProvider], fetcher: Fetcher, *, limit: int, interval: float,
                 data_source: Literal["live", "replay"], global_pool: Pool[GlobalMarketProvider] | None = None,
                 trending_pool: Pool[CoinGecko] | None = None, slow_interval: float = SLOW_INTERVAL,
                 checks: Sequence[PacedSection[MarketSnapshot]] = (), spread_threshold: float = 0.02,
                 clock: Clock = time.monotonic) -> None:
        """``checks``: the cross-checking providers, one single-provider section each (see :func:`check_section`)."""
        self.pool = pool
        self.fetcher = fetcher
        self.limit = limit
        # Wait up to one interval for the preferred provider's budget before passing to the next one.
        self.max_wait = interval
        self.tracker: Tracker[Snapshot] = Tracker(data_source, max_age=QUOTES_MAX_AGE, data_time=snapshot_time)
        self.clock = clock
        self.checks = list(checks)
        self.spread_threshold = spread_threshold
        # The slow calls come right after the prices took a CoinGecko token: allow them two intervals to get the
        # next one (7.5 s keyless) rather than spend CoinPaprika's smaller budget.
        slow_wait = 2 * interval
        retry = slow_interval / 5
        self.global_market: PacedSection[GlobalMarket] | None = None
        self.trending: PacedSection[tuple[TrendingCoin, ...]] | None = None
        if global_pool is not None:
            self.global_market = PacedSection(global_pool, lambda p: p.fetch_global(fetcher, slow_wait),
                                              Cadence(slow_interval, retry=retry, clock=clock),
                                              data_source=data_source, max_age=SLOW_MAX_AGE, data_time=global_time)
        if trending_pool is not None:
            self.trending = PacedSection(trending_pool, lambda p: p.fetch_trending(fetcher, slow_wait),
                                         Cadence(slow_interval, retry=retry, clock=clock), data_source=data_source,
                                         max_age=SLOW_MAX_AGE)

    async def collect(self) -> Mapping[str, Any]:
        result = await self.pool.fetch(lambda p: p.fetch_quotes(self.fetcher, self.limit, self.max_wait))
        await self._refresh_slow_section()
        shown, freshness = self.tracker.observe(result)
        await self._refresh_checks(shown.source if shown is not None else None)
        # data.timestamp: when the values shown were fetched (now, when there are none)
        payload = MarketDataPayload(timestamp=freshness.fetched_at or now_iso(), **freshness.fields())
        if shown is not None and shown.value is not None:
            verdicts = self._cross_check(shown) if self.checks else None
            self._add_quotes(payload, shown, verdicts)
            if verdicts is not None:
                payload.consensus = self._consensus(verdicts)
        self._add_slow_sections(payload)
        return payload.model_dump(mode="json")

    def _add_quotes(self, payload: MarketDataPayload, shown: Snapshot, verdicts: Verdicts | None) -> None:
        snapshot = shown.value
        assert snapshot is not None
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
            payload.coins.append(CoinInfo(
                id=q.id, symbol=q.symbol, name=q.name, rank=q.rank, price=q.price,
                quote_currency=snapshot.quote_currency, source=shown.source, time=iso(q.time),
                check=verdicts.checks.get(q.id) if verdicts is not None else None))

    # -- the cross-check ------------------------------------------------------------------------------------

    async def _refresh_checks(self, primary: str | None) -> None:
        """Ask the checking providers that are due, at once (each is its own provider, with its own budget), so a
        slow one delays the update by its own time only; never the provider whose prices are shown, which cannot
        check itself."""
        await asyncio.gather(*(section.refresh() for section in self.checks
                               if section.due() and _provider_of(section) != primary))

    def _cross_check(self, shown: Snapshot) -> Verdicts:
        assert shown.value is not None and shown.source is not None
        primary = Answer(shown.source, shown.value, moment(shown), shown.fetched_at)
        answers = [Answer(result.source, result.value, moment(result), result.fetched_at)
                   for section in self.checks
                   if (result := section.latest) is not None and result.value is not None and result.source]
        return cross_check(primary, answers, threshold=self.spread_threshold, max_skew=CHECK_MAX_SKEW)

    def _consensus(self, verdicts: Verdicts) -> PriceConsensus:
        sources = []
        for section in self.checks:
            result, freshness = section.tracker.view()
            value = result.value if result is not None else None
            sources.append(CheckSource(source=_provider_of(section), coins=len(value.quotes) if value else 0,
                                       compared=_provider_of(section) in verdicts.compared, **freshness.fields()))
        fetched = [t for s in sources if (t := epoch(s.fetched_at)) is not None]
        return PriceConsensus(
            threshold_pct=round(self.spread_threshold * 100, 4), checked_at=iso(max(fetched, default=None)),
            sources=sources, confirmed=verdicts.count(PriceState.CONFIRMED),
            disputed=verdicts.count(PriceState.DISPUTED), unconfirmed=verdicts.count(PriceState.UNCONFIRMED),
            alerts=verdicts.alerts)

    # -- the slow sections ----------------------------------------------------------------------------------

    async def _refresh_slow_section(self) -> None:
        """Refresh the most overdue slow section, if any: one extra call per run at most, so the prices' next
        run still finds its provider's budget."""
        due = [s for s in (self.global_market, self.trending) if s is not None and s.due()]
        if due:
            await min(due, key=lambda s: s.next_due).refresh()

    def _add_slow_sections(self, payload: MarketDataPayload) -> None:
        if self.global_market is not None:
            known, freshness = self.global_market.tracker.view()
            if known is not None and known.value is not None and known.source:
                payload.global_market = known.value.model_copy(update={
                    "source": known.source, "fetched_at": iso(known.fetched_at) or now_iso(),
                    **_section_fields(freshness)})
        if self.trending is not None:
            trends, freshness = self.trending.tracker.view()
            if trends is not None and trends.value:
                payload.trending = list(trends.value)
                payload.trending_fetched_at = iso(trends.fetched_at)
                payload.trending_status = freshness.status
                payload.trending_age_seconds = freshness.age_seconds
                payload.trending_recorded_at = freshness.recorded_at


def _section_fields(freshness: Freshness) -> dict[str, Any]:
    return {"status": freshness.status, "age_seconds": freshness.age_seconds,
            "max_age_seconds": freshness.max_age_seconds, "recorded_at": freshness.recorded_at}


def _provider_of(section: PacedSection[MarketSnapshot]) -> str:
    return section.pool.providers[0].id


def check_section(provider: MarketProvider, fetcher: Fetcher, *, every: float, data_source: Literal["live", "replay"],
                  clock: Clock = time.monotonic) -> PacedSection[MarketSnapshot]:
    """One cross-checking provider: its ``fetch_quotes`` (one batched call) on its own cadence, never waiting for
    budget, with the quotes' maximum age.

    A check that failed (or found no budget) is due again on the next run: a provider that is back is checked
    again within two runs, as a monitor's user expects, and a dead one is not hammered for it, since the
    provider's own limits gate every call: behind its open breaker an attempt costs nothing, and its pool (of
    this one provider) gives it a trial in each run after it opened, of one request, only when our budget allows
    (CoinPaprika's keeps its check to one trial every couple of minutes while it is down)."""
    pool: Pool[MarketProvider] = Pool(f"market_check_{provider.id}", [provider], fetcher)
    cadence = Cadence(every, retry=0.0, clock=clock)
    return PacedSection(pool, lambda p: p.fetch_quotes(fetcher, CHECK_LIMIT, 0.0), cadence,
                        data_source=data_source, max_age=QUOTES_MAX_AGE, data_time=snapshot_time)


def build(ctx: BuildContext) -> list[Service]:
    gecko, paprika = ctx.provider(CoinGecko), ctx.provider(CoinPaprika)
    kraken, coinbase = ctx.provider(Kraken), ctx.provider(Coinbase)
    # Keyless sources first; the exchanges know no market caps; the keyed ones spend prepaid credits, so last.
    pool = ctx.pool("market_data", [gecko, paprika, kraken, coinbase, ctx.provider(Binance), ctx.provider(CoinCap),
                                    ctx.provider(CryptoCompare)], every=ctx.intervals["market_data"])
    global_pool = ctx.pool("market_global", [gecko, paprika])
    trending_pool = ctx.pool("market_trending", [gecko])
    scale = ctx.settings.interval_scale
    checks = [check_section(provider, ctx.fetcher, every=CHECK_EVERY[provider.id] * scale,
                            data_source=ctx.data_source)
              for provider in (paprika, kraken, coinbase)]
    return [MarketDataService(pool, ctx.fetcher, limit=ctx.settings.market_coins,
                              interval=ctx.intervals["market_data"], data_source=ctx.data_source,
                              global_pool=global_pool, trending_pool=trending_pool,
                              slow_interval=SLOW_INTERVAL * scale, checks=checks,
                              spread_threshold=ctx.settings.price_spread_threshold)]
