"""The chain streams' payloads: explorers (Bitcoin and Ethereum network figures), rpc_nodes and onchain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from models.freshness import Freshness
from models.states import DataStatus


class BitcoinFigures(BaseModel):
    """Bitcoin from a block explorer, as its normaliser reads it. ``fees`` are always in sat/vB; a fee a source
    gives per byte (Blockchair) is not one of them and has its own key. Hashrate in H/s."""

    height: int | None = None
    fees: dict[str, float] = Field(default_factory=dict)  # sat/vB: fastest, half_hour, hour, economy, minimum
    mempool_count: int | None = None
    mempool_vsize: int | None = None
    hashrate: float | None = None
    difficulty: float | None = None
    last_block_time: str | None = None  # the tip block's own time
    #: Blockchair's suggested fee, in sat per byte of the whole transaction (not per vbyte: for a SegWit
    #: transaction a byte rate is lower than the vbyte rate of the same fee).
    suggested_fee_sat_per_byte: float | None = None
    #: When the source computed its figures (blockchain.info's ``timestamp``), where it says so.
    stats_time: str | None = None


class BitcoinNetwork(Freshness, BitcoinFigures):
    source: str | None = None


class EthereumFigures(BaseModel):
    """Ethereum from an explorer or a public node, as its normaliser reads it. Gas figures in gwei; ``gas_oracle``
    keys are the source's own: safe/propose/fast (Etherscan) or sloth/slow/normal/fast/cheetah (Blockchair)."""

    block_number: int | None = None
    gas_price_gwei: float | None = None
    base_fee_gwei: float | None = None
    gas_oracle: dict[str, float] = Field(default_factory=dict)
    last_block_time: str | None = None
    gas_price_error: str | None = None  # why ``gas_price_gwei`` is absent while the block was read


class EthereumNetwork(Freshness, EthereumFigures):
    source: str | None = None


class ExplorersPayload(BaseModel):
    bitcoin: BitcoinNetwork
    ethereum: EthereumNetwork
    status: DataStatus
    data_source: Literal["live", "replay"] = "live"
    timestamp: str




class RpcNode(BaseModel):
    chain: str
    url: str
    reachable: bool
    latency_ms: float | None = None
    block_number: int | None = None
    lag_blocks: int | None = None  # behind the best node of its chain
    chain_id: int | None = None
    chain_id_ok: bool | None = None  # None: the node did not say (``error`` says why)
    error: str | None = None
    last_check: str | None = None
    block_time: str | None = None  # the head block's own time
    #: How old the head block was when it was read (in replay: when its answer was captured), by its own time.
    head_age_seconds: float | None = None
    head_stale: bool | None = None  # older than its chain's ``head_max_age_seconds``: a stuck node, whatever its lag
    healthy: bool = False  # reachable, on the right chain, not behind, and its head fresh
    recorded_at: str | None = None  # replay only: when the head's answer was captured


class RpcChain(BaseModel):
    chain_id: int
    best_block: int | None
    nodes: int
    healthy_nodes: int
    best_block_time: str | None = None
    head_max_age_seconds: float | None = None  # a head older than this (by its block time) is stale


class RpcNodesPayload(BaseModel):
    nodes: dict[str, RpcNode]
    chains: dict[str, RpcChain]
    healthy_count: int
    total_nodes: int
    timestamp: str
    data_source: Literal["live", "replay"] = "live"



class ChainTvl(BaseModel):
    name: str
    tvl: float
    token_symbol: str | None = None


class DefiProtocol(BaseModel):
    name: str
    category: str | None = None
    tvl: float
    change_1d: float | None = None  # percent
    change_7d: float | None = None
    chains: list[str] = Field(default_factory=list)


class Stablecoin(BaseModel):
    name: str
    symbol: str
    #: Supply valued at the coin's own price; None when DefiLlama gave no price (``circulating`` is then all we know).
    circulating_usd: float | None
    peg_type: str | None = None
    circulating: float | None = None  # supply in units of the peg (DefiLlama's ``circulating.peggedUSD``)
    price_usd: float | None = None  # DefiLlama's price of the coin


class TvlSection(Freshness):
    source: str | None = None
    total_tvl: float | None = None
    chains: list[ChainTvl] = Field(default_factory=list)


class ProtocolsSection(Freshness):
    source: str | None = None
    top: list[DefiProtocol] = Field(default_factory=list)


class StablecoinsSection(Freshness):
    source: str | None = None
    #: The USD value of the USD-pegged coins DefiLlama priced, each at its own price.
    total_circulating_usd: float | None = None
    top: list[Stablecoin] = Field(default_factory=list)
    #: Coins without a price: not in ``total_circulating_usd``; their supply (in units of the peg) is counted here.
    unpriced_count: int | None = None
    unpriced_circulating: float | None = None


class GasFigures(BaseModel):
    """One chain's gas, read from one of its public nodes, in gwei (wei precision kept: a Base or Optimism base fee
    is a few hundred wei), at the block it names. Gas read at a block older than the chain's tolerance is
    ``stale``: a stuck node's gas is not today's."""

    gas_price_gwei: float | None = None  # None when the node gave none (``gas_price_error``)
    base_fee_gwei: float | None = None  # None on a chain (or block) without EIP-1559
    block_number: int | None = None
    block_time: str | None = None  # the block's own time
    gas_price_error: str | None = None
    #: Set by the stream from the pool's answer; a node's normaliser leaves them out.
    source: str | None = None  # the node that answered
    fetched_at: str | None = None
    status: DataStatus | None = None  # ok, or stale when the block is older than ``max_age_seconds``
    age_seconds: float | None = None  # the block's age when read (in replay: when captured)
    max_age_seconds: float | None = None
    recorded_at: str | None = None  # replay only: when the answer was captured
    message: str | None = None


class OnchainPayload(BaseModel):
    tvl: TvlSection
    protocols: ProtocolsSection
    stablecoins: StablecoinsSection
    gas: dict[str, GasFigures] = Field(default_factory=dict)  # chain -> figures; a chain no node answered for is absent
    gas_errors: dict[str, str] = Field(default_factory=dict)  # chain -> why it is absent
    status: DataStatus
    data_source: Literal["live", "replay"] = "live"
    timestamp: str
