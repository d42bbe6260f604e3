"""onchain: DeFi TVL by chain, the largest DeFi protocols with their 1-day change, stablecoin supply, and gas.

The three DefiLlama sections each have their own freshness and their own pace
(:class:`~services.cadence.PacedSection`): DefiLlama
refreshes about hourly and ``/protocols`` is large, so a section is fetched again only once its ``refresh`` has
passed (or right away after a failure); in between it is shown with its real age, and past
:data:`DEFILLAMA_MAX_AGE` it is ``stale``. Gas is read every run from each chain's node pool; a chain whose nodes
all failed is left out of ``gas`` for that run. Gas is dated by the block it was read at: gas of a block older
than the chain's head tolerance (a stuck node) is ``stale``, not ``ok``. The payload's ``status`` combines the
sections' and the gas chains' (``partial`` when some have data and some none).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Literal

from models.chain import DefiProtocol, GasFigures, OnchainPayload, ProtocolsSection, StablecoinsSection, TvlSection
from models.freshness import Freshness
from models.messages import epoch, iso, now_iso
from models.states import DataStatus
from services.base import BuildContext, Service, Tracker, combined_status, why_failed
from services.cadence import Cadence, PacedSection
from sources.fetcher import Fetcher
from sources.limits import Clock
from sources.pools import Pool, PoolResult
from sources.providers.onchain import (
    DefiLlama,
    DefiLlamaStablecoins,
    StablecoinSnapshot,
    TvlSnapshot,
)
from sources.providers.rpc import CHAINS, JsonRpcNode, fetch_gas, nodes_for

#: EVM chains whose gas we read, by the chain names of ``sources/providers/rpc.py``.
GAS_CHAINS = ("ethereum", "bsc", "polygon", "arbitrum", "base", "optimism")
#: DefiLlama recomputes TVL, protocols and stablecoins about hourly; figures kept two hours are stale. Its lists
#: carry no time of their own, so the age counts from when they were fetched.
DEFILLAMA_MAX_AGE = 7200.0


def gas_time(result: PoolResult[GasFigures]) -> float | None:
    return epoch(result.value.block_time) if result.value is not None else None


class OnchainService(Service):
    name = "onchain"

    def __init__(self, *, tvl: PacedSection[TvlSnapshot],
                 protocols: PacedSection[tuple[DefiProtocol, ...]],
                 stablecoins: PacedSection[StablecoinSnapshot],
                 gas_pools: Mapping[str, Pool[JsonRpcNode]], fetcher: Fetcher,
                 data_source: Literal["live", "replay"], max_wait: float = 5.0, clock: Clock = time.time) -> None:
        self.tvl = tvl
        self.protocols = protocols
        self.stablecoins = stablecoins
        self.gas_pools = dict(gas_pools)
        self.fetcher = fetcher
        self.data_source = data_source
        self.max_wait = max_wait
        # Per chain: how old its gas is, by the block it was read at, against the chain's head tolerance.
        self.gas_trackers: dict[str, Tracker[PoolResult[GasFigures]]] = {
            chain: Tracker(data_source, clock, max_age=CHAINS[chain].head_max_age, data_time=gas_time)
            for chain in self.gas_pools}

    async def collect(self) -> Mapping[str, Any]:
        (tvl, tvl_fresh), (protocols, protocols_fresh), (stables, stables_fresh), gas = await asyncio.gather(
            self.tvl.get(), self.protocols.get(), self.stablecoins.get(), self._gas())

        tvl_section = TvlSection(**tvl_fresh.fields())
        if tvl is not None and tvl.value is not None:
            tvl_section.source = tvl.source
            tvl_section.total_tvl = tvl.value.total
            tvl_section.chains = list(tvl.value.chains)
        protocols_section = ProtocolsSection(**protocols_fresh.fields())
        if protocols is not None and protocols.value is not None:
            protocols_section.source = protocols.source
            protocols_section.top = list(protocols.value)
        stables_section = self._stablecoins_section(stables, stables_fresh)
        gas_figures, gas_errors = self._gas_view(gas)
        statuses = [tvl_section.status, protocols_section.status, stables_section.status]
        statuses += [figures.status or DataStatus.OK for figures in gas_figures.values()]
        statuses += [DataStatus.NO_DATA] * len(gas_errors)
        return OnchainPayload(tvl=tvl_section, protocols=protocols_section, stablecoins=stables_section,
                              gas=gas_figures, gas_errors=gas_errors, status=combined_status(statuses),
                              data_source=self.data_source, timestamp=now_iso()).model_dump(mode="json")

    @staticmethod
    def _stablecoins_section(stables: PoolResult[StablecoinSnapshot] | None,
                             fresh: Freshness) -> StablecoinsSection:
        snapshot = stables.value if stables is not None else None
        if stables is None or snapshot is None:
            return StablecoinsSection(**fresh.fields())
        if snapshot.unpriced_count:
            fresh = fresh.with_note(
                f"{snapshot.unpriced_count} stablecoin(s) came without a price: their supply "
                f"({snapshot.unpriced_circulating:,.0f} in units of the peg) is not in the total, which values each "
                "coin at its own price")
        return StablecoinsSection(**fresh.fields(), source=stables.source,
                                  total_circulating_usd=snapshot.total_circulating_usd, top=list(snapshot.top),
                                  unpriced_count=snapshot.unpriced_count,
                                  unpriced_circulating=snapshot.unpriced_circulating if snapshot.unpriced_count
                                  else None)

    def _gas_view(self, gas: Mapping[str, PoolResult[GasFigures]]) -> tuple[dict[str, GasFigures], dict[str, str]]:
        """Each chain's gas with its freshness, or why it is absent this run."""
        figures: dict[str, GasFigures] = {}
        errors: dict[str, str] = {}
        for chain, result in gas.items():
            reading = result.value
            if reading is None or result.source is None:
                errors[chain] = why_failed(result.sources)
                continue
            _, fresh = self.gas_trackers[chain].observe(result)
            figures[chain] = reading.model_copy(update={
                "source": result.source, "fetched_at": iso(result.fetched_at) or now_iso(), "status": fresh.status,
                "age_seconds": fresh.age_seconds, "max_age_seconds": fresh.max_age_seconds,
                "recorded_at": fresh.recorded_at,
                "message": "; ".join(m for m in (fresh.message, reading.gas_price_error) if m) or None})
        return figures, errors

    async def _gas(self) -> dict[str, PoolResult[GasFigures]]:
        chains = list(self.gas_pools)
        results = await asyncio.gather(*(
            self.gas_pools[chain].fetch(lambda node: fetch_gas(node, self.fetcher, self.max_wait))
            for chain in chains))
        return dict(zip(chains, results, strict=True))


