"""On-chain analytics: DefiLlama's TVL by chain, protocols and stablecoins (keyless), and gas figures read from
the public JSON-RPC nodes of each EVM chain.

DefiLlama refreshes most figures about once an hour and ``/protocols`` is several megabytes, so the onchain
service asks for each at its own, slower pace; gas is read every run. Values DefiLlama leaves null (a
protocol's 1-day change, say) stay absent.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import orjson

from models.chain import ChainTvl, DefiProtocol, Stablecoin
from sources.errors import AnswerError, ProviderBadResponse
from sources.fetcher import Fetcher, Provider
from sources.limits import Rate
from sources.providers.values import json_number

#: DefiLlama lists exchanges' reserves (category CEX) beside DeFi protocols; its DeFi rankings leave them out.
NOT_DEFI = frozenset({"CEX"})


@dataclass(frozen=True)
class TvlSnapshot:
    total: float  # the sum over every chain DefiLlama lists
    chains: tuple[ChainTvl, ...]  # largest first


@dataclass(frozen=True)
class StablecoinSnapshot:
    """USD-pegged assets only. A coin's supply is counted in units of its peg; its value is that supply at the
    coin's own price, which DefiLlama gives beside it (a de-pegged coin is not worth its peg). Coins it gives no
    price for are not valued: they are counted apart, never at an assumed $1."""

    total_circulating_usd: float | None  # the priced coins' value; None when none has a price
    top: tuple[Stablecoin, ...]  # largest supply first
    unpriced_count: int = 0
    unpriced_circulating: float = 0.0  # supply of the coins without a price, in units of the peg


T = TypeVar("T")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def read_large(fetcher: Fetcher, provider: Provider, response: httpx.Response,
                     normalize: Callable[[Any], T]) -> T:
    """Decode a large JSON body and normalise it in a worker thread. ``/protocols`` is several megabytes:
    decoding it and walking its thousands of entries takes tens of milliseconds, which on the event loop every
    WebSocket client would wait through."""
    def work() -> T:
        return normalize(orjson.loads(response.content))

    try:
        return await asyncio.to_thread(work)
    except orjson.JSONDecodeError as exc:  # what Fetcher.decode_json does, without decoding again on the loop
        error = ProviderBadResponse(provider.id, f"response is not JSON ({exc})")
        fetcher.record_failure(provider, error)
        raise error from None


class DefiLlama(Provider):
    id = "defillama"
    name = "DefiLlama"
    category = "onchain"
    base_url = "https://api.llama.fi"
    endpoints = ("/v2/chains", "/protocols")
    docs = "https://api-docs.defillama.com/"
    # Free and keyless on a fair-use basis (no published figure; about 300 a minute is what users report).
    # The onchain service needs two calls every few minutes.
    rate = Rate(10, 60, burst=3)
    probe_path = "/v2/chains"
    probe_interval = 900.0
    timeout = 30.0  # /protocols is several megabytes
    max_body_bytes = 16 * 2**20  # /protocols: about 5 MB in 2026, room to grow
    slow_ms = 8000.0

    async def fetch_tvl(self, fetcher: Fetcher, max_wait: float) -> TvlSnapshot:
        return self.normalize_chains(await fetcher.get_json(self, "/v2/chains", max_wait=max_wait))

    async def fetch_protocols(self, fetcher: Fetcher, limit: int, max_wait: float) -> tuple[DefiProtocol, ...]:
        response = await fetcher.request(self, "GET", "/protocols", max_wait=max_wait)
        return await read_large(fetcher, self, response, lambda raw: self.normalize_protocols(raw, limit))

    @classmethod
    def normalize_chains(cls, raw: Any, limit: int = 20) -> TvlSnapshot:
        """``[{name, tvl, tokenSymbol, gecko_id, chainId, cmcId}]``: current TVL (USD) per chain."""
        if not isinstance(raw, list):
            raise AnswerError(f"defillama: expected a list of chains, got {str(raw)[:120]}")
        chains = []
        for item in raw:
            if not isinstance(item, dict):
                continue
            name, tvl = _text(item.get("name")), json_number(item.get("tvl"))
            if name is None or tvl is None or tvl < 0:
                continue
            chains.append(ChainTvl(name=name, tvl=tvl, token_symbol=_text(item.get("tokenSymbol"))))
        if not chains:
            raise AnswerError("defillama: no chain with a TVL")
        chains.sort(key=lambda c: c.tvl, reverse=True)
        return TvlSnapshot(total=sum(c.tvl for c in chains), chains=tuple(chains[:limit]))

    @classmethod
    def normalize_protocols(cls, raw: Any, limit: int = 10) -> tuple[DefiProtocol, ...]:
        """``[{name, category, chains, tvl, change_1h, change_1d, change_7d, ...}]``, changes in percent: the
        largest DeFi protocols by TVL."""
        if not isinstance(raw, list):
            raise AnswerError(f"defillama: expected a list of protocols, got {str(raw)[:120]}")
        ranked: list[tuple[float, int, str, dict[str, Any]]] = []  # (tvl, position, name, entry)
        for position, item in enumerate(raw):
            if not isinstance(item, dict) or _text(item.get("category")) in NOT_DEFI:
                continue
            name, tvl = _text(item.get("name")), json_number(item.get("tvl"))
            if name is not None and tvl is not None and tvl > 0:
                ranked.append((tvl, position, name, item))
        if not ranked:
            raise AnswerError("defillama: no DeFi protocol with a TVL")
        # Models for the few shown only, not for the thousands listed; equal TVLs keep the listed order.
        top = heapq.nsmallest(limit, ranked, key=lambda entry: (-entry[0], entry[1]))
        return tuple(DefiProtocol(
            name=name, category=_text(item.get("category")), tvl=tvl,
            change_1d=json_number(item.get("change_1d")), change_7d=json_number(item.get("change_7d")),
            chains=[c for c in chains if isinstance(c, str)] if isinstance(chains := item.get("chains"), list) else [])
            for tvl, _, name, item in top)


class DefiLlamaStablecoins(Provider):
    id = "defillama_stablecoins"
    name = "DefiLlama stablecoins"
    category = "onchain"
    base_url = "https://stablecoins.llama.fi"
    endpoints = ("/stablecoins",)
    docs = "https://api-docs.defillama.com/#tag/stablecoins"
    rate = Rate(10, 60, burst=2)  # same fair-use terms as api.llama.fi
    probe_path = "/stablecoins"
    probe_keys = ("peggedAssets",)
    probe_interval = 1800.0
    timeout = 30.0
    slow_ms = 8000.0

    async def fetch_stablecoins(self, fetcher: Fetcher, limit: int, max_wait: float) -> StablecoinSnapshot:
        response = await fetcher.request(self, "GET", "/stablecoins", params={"includePrices": "true"},
                                         max_wait=max_wait)
        return await read_large(fetcher, self, response, lambda raw: self.normalize_stablecoins(raw, limit))

    @classmethod
    def normalize_stablecoins(cls, raw: Any, limit: int = 10) -> StablecoinSnapshot:
        """``{"peggedAssets": [{name, symbol, pegType, circulating: {peggedUSD: ...}, price, ...}]}``
        (``includePrices=true``). Only USD-pegged assets count: ``circulating.peggedUSD`` is their supply in units
        of the peg, ``price`` their price in USD (null, or absent, when DefiLlama has none)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("peggedAssets"), list):
            raise AnswerError(f"defillama: expected an object with peggedAssets, got {str(raw)[:120]}")
        coins = []
        for item in raw["peggedAssets"]:
            if not isinstance(item, dict) or item.get("pegType") != "peggedUSD":
                continue
            circulating = item.get("circulating")
            supply = json_number(circulating.get("peggedUSD")) if isinstance(circulating, dict) else None
            name, symbol = _text(item.get("name")), _text(item.get("symbol"))
            if name is None or symbol is None or supply is None or supply <= 0:
                continue
            price = json_number(item.get("price"))
            price = price if price is not None and price > 0 else None
            coins.append(Stablecoin(name=name, symbol=symbol, circulating=supply, price_usd=price,
                                    circulating_usd=supply * price if price is not None else None,
                                    peg_type="peggedUSD"))
        if not coins:
            raise AnswerError("defillama: no USD stablecoin with a circulating supply")
        coins.sort(key=lambda c: c.circulating or 0.0, reverse=True)
        priced = [c.circulating_usd for c in coins if c.circulating_usd is not None]
        unpriced = [c.circulating or 0.0 for c in coins if c.circulating_usd is None]
        return StablecoinSnapshot(sum(priced) if priced else None, tuple(coins[:limit]),
                                  unpriced_count=len(unpriced), unpriced_circulating=sum(unpriced))
