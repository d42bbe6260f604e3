"""explorers: Bitcoin and Ethereum network figures, each section from its own failover pool.

Bitcoin: mempool.space, then Blockchair, then blockchain.info; the first that answers gives every figure shown,
and ``source`` names it (a later provider may know fewer figures: those are left out, never zero-filled).
Ethereum: the public JSON-RPC nodes in order, then Etherscan (only with its key), then Blockchair. When a node
answered, Etherscan's gas oracle (safe/propose/fast), if keyed, is added beside it: nodes have no such ladder.
Each section keeps its own freshness (ok / stale / no_data); the payload's ``status`` combines the two. A section
is dated by its chain's newest block (``last_block_time``, else the time the source computed its figures): its
age counts from there, and past :data:`BITCOIN_MAX_AGE` (Bitcoin blocks can be an hour apart) or Ethereum's head
tolerance the section is ``stale`` even while its source answers, since an explorer or node stuck on an old block
still answers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

from models.chain import BitcoinFigures, BitcoinNetwork, EthereumFigures, EthereumNetwork, ExplorersPayload
from models.messages import epoch, now_iso
from services.base import BuildContext, Service, Tracker, combined_status
from sources.fetcher import Fetcher, Provider
from sources.limits import Clock
from sources.pools import Pool, PoolResult
from sources.providers.explorers import (
    BitcoinExplorer,
    BlockchainInfo,
    Blockchair,
    Etherscan,
    MempoolSpace,
    fetch_ethereum,
)
from sources.providers.rpc import CHAINS, nodes_for

#: Bitcoin blocks come every ten minutes on average, but an hour between two happens several times a week: a tip
#: two hours old means the source is stuck, not the chain.
BITCOIN_MAX_AGE = 7200.0
#: An Ethereum head older than ten slots (two minutes) is a stuck source.
ETHEREUM_MAX_AGE = CHAINS["ethereum"].head_max_age


def bitcoin_time(result: PoolResult[BitcoinFigures]) -> float | None:
    """The provider's own time of a Bitcoin reading: its tip block's, else when it computed its figures."""
    figures = result.value
    return (epoch(figures.last_block_time) or epoch(figures.stats_time)) if figures is not None else None


def ethereum_time(result: PoolResult[EthereumFigures]) -> float | None:
    return epoch(result.value.last_block_time) if result.value is not None else None


class ExplorersService(Service):
    name = "explorers"

    def __init__(self, bitcoin: Pool[BitcoinExplorer], ethereum: Pool[Provider], fetcher: Fetcher, *,
                 gas_oracle: Pool[Any] | None = None, interval: float,
                 data_source: Literal["live", "replay"], clock: Clock = time.time) -> None:
        self.bitcoin = bitcoin
        self.ethereum = ethereum
        self.gas_oracle = gas_oracle
        self.fetcher = fetcher
        # A provider whose budget is briefly spent is waited for a little before the next one is tried.
        self.max_wait = interval / 4
        self.bitcoin_tracker: Tracker[PoolResult[BitcoinFigures]] = Tracker(
            data_source, clock, max_age=BITCOIN_MAX_AGE, data_time=bitcoin_time)
        self.ethereum_tracker: Tracker[PoolResult[EthereumFigures]] = Tracker(
            data_source, clock, max_age=ETHEREUM_MAX_AGE, data_time=ethereum_time)
        self.data_source = data_source

    async def collect(self) -> Mapping[str, Any]:
        bitcoin = self._bitcoin_section(await self.bitcoin.fetch(
            lambda p: p.fetch_bitcoin(self.fetcher, self.max_wait)))
        ethereum_result = await self.ethereum.fetch(lambda p: fetch_ethereum(p, self.fetcher, self.max_wait))
        ethereum = self._ethereum_section(await self._with_gas_oracle(ethereum_result))
        payload = ExplorersPayload(bitcoin=bitcoin, ethereum=ethereum,
                                   status=combined_status([bitcoin.status, ethereum.status]),
                                   data_source=self.data_source, timestamp=now_iso())
        return payload.model_dump(mode="json")

    async def _with_gas_oracle(self, result: PoolResult[EthereumFigures]) -> PoolResult[EthereumFigures]:
        """Add Etherscan's gas ladder to a node's answer. Through a pool of its own so that a missing key, a
        spent budget or an error body is handled and reported like any pool member's."""
        if self.gas_oracle is None or result.value is None or result.value.gas_oracle:
            return result
        extra = await self.gas_oracle.fetch(lambda p: p.fetch_ethereum(self.fetcher, self.max_wait))
        sources = {**result.sources, **extra.sources}
        if extra.value is None or not extra.value.gas_oracle:
            return replace(result, sources=sources)
        figures = result.value.model_copy(update={"gas_oracle": extra.value.gas_oracle})
        return replace(result, value=figures, sources=sources)

    def _bitcoin_section(self, result: PoolResult[BitcoinFigures]) -> BitcoinNetwork:
        shown, freshness = self.bitcoin_tracker.observe(result)
        figures = shown.value if shown is not None and shown.value is not None else BitcoinFigures()
        return BitcoinNetwork(**freshness.fields(), **dict(figures), source=shown.source if shown else None)

    def _ethereum_section(self, result: PoolResult[EthereumFigures]) -> EthereumNetwork:
        shown, freshness = self.ethereum_tracker.observe(result)
        figures = shown.value if shown is not None and shown.value is not None else EthereumFigures()
        if figures.gas_price_error:
            freshness = freshness.with_note(f"no gas price: {figures.gas_price_error}")
        return EthereumNetwork(**freshness.fields(), **dict(figures), source=shown.source if shown else None)


def build(ctx: BuildContext) -> list[Service]:
    blockchair = ctx.provider(Blockchair)
    etherscan = ctx.provider(Etherscan)
    every = ctx.intervals["explorers"]
    bitcoin = ctx.pool("explorers_bitcoin", [ctx.provider(MempoolSpace), blockchair, ctx.provider(BlockchainInfo)],
                       every=every)
    ethereum = ctx.pool("explorers_ethereum", [*nodes_for("ethereum"), etherscan, blockchair], every=every)
    # Not registered with ctx.pool: a one-member supplement, not a failover pool worth showing.
    gas_oracle: Pool[Any] = Pool("explorers_gas_oracle", [etherscan], ctx.fetcher)
    return [ExplorersService(bitcoin, ethereum, ctx.fetcher, gas_oracle=gas_oracle,
                             interval=ctx.intervals["explorers"], data_source=ctx.data_source)]