def build(ctx: BuildContext) -> list[Service]:
    interval = ctx.intervals["onchain"]
    max_wait = min(5.0, interval / 3)
    fetcher = ctx.fetcher
    llama = ctx.provider(DefiLlama)
    stables = ctx.provider(DefiLlamaStablecoins)
    # DefiLlama updates about hourly: TVL every 10 runs (5 min), the large lists every 20 (10 min); right away
    # again after a failure.
    tvl: PacedSection[TvlSnapshot] = PacedSection(
        ctx.pool("onchain_tvl", [llama], every=interval), lambda p: p.fetch_tvl(fetcher, max_wait),
        Cadence(interval * 10), data_source=ctx.data_source, max_age=DEFILLAMA_MAX_AGE)
    protocols: PacedSection[tuple[DefiProtocol, ...]] = PacedSection(
        ctx.pool("onchain_protocols", [llama], every=interval), lambda p: p.fetch_protocols(fetcher, 10, max_wait),
        Cadence(interval * 20), data_source=ctx.data_source, max_age=DEFILLAMA_MAX_AGE)
    stablecoins: PacedSection[StablecoinSnapshot] = PacedSection(
        ctx.pool("onchain_stablecoins", [stables], every=interval),
        lambda p: p.fetch_stablecoins(fetcher, 10, max_wait),
        Cadence(interval * 20), data_source=ctx.data_source, max_age=DEFILLAMA_MAX_AGE)
    gas_pools = {chain: ctx.pool(f"gas_{chain}", nodes, every=interval)
                 for chain in GAS_CHAINS if (nodes := nodes_for(chain))}
    return [OnchainService(tvl=tvl, protocols=protocols, stablecoins=stablecoins, gas_pools=gas_pools,
                           fetcher=fetcher, data_source=ctx.data_source, max_wait=max_wait)]
