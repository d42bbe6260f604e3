"""On-chain analytics: DefiLlama's TVL by chain, protocols and stablecoins (keyless), and gas figures read from
the public JSON-RPC nodes of each EVM chain.

DefiLlama refreshes most figures about once an hour and ``/protocols`` is several megabytes, so the onchain
service asks for each at its own, slower pace; gas is read every run. Values DefiLlama leaves null (a
protocol's 1-day change, say) stay absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from models.payloads import ChainTvl, DefiProtocol, Stablecoin
from services.fetch import AnswerError, Fetcher, Provider, Rate
from services.providers.rpc import JsonRpcNode, hex_int
from services.providers.values import json_number

WEI_PER_GWEI = 1_000_000_000
#: DefiLlama lists exchanges' reserves (category CEX) beside DeFi protocols; its DeFi rankings leave them out.
NOT_DEFI = frozenset({"CEX"})


@dataclass(frozen=True)
class TvlSnapshot:
    total: float  # the sum over every chain DefiLlama lists
    chains: tuple[ChainTvl, ...]  # largest first


@dataclass(frozen=True)
class StablecoinSnapshot:
    total_circulating_usd: float  # USD-pegged assets only
    top: tuple[Stablecoin, ...]


@dataclass(frozen=True)
class GasReading:
    block_number: int | None
    gas_price_gwei: float
    base_fee_gwei: float | None  # None on a chain without EIP-1559 blocks


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


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
    slow_ms = 8000.0

    async def fetch_tvl(self, fetcher: Fetcher, max_wait: float) -> TvlSnapshot:
        return self.normalize_chains(await fetcher.get_json(self, "/v2/chains", max_wait=max_wait))

    async def fetch_protocols(self, fetcher: Fetcher, limit: int, max_wait: float) -> tuple[DefiProtocol, ...]:
        return self.normalize_protocols(await fetcher.get_json(self, "/protocols", max_wait=max_wait), limit)

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
        protocols = []
        for item in raw:
            if not isinstance(item, dict) or _text(item.get("category")) in NOT_DEFI:
                continue
            name, tvl = _text(item.get("name")), json_number(item.get("tvl"))
            if name is None or tvl is None or tvl <= 0:
                continue
            chains = item.get("chains")
            protocols.append(DefiProtocol(
                name=name, category=_text(item.get("category")), tvl=tvl,
                change_1d=json_number(item.get("change_1d")), change_7d=json_number(item.get("change_7d")),
                chains=[c for c in chains if isinstance(c, str)] if isinstance(chains, list) else []))
        if not protocols:
            raise AnswerError("defillama: no DeFi protocol with a TVL")
        protocols.sort(key=lambda p: p.tvl, reverse=True)
        return tuple(protocols[:limit])


class DefiLlamaStablecoins(Provider):
    id = "defillama_stablecoins"
    name = "DefiLlama stablecoins"
    category = "onchain"
    base_url = "https://stablecoins.llama.fi"
    endpoints = ("/stablecoins",)
    docs = "https://api-docs.defillama.com/#tag/stablecoins"
    rate = Rate(10, 60, burst=2)  # same fair-use terms as api.llama.fi
    probe_path = "/stablecoins"
    probe_interval = 1800.0
    timeout = 30.0
    slow_ms = 8000.0

    async def fetch_stablecoins(self, fetcher: Fetcher, limit: int, max_wait: float) -> StablecoinSnapshot:
        raw = await fetcher.get_json(self, "/stablecoins", {"includePrices": "true"}, max_wait=max_wait)
        return self.normalize_stablecoins(raw, limit)

    @classmethod
    def normalize_stablecoins(cls, raw: Any, limit: int = 10) -> StablecoinSnapshot:
        """``{"peggedAssets": [{name, symbol, pegType, circulating: {peggedUSD: ...}, price, ...}]}``. Only
        USD-pegged assets count: ``circulating.peggedUSD`` is their supply in dollars."""
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
            coins.append(Stablecoin(name=name, symbol=symbol, circulating_usd=supply, peg_type="peggedUSD"))
        if not coins:
            raise AnswerError("defillama: no USD stablecoin with a circulating supply")
        coins.sort(key=lambda c: c.circulating_usd, reverse=True)
        return StablecoinSnapshot(sum(c.circulating_usd for c in coins), tuple(coins[:limit]))


# -- gas over JSON-RPC ----------------------------------------------------------------------------------

def normalize_gas(gas_price: Any, block: Any) -> GasReading:
    """``eth_gasPrice`` (wei, hex) and the latest block's ``baseFeePerGas`` (absent before EIP-1559)."""
    if not isinstance(block, dict):
        raise AnswerError(f"expected the latest block, got {str(block)[:60]!r}")
    base_fee = block.get("baseFeePerGas")
    number = block.get("number")
    return GasReading(block_number=hex_int(number) if number is not None else None,
                      gas_price_gwei=hex_int(gas_price) / WEI_PER_GWEI,
                      base_fee_gwei=hex_int(base_fee) / WEI_PER_GWEI if base_fee is not None else None)


async def fetch_gas(node: JsonRpcNode, fetcher: Fetcher, max_wait: float) -> GasReading:
    gas_price = await node.call(fetcher, "eth_gasPrice", max_wait=max_wait)
    block = await node.call(fetcher, "eth_getBlockByNumber", ["latest", False], max_wait=max_wait)
    return normalize_gas(gas_price, block)
