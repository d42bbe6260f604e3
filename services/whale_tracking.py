"""whale_tracking: large transactions of the last hour, valued in USD, from keyless sources (and Whale Alert).

Every run asks each source once, at the same time: Bitcoin's pool (blockchain.info, then mempool.space), the
Ethereum nodes' pool (the newest blocks since the last run, at most two, and the USDT/USDC Transfer logs of those
blocks) and Whale Alert (only with its key). Bitcoin and Ether amounts are valued at market_data's latest prices;
with no price known for a chain, its transfers are not valued (and the payload says so) rather than valued at a
guess. USDT and USDC are valued at market_data's price of them, or at $1 a token when it has none (they are USD
stablecoins; the payload then says so). A transfer at or above ``alert_threshold`` USD joins a rolling window,
de-duplicated by transfer and bounded in time and size; ``whale_wallets`` and ``total_volume`` are computed over
that window.

Every update says what it looked at (``coverage``: per source, what answered, the transactions read, for
Ethereum the blocks read and skipped and whether the token logs were read) and which prices valued what
(``prices_used``, with source and time in ``prices_detail``). Freshness counts from the newest time the sources
gave (a transaction first seen, a block made): a source that keeps giving old transactions is stale.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from models.freshness import Freshness, SourceState
from models.messages import iso, now_iso
from models.states import SourceStatus
from models.whales import WhaleCoverage, WhalePrice, WhaleTrackingPayload, WhaleTransaction, WhaleWallet
from services.base import BuildContext, Service, Tracker, why_failed
from services.ports import Prices, PriceSource, hub_prices
from sources.fetcher import Fetcher
from sources.limits import Clock
from sources.pools import GatherResult, Pool, PoolResult
from sources.providers.eth_transfers import STABLECOINS, eth_scanners, scan_ethereum
from sources.providers.rpc import JsonRpcNode
from sources.providers.whales import BitcoinSource, BlockchainInfoUnconfirmed, MempoolRecent, Transfer, WhaleAlert

EXPLORERS = {"bitcoin": "https://mempool.space/tx/{}", "ethereum": "https://etherscan.io/tx/{}"}
#: Which market price values which chain's native amounts (symbols of the payload's ``prices_used``).
NATIVE = {"bitcoin": "BTC", "ethereum": "ETH"}
STABLE_SYMBOLS = frozenset(coin.symbol for coin in STABLECOINS)
#: What a USD stablecoin is counted at when market_data has no price for it.
USD_PEG = 1.0
#: The newest transaction a source gives is seconds old (a mempool's newest arrival, a chain's newest block); one
#: this old means the source is stuck.
DATA_MAX_AGE = 900.0
SOURCES = ("bitcoin", "ethereum", "whale_alert")


@dataclass
class Seen:
    transfer: Transfer
    value_usd: float
    seen_at: float
    price: float | None = None  # None: the source valued the transfer itself
    price_source: str | None = None

    @property
    def when(self) -> float:
        return self.transfer.timestamp if self.transfer.timestamp is not None else self.seen_at


@dataclass
class SourceRun:
    """What one source gave in one run: its transfers (every size), what it looked at, and the newest time it
    gave (None where it gives none, or where its newest item says nothing of how current it is)."""

    transfers: list[Transfer]
    coverage: WhaleCoverage
    newest: float | None = None


def newest_time(result: GatherResult[SourceRun]) -> float | None:
    """The data time of a run: the newest time any source gave."""
    return max((run.newest for run in result.values.values() if run.newest is not None), default=None)


@dataclass
class WhalePools:
    bitcoin: Pool[BitcoinSource]
    ethereum: Pool[JsonRpcNode] | None
    whale_alert: Pool[WhaleAlert] | None


@dataclass
class _Wallets:
    """Addresses grouped into wallets: a Bitcoin transaction's input addresses are one owner's (union-find)."""

    parent: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def find(self, node: tuple[str, str]) -> tuple[str, str]:
        self.parent.setdefault(node, node)
        while self.parent[node] != node:
            self.parent[node] = self.parent[self.parent[node]]
            node = self.parent[node]
        return node

    def join(self, nodes: Iterable[tuple[str, str]]) -> None:
        roots = [self.find(n) for n in nodes]
        for other in roots[1:]:
            self.parent[self.find(other)] = self.find(roots[0])


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
        self.tracker: Tracker[GatherResult[SourceRun]] = Tracker(data_source, wall, max_age=DATA_MAX_AGE,
                                                                 data_time=newest_time)
        self.window: dict[str, Seen] = {}
        self.last_block: int | None = None  # the newest Ethereum block already read
        self.whale_alert_since: float | None = None

    # -- one run --------------------------------------------------------------------------------------
    async def collect(self) -> Mapping[str, Any]:
        prices = self.prices()
        calls = self._calls(prices)
        results = dict(zip(calls, await asyncio.gather(*calls.values()), strict=True))

        now = self._wall()
        answered: dict[str, SourceRun] = {}  # by the provider that answered: its state says when (replay)
        sources: dict[str, SourceState] = {}
        coverage = self._not_asked(prices)
        for name, result in results.items():
            sources.update(result.sources)
            if result.ok and result.value is not None and result.source is not None:
                answered[result.source] = result.value
                coverage[name] = result.value.coverage
            else:
                coverage[name] = self._failed(result)
        if coverage.get("whale_alert", WhaleCoverage(status="failed")).status == "ok":
            self.whale_alert_since = now
        for run in answered.values():
            self._admit(run.transfers, prices, now)
        self._evict(now)

        # The source whose data is newest first: a freshness message names the source of the time it gives.
        by_newest = dict(sorted(answered.items(), key=lambda item: -(item[1].newest or float("-inf"))))
        _, freshness = self.tracker.observe(GatherResult(by_newest, now if answered else None, sources))
        notes = self._notes(prices)
        return self._payload(freshness.with_note(*notes), prices, coverage).model_dump(mode="json", by_alias=True)

    def _notes(self, prices: Prices) -> list[str]:
        notes = [f"no recent {symbol} price from market_data: {chain} transfers are not valued"
                 for chain, symbol in NATIVE.items() if symbol not in prices.usd]
        if prices.usd and prices.currency != "USD":
            notes.append(f"valued at market_data's {prices.currency} prices, taken as dollars")
        pegged = sorted({s.transfer.symbol for s in self.window.values() if s.price_source == "usd_peg"})
        if pegged:
            notes.append(f"{', '.join(pegged)} valued at $1 a token because they are USD stablecoins: market_data "
                         "gave no price for them")
        return notes

    def _calls(self, prices: Prices) -> dict[str, Awaitable[PoolResult[SourceRun]]]:
        """One call per source; a chain without a price is not asked (its transfers could not be valued)."""
        calls: dict[str, Awaitable[PoolResult[SourceRun]]] = {}
        if "BTC" in prices.usd:
            calls["bitcoin"] = self.pools.bitcoin.fetch(self._bitcoin_run)
        if "ETH" in prices.usd and self.pools.ethereum is not None:
            calls["ethereum"] = self.pools.ethereum.fetch(self._ethereum_run)
        if self.pools.whale_alert is not None:
            calls["whale_alert"] = self.pools.whale_alert.fetch(self._whale_alert_run)
        return calls

    def _not_asked(self, prices: Prices) -> dict[str, WhaleCoverage]:
        coverage: dict[str, WhaleCoverage] = {}
        if "BTC" not in prices.usd:
            coverage["bitcoin"] = WhaleCoverage(status="not_asked", note="no recent BTC price from market_data")
        if self.pools.ethereum is None:
            coverage["ethereum"] = WhaleCoverage(status="not_asked", note="no Ethereum node declared")
        elif "ETH" not in prices.usd:
            coverage["ethereum"] = WhaleCoverage(status="not_asked", note="no recent ETH price from market_data")
        return coverage

    @staticmethod
    def _failed(result: PoolResult[SourceRun]) -> WhaleCoverage:
        states = list(result.sources.values())
        if states and all(s.status is SourceStatus.MISSING_API_KEY for s in states):
            return WhaleCoverage(status="not_asked", note="needs an API key")
        return WhaleCoverage(status="failed", note=f"every provider failed ({why_failed(result.sources)})")

    async def _bitcoin_run(self, provider: BitcoinSource) -> SourceRun:
        transfers = await provider.fetch_transfers(self.fetcher, self.max_wait)
        kinds = {t.amount_kind for t in transfers}
        times = [t.timestamp for t in transfers if t.timestamp is not None]
        coverage = WhaleCoverage(source=provider.id, transactions_seen=len(transfers),
                                 amount_kind=kinds.pop() if len(kinds) == 1 else None)
        return SourceRun(transfers, coverage, max(times, default=None))

    async def _ethereum_run(self, node: JsonRpcNode) -> SourceRun:
        scan = await scan_ethereum(node, self.fetcher, after=self.last_block, max_blocks=self.max_blocks,
                                   max_wait=self.max_wait)
        if scan.blocks:
            self.last_block = max(b.number for b in scan.blocks)
        numbers = [b.number for b in scan.blocks]
        note = (f"{scan.logs_outside} logs for other blocks than those asked were left out"
                if scan.logs_outside else None)
        coverage = WhaleCoverage(
            source=node.id, transactions_seen=sum(b.transactions for b in scan.blocks),
            blocks_scanned=len(scan.blocks), first_block=min(numbers, default=None),
            last_block=max(numbers, default=None), blocks_skipped=scan.skipped, token_logs=scan.token_logs,
            token_transfers_seen=len(scan.token_transfers) if scan.token_logs == "read" else None, note=note)
        times = [b.timestamp for b in scan.blocks if b.timestamp is not None]
        return SourceRun(scan.transfers, coverage, max(times, default=None))

    async def _whale_alert_run(self, provider: WhaleAlert) -> SourceRun:
        # Ask only for what is new since the last answer (a minute of overlap; duplicates are dropped), and
        # never further back than the window, nor than the hour Whale Alert's plans let a query reach.
        now = self._wall()
        earliest = now - min(self.window_seconds, 3540.0)
        start = earliest if self.whale_alert_since is None else max(earliest, self.whale_alert_since - 60)
        transfers = await provider.fetch_transfers(self.fetcher, self.max_wait, since=start,
                                                   min_value=self.threshold)
        # Its list holds only transfers over the threshold: its newest one says nothing of how current it is.
        return SourceRun(transfers, WhaleCoverage(source=provider.id, transactions_seen=len(transfers)))

    # -- the window -----------------------------------------------------------------------------------
    @staticmethod
    def _price_of(transfer: Transfer, prices: Prices) -> tuple[float, str] | None:
        """The USD price a transfer's amount is valued at, and where it came from; None when there is none."""
        market = f"market_data/{prices.source or 'unknown'}"
        if NATIVE.get(transfer.chain) == transfer.symbol:
            price = prices.usd.get(transfer.symbol)
            return (price, market) if price is not None else None
        if transfer.chain == "ethereum" and transfer.symbol in STABLE_SYMBOLS:
            price = prices.usd.get(transfer.symbol)
            return (price, market) if price is not None else (USD_PEG, "usd_peg")
        return None

    def _admit(self, transfers: list[Transfer], prices: Prices, now: float) -> None:
        for transfer in transfers:
            if transfer.key in self.window:
                continue
            if transfer.value_usd is not None:
                seen = Seen(transfer, transfer.value_usd, now, None, transfer.source)
            elif (priced := self._price_of(transfer, prices)) is not None:
                seen = Seen(transfer, transfer.amount * priced[0], now, priced[0], priced[1])
            else:
                continue
            if seen.value_usd >= self.threshold and not self._reported_elsewhere(seen):
                self.window[transfer.key] = seen

    def _reported_elsewhere(self, seen: Seen) -> bool:
        """The same movement already in the window from another source (Whale Alert reports the transfers the
        nodes read too, keyed by transaction and rounded)."""
        t = seen.transfer
        return any(o.transfer.tx_key == t.tx_key and o.transfer.source != t.source
                   and abs(o.transfer.amount - t.amount) <= 0.001 * max(abs(t.amount), 1e-9)
                   for o in self.window.values())

    def _evict(self, now: float) -> None:
        # The window is "seen in the last hour": a source's own time may lag (mempool), be absent, or (replay)
        # be the recording's, years before it is replayed.
        for key in [k for k, s in self.window.items() if now - s.seen_at > self.window_seconds]:
            del self.window[key]
        if len(self.window) > self.max_transactions:
            keep = sorted(self.window.items(), key=lambda item: item[1].seen_at, reverse=True)
            self.window = dict(keep[: self.max_transactions])

    # -- the payload ----------------------------------------------------------------------------------
    def _payload(self, freshness: Freshness, prices: Prices,
                 coverage: dict[str, WhaleCoverage]) -> WhaleTrackingPayload:
        newest_first = sorted(self.window.values(), key=lambda s: (s.when, s.seen_at), reverse=True)
        never_fetched = self.tracker.last is None
        used, detail = self._prices_used(prices, newest_first)
        return WhaleTrackingPayload(
            **freshness.fields(),
            large_transactions=[self._transaction(s) for s in newest_first],
            whale_wallets=self._wallets(newest_first),
            total_volume=None if never_fetched else round(sum(s.value_usd for s in newest_first), 2),
            alert_threshold=self.threshold,
            timestamp=freshness.fetched_at or now_iso(),
            window_seconds=self.window_seconds,
            prices_used=used,
            prices_detail=detail,
            coverage={name: coverage[name] for name in SOURCES if name in coverage},
        )

    @staticmethod
    def _prices_used(prices: Prices, window: list[Seen]) -> tuple[dict[str, float], dict[str, WhalePrice]]:
        """market_data's prices of the native coins (what this run values at), and the stablecoin prices the
        window's transfers were valued at."""
        market = f"market_data/{prices.source or 'unknown'}"
        used = {symbol: price for symbol, price in prices.usd.items() if symbol in NATIVE.values()}
        detail = {symbol: WhalePrice(usd=price, source=market, quote_currency=prices.currency,
                                     fetched_at=iso(prices.fetched_at), data_time=iso(prices.data_time),
                                     recorded_at=iso(prices.recorded_at))
                  for symbol, price in used.items()}
        for seen in window:
            symbol = seen.transfer.symbol
            if seen.price is None or seen.price_source is None or symbol in used:
                continue
            used[symbol] = seen.price
            if seen.price_source == "usd_peg":
                detail[symbol] = WhalePrice(usd=seen.price, source="usd_peg")
            else:
                detail[symbol] = WhalePrice(usd=seen.price, source=seen.price_source, quote_currency=prices.currency,
                                            fetched_at=iso(prices.fetched_at), data_time=iso(prices.data_time),
                                            recorded_at=iso(prices.recorded_at))
        return used, detail

    @staticmethod
    def _transaction(seen: Seen) -> WhaleTransaction:
        t = seen.transfer
        explorer = EXPLORERS.get(t.chain)
        return WhaleTransaction(hash=t.hash, value=round(seen.value_usd, 2), from_=t.sender, to=t.receiver,
                                timestamp=iso(t.timestamp), chain=t.chain, symbol=t.symbol, amount=t.amount,
                                source=t.source, explorer_url=explorer.format(t.hash) if explorer else None,
                                amount_kind=t.amount_kind, total_output=t.total_output, block_number=t.block_number,
                                log_index=t.log_index, token_contract=t.contract, price_usd=seen.price,
                                price_source=seen.price_source)

    def _wallets(self, window: list[Seen]) -> list[WhaleWallet]:
        """Wallets by USD moved in the window, sent or received. A Bitcoin transaction's input addresses are one
        wallet (its change goes back to one of them), and a transfer counts once per wallet it touched."""
        wallets = _Wallets()
        for seen in window:
            t = seen.transfer
            senders = [(t.chain, a) for a in (*t.sender_addresses, t.sender) if a]
            wallets.join(senders)
            if t.receiver:
                wallets.find((t.chain, t.receiver))
        totals: dict[tuple[str, str], list[float]] = {}
        by_address: dict[tuple[str, str], float] = {}
        for seen in window:
            t = seen.transfer
            touched = {wallets.find((t.chain, a)) for a in (t.sender, t.receiver) if a}
            for root in touched:
                entry = totals.setdefault(root, [0.0, 0])
                entry[0] += seen.value_usd
                entry[1] += 1
            for address in {a for a in (t.sender, t.receiver) if a}:
                by_address[(t.chain, address)] = by_address.get((t.chain, address), 0.0) + seen.value_usd
        members: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for node in wallets.parent:
            members.setdefault(wallets.find(node), []).append(node)
        result = []
        for root, (volume, count) in totals.items():
            # The wallet is shown by the address that moved the most in the window.
            nodes = sorted(members[root], key=lambda n: (-by_address.get(n, 0.0), n[1]))
            chain, address = nodes[0]
            result.append(WhaleWallet(address=address, chain=chain, volume_usd=round(volume, 2),
                                      transactions=int(count), addresses=[n[1] for n in nodes[1:]]))
        result.sort(key=lambda w: (-w.volume_usd, w.chain, w.address))  # ties in a fixed order
        return result[: self.top_wallets]


def build(ctx: BuildContext) -> list[Service]:
    nodes = eth_scanners()
    pools = WhalePools(
        bitcoin=ctx.pool("whales_bitcoin", [ctx.provider(BlockchainInfoUnconfirmed), ctx.provider(MempoolRecent)]),
        ethereum=ctx.pool("whales_ethereum", nodes) if nodes else None,
        whale_alert=ctx.pool("whales_whale_alert", [ctx.provider(WhaleAlert)]),
    )
    interval = ctx.intervals["whale_tracking"]
    return [WhaleTrackingService(pools, ctx.fetcher, threshold=ctx.settings.whale_threshold_usd,
                                 prices=hub_prices(ctx.latest),
                                 data_source=ctx.data_source, max_wait=min(5.0, interval / 3))]
