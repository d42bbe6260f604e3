"""market_data: the top coins by market cap from the market pool, in the spec's shape (ids are CoinGecko's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from models.messages import now_iso
from models.payloads import CoinInfo, MarketDataPayload
from services.base import Service, Tracker
from services.fetch import Fetcher
from services.pools import Pool, PoolResult
from services.providers.market import MarketProvider, MarketSnapshot

if TYPE_CHECKING:
    from services.registry import BuildContext


class MarketDataService(Service):
    name = "market_data"

    def __init__(self, pool: Pool[MarketProvider], fetcher: Fetcher, *, limit: int, interval: float,
                 data_source: Literal["live", "replay"]) -> None:
        self.pool = pool
        self.fetcher = fetcher
        self.limit = limit
        # Wait up to one interval for the preferred provider's budget before passing to the next one.
        self.max_wait = interval
        self.tracker: Tracker[PoolResult[MarketSnapshot]] = Tracker(data_source)

    async def collect(self) -> Mapping[str, Any]:
        result = await self.pool.fetch(lambda p: p.fetch_quotes(self.fetcher, self.limit, self.max_wait))
        shown, freshness = self.tracker.observe(result)
        # data.timestamp: when the values shown were fetched (now, when there are none)
        payload = MarketDataPayload(timestamp=freshness.get("fetched_at") or now_iso(), **freshness)
        if shown is not None and shown.value is not None:
            snapshot = shown.value
            payload.source = shown.source
            payload.price_change_window = snapshot.change_window
            for q in snapshot.quotes:
                payload.prices[q.id] = q.price
                if q.volume_24h is not None:
                    payload.volumes[q.id] = q.volume_24h
                if q.market_cap is not None:
                    payload.market_caps[q.id] = q.market_cap
                if q.change_24h is not None:
                    payload.price_changes[q.id] = round(q.change_24h, 4)
                payload.coins.append(CoinInfo(id=q.id, symbol=q.symbol, name=q.name, rank=q.rank))
        return payload.model_dump(mode="json")


def build(ctx: BuildContext) -> list[Service]:
    from services.providers.market import CoinGecko, CoinPaprika, Kraken

    pool = ctx.pool("market_data", [ctx.provider(CoinGecko), ctx.provider(CoinPaprika), ctx.provider(Kraken)])
    return [MarketDataService(pool, ctx.fetcher, limit=ctx.settings.market_coins,
                              interval=ctx.intervals["market_data"], data_source=ctx.settings.data_source)]
