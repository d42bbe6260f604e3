"""whale_tracking: large transactions of the last hour, valued in USD, from keyless sources (and Whale Alert).

Every run asks each source once, at the same time: Bitcoin's pool (blockchain.info, then mempool.space), the
Ethereum nodes' pool (the newest blocks since the last run, at most two) and Whale Alert (only with its key).
Bitcoin and Ether amounts are valued at market_data's latest prices; with no price known for a chain, its
transfers are not valued (and the payload says so) rather than valued at a guess. A transfer at or above
``alert_threshold`` USD joins a rolling window, de-duplicated by chain and hash and bounded in time and size;
``whale_wallets`` and ``total_volume`` are computed over that window.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from models.freshness import Freshness, SourceState
from models.messages import iso, now_iso
from models.payloads import WhaleTrackingPayload, WhaleTransaction, WhaleWallet
from services.base import BuildContext, Service, Tracker
from services.ports import Prices, PriceSource, hub_prices
from sources.fetcher import Fetcher
from sources.limits import Clock
from sources.pools import GatherResult, Pool, PoolResult
from sources.providers.rpc import JsonRpcNode, nodes_for
from sources.providers.whales import (
    BitcoinSource,
    BlockchainInfoUnconfirmed,
    MempoolRecent,
    Transfer,
    WhaleAlert,
    fetch_eth_blocks,
)

EXPLORERS = {"bitcoin": "https://mempool.space/tx/{}", "ethereum": "https://etherscan.io/tx/{}"}
#: Which market price values which chain's native amounts (symbols of the payload's ``prices_used``).
NATIVE = {"bitcoin": "BTC", "ethereum": "ETH"}


@dataclass
class Seen:
    transfer: Transfer
    value_usd: float
    seen_at: float

    @property
    def when(self) -> float:
        return self.transfer.timestamp if self.transfer.timestamp is not None else self.seen_at


@dataclass
class WhalePools:
    bitcoin: Pool[BitcoinSource]
    ethereum: Pool[JsonRpcNode] | None
    whale_alert: Pool[WhaleAlert] | None


class WhaleTrackingService(Service):
    name = "whale_tracking"

    def __init__(self, pools: WhalePools, fetcher: Fetcher, *, threshold: float, prices: PriceSource,
                 data_source: Literal["live", "replay"], window_seconds: float = 3600.0,
                 max_transactions: int = 200, max_blocks: int = 2, top_wallets: int = 10,
                 max_wait: float = 5.0, wall: Clock = time.time) -> None:
        self.pools = pools
        self.fetcher = fetcher
        self.threshold = threshold
        self.prices = prices
        self.window_seconds = window_seconds
        self.max_transactions = max_transactions
        self.max_blocks = max_blocks
        self.top_wallets = top_wallets
        self.max_wait = max_wait
        self._wall = wall
        self.tracker: Tracker[GatherResult[list[Transfer]]] = Tracker(data_source, wall)
        self.window: dict[str, Seen] = {}
        self.last_block: int | None = None  # the newest Ethereum block already read
        self.whale_alert_since: float | None = None

    # -- one run --------------------------------------------------------------------------------------
    async def collect(self) -> Mapping[str, Any]:
        prices = self.prices()
        notes = self._price_notes(prices)
        calls = self._calls(prices)
        results = dict(zip(calls, await asyncio.gather(*calls.values()), strict=True))

        now = self._wall()
        answered: dict[str, list[Transfer]] = {}
        sources: dict[str, SourceState] = {}
        for name, result in results.items():
            sources.update(result.sources)
            if result.ok and result.value is not None:
                answered[name] = result.value
        if "whale_alert" in answered:
            self.whale_alert_since = now
        for transfers in answered.values():
            self._admit(transfers, prices, now)
        self._evict(now)

        _, freshness = self.tracker.observe(GatherResult(answered, now if answered else None, sources))
        return self._payload(freshness.with_note(*notes), prices).model_dump(mode="json", by_alias=True)

    @staticmethod
    def _price_notes(prices: Prices) -> list[str]:
        notes = [f"no recent {symbol} price from market_data: {chain} transfers are not valued"
                 for chain, symbol in NATIVE.items() if symbol not in prices.usd]
        if prices.usd and prices.currency != "USD":
            notes.append(f"valued at market_data's {prices.currency} prices, taken as dollars")
        return notes

    def _calls(self, prices: Prices) -> dict[str, Awaitable[PoolResult[Any]]]:
        """One call per source; a chain without a price is not asked (its transfers could not be valued)."""
        calls: dict[str, Awaitable[PoolResult[Any]]] = {}
        if "BTC" in prices.usd:
            calls["bitcoin"] = self.pools.bitcoin.fetch(lambda p: p.fetch_transfers(self.fetcher, self.max_wait))
        if "ETH" in prices.usd and self.pools.ethereum is not None:
            calls["ethereum"] = self.pools.ethereum.fetch(self._ethereum_transfers)
        if self.pools.whale_alert is not None:
            calls["whale_alert"] = self.pools.whale_alert.fetch(self._whale_alert_transfers)
        return calls

    async def _ethereum_transfers(self, node: JsonRpcNode) -> list[Transfer]:
        blocks = await fetch_eth_blocks(node, self.fetcher, after=self.last_block, max_blocks=self.max_blocks,
                                        max_wait=self.max_wait)
        fresh = [b for b in blocks if self.last_block is None or b.number > self.last_block]
        if fresh:
            self.last_block = max(b.number for b in fresh)
        return [t for block in fresh for t in block.transfers]

    async def _whale_alert_transfers(self, provider: WhaleAlert) -> list[Transfer]:
        # Ask only for what is new since the last answer (a minute of overlap; duplicates are dropped), and
        # never further back than the window, nor than the hour Whale Alert's plans let a query reach.
        now = self._wall()
        earliest = now - min(self.window_seconds, 3540.0)
        start = earliest if self.whale_alert_since is None else max(earliest, self.whale_alert_since - 60)
        return await provider.fetch_transfers(self.fetcher, self.max_wait, since=start, min_value=self.threshold)

    # -- the window -----------------------------------------------------------------------------------
    def _value(self, transfer: Transfer, prices: Prices) -> float | None:
        if transfer.value_usd is not None:
            return transfer.value_usd
        symbol = NATIVE.get(transfer.chain)
        if symbol is None or transfer.symbol != symbol or symbol not in prices.usd:
            return None
        return transfer.amount * prices.usd[symbol]

    def _admit(self, transfers: list[Transfer], prices: Prices, now: float) -> None:
        for transfer in transfers:
            if transfer.key in self.window:
                continue
            value = self._value(transfer, prices)
            if value is not None and value >= self.threshold:
                self.window[transfer.key] = Seen(transfer, value, now)

    def _evict(self, now: float) -> None:
        # The window is "seen in the last hour": a source's own time may lag (mempool) or be absent.
        for key in [k for k, s in self.window.items() if now - s.seen_at > self.window_seconds]:
            del self.window[key]
        if len(self.window) > self.max_transactions:
            keep = sorted(self.window.items(), key=lambda item: item[1].seen_at, reverse=True)
            self.window = dict(keep[: self.max_transactions])

    # -- the payload ----------------------------------------------------------------------------------
    def _payload(self, freshness: Freshness, prices: Prices) -> WhaleTrackingPayload:
        newest_first = sorted(self.window.values(), key=lambda s: (s.when, s.seen_at), reverse=True)
        never_fetched = self.tracker.last is None
        return WhaleTrackingPayload(
            **freshness.fields(),
            large_transactions=[self._transaction(s) for s in newest_first],
            whale_wallets=self._wallets(newest_first),
            total_volume=None if never_fetched else round(sum(s.value_usd for s in newest_first), 2),
            alert_threshold=self.threshold,
            timestamp=freshness.fetched_at or now_iso(),
            window_seconds=self.window_seconds,
            prices_used=prices.usd,
        )

    @staticmethod
    def _transaction(seen: Seen) -> WhaleTransaction:
        t = seen.transfer
        explorer = EXPLORERS.get(t.chain)
        return WhaleTransaction(hash=t.hash, value=round(seen.value_usd, 2), from_=t.sender, to=t.receiver,
                                timestamp=iso(t.timestamp), chain=t.chain, symbol=t.symbol, amount=t.amount,
                                source=t.source, explorer_url=explorer.format(t.hash) if explorer else None)

    def _wallets(self, window: list[Seen]) -> list[WhaleWallet]:
        """Addresses by USD moved in the window, sent or received (a transfer counts once per address)."""
        totals: dict[tuple[str, str], list[float]] = {}
        for seen in window:
            t = seen.transfer
            for address in {a for a in (t.sender, t.receiver) if a}:
                entry = totals.setdefault((t.chain, address), [0.0, 0])
                entry[0] += seen.value_usd
                entry[1] += 1
        ranked = sorted(totals.items(), key=lambda item: item[1][0], reverse=True)[: self.top_wallets]
        return [WhaleWallet(address=address, chain=chain, volume_usd=round(volume, 2), transactions=int(count))
                for (chain, address), (volume, count) in ranked]


def build(ctx: BuildContext) -> list[Service]:
    nodes = nodes_for("ethereum")
    pools = WhalePools(
        bitcoin=ctx.pool("whales_bitcoin", [ctx.provider(BlockchainInfoUnconfirmed), ctx.provider(MempoolRecent)]),
        ethereum=ctx.pool("whales_ethereum", nodes) if nodes else None,
        whale_alert=ctx.pool("whales_whale_alert", [ctx.provider(WhaleAlert)]),
    )
    interval = ctx.intervals["whale_tracking"]
    return [WhaleTrackingService(pools, ctx.fetcher, threshold=ctx.settings.whale_threshold_usd,
                                 prices=hub_prices(ctx.latest),
                                 data_source=ctx.data_source, max_wait=min(5.0, interval / 3))]
