"""Public JSON-RPC nodes (keyless), one provider per node, the JSON-RPC call they share, and the one reader of
a node's gas figures (the explorers' Ethereum section and onchain's gas both use it).

Each node is its own provider (its own budget, breaker and health), declared in :data:`NODES`. Ankr now needs a
key and polygon-rpc.com closed its public access (``providers-and-models.md``), so neither is listed.

A node's head is its ``latest`` block: number and time in one answer, so the time is that very block's. A head
older than its chain's :attr:`ChainSpec.head_max_age` is stale, however far the node is from its peers.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from typing import Any

from models.chain import GasFigures
from models.messages import iso
from sources.errors import AnswerError, ProviderBadResponse
from sources.fetcher import Fetcher, Provider
from sources.limits import Rate
from sources.providers.values import SAFE_INTEGER, provider_time

_ids = itertools.count(1)


#: A JSON-RPC quantity: at most 256 bits (64 hex digits).
_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,64}")
UINT256_MAX = 2**256 - 1  # amounts in wei may be that large; no block number, chain id or gas price comes near


def hex_int(value: Any, maximum: int = SAFE_INTEGER) -> int:
    """A JSON-RPC quantity (``"0x1b4"``) as int, at most ``maximum``; AnswerError when it is not one.

    The bound matters: a node answering a 300-digit "block number" must be a bad answer of that node, not an
    OverflowError in the float arithmetic after it (wei to gwei), nor a payload orjson cannot serialise."""
    if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
        raise AnswerError(f"expected a hex quantity, got {str(value)[:60]!r}")
    result = int(value, 16)
    if result > maximum:
        raise AnswerError(f"quantity {value[:24]}... is out of range")
    return result


def rpc_result(raw: Any) -> Any:
    """The ``result`` of a JSON-RPC response; its ``error`` (or a missing result) as AnswerError."""
    if not isinstance(raw, dict):
        raise AnswerError(f"expected a JSON-RPC object, got {type(raw).__name__}")
    if raw.get("error") is not None:
        error = raw["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise AnswerError(f"JSON-RPC error: {message}")
    if "result" not in raw:
        raise AnswerError("JSON-RPC response without result")
    return raw["result"]


WEI_PER_GWEI = 1_000_000_000


def _gwei(wei: int) -> float:
    """Wei precision is kept: a Base or Optimism base fee is a few hundred wei, far below a gwei."""
    return round(wei / WEI_PER_GWEI, 9)


@dataclass(frozen=True)
class BlockHead:
    """What a block header says of the chain's head: its number, its own time (None when the block has none we
    can believe, e.g. a test chain's 1970 timestamp) and, since London, its base fee."""

    number: int
    time: float | None
    base_fee_wei: int | None


def normalize_block_head(block: Any) -> BlockHead:
    """The result of ``eth_getBlockByNumber("latest", false)``: ``number``, ``timestamp`` (Unix seconds) and
    ``baseFeePerGas``, quantities as hex strings."""
    if not isinstance(block, dict):
        raise AnswerError(f"eth_getBlockByNumber: no block in the answer ({str(block)[:60]})")
    number, timestamp, base_fee = block.get("number"), block.get("timestamp"), block.get("baseFeePerGas")
    if number is None:
        raise AnswerError("eth_getBlockByNumber: a block without its number")
    return BlockHead(number=hex_int(number),
                     time=provider_time(hex_int(timestamp)) if timestamp is not None else None,
                     base_fee_wei=hex_int(base_fee) if base_fee is not None else None)


def normalize_gas(gas_price: Any, block: Any, *, gas_price_error: str | None = None) -> GasFigures:
    """The results of ``eth_gasPrice`` and ``eth_getBlockByNumber("latest", false)``: quantities in wei as hex
    strings. ``gas_price`` None: the node gave no gas price (``gas_price_error`` says why); the block's base fee
    is still a real figure, so it is shown alone. Without either there is no gas figure at all."""
    head = normalize_block_head(block)
    price = _gwei(hex_int(gas_price)) if gas_price is not None else None
    if price is None and head.base_fee_wei is None:
        raise AnswerError(f"no gas price ({gas_price_error or 'not given'}) and no base fee in block {head.number}")
    return GasFigures(block_number=head.number, gas_price_gwei=price,
                      base_fee_gwei=_gwei(head.base_fee_wei) if head.base_fee_wei is not None else None,
                      block_time=iso(head.time),
                      gas_price_error=f"eth_gasPrice: {gas_price_error}" if price is None and gas_price_error
                      else None)


async def fetch_gas(node: JsonRpcNode, fetcher: Fetcher, max_wait: float) -> GasFigures:
    """One reading of a node's gas: what the explorers' Ethereum section and onchain's gas figures show. The gas
    price first, then the block, so the figures are dated by the block they were read at (and, in replay, by its
    capture). A node that answers the gas price with an error but gives the block still gives its base fee (one
    that times out or limits us is not asked again this run)."""
    gas_price: Any = None
    failure: ProviderBadResponse | AnswerError | None = None
    try:
        gas_price = await node.call(fetcher, "eth_gasPrice", max_wait=max_wait)
    except (ProviderBadResponse, AnswerError) as exc:
        failure = exc
    block = await node.call(fetcher, "eth_getBlockByNumber", ["latest", False], max_wait=max_wait)
    if failure is not None and normalize_block_head(block).base_fee_wei is None:
        raise failure  # nothing to show without the gas price: the node failed as its gas price call did
    error = failure.message if isinstance(failure, ProviderBadResponse) else str(failure) if failure else None
    return normalize_gas(gas_price, block, gas_price_error=error)


class JsonRpcNode(Provider):
    """A public EVM node. Subclasses (or :func:`node`) set ``id``, ``name``, ``base_url``, ``chain`` and
    ``chain_id``."""

    category = "rpc"
    endpoints = ("eth_chainId", "eth_blockNumber", "eth_gasPrice", "eth_getBlockByNumber")  # JSON-RPC methods
    chain: str = ""
    chain_id: int = 0
    rate = Rate(2, 1, burst=5)  # public nodes allow far more; we need a handful of calls a minute
    probe_interval = 60.0
    slow_ms = 1500.0

    async def call(self, fetcher: Fetcher, method: str, params: list[Any] | None = None,
                   *, max_wait: float = 0.0, probe: bool = False) -> Any:
        """The ``result`` of one call; a JSON-RPC ``error`` raises AnswerError."""
        return rpc_result(await self.call_raw(fetcher, method, params, max_wait=max_wait, probe=probe))

    async def call_raw(self, fetcher: Fetcher, method: str, params: list[Any] | None = None,
                       *, max_wait: float = 0.0, probe: bool = False) -> Any:
        """The whole decoded answer, error object included, for normalisers that read it themselves."""
        body = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params or []}
        response = await fetcher.request(self, "POST", "", json=body, max_wait=max_wait, probe=probe)
        return fetcher.decode_json(self, response)

    async def probe(self, fetcher: Fetcher) -> None:
        await self.call(fetcher, "eth_blockNumber", probe=True)


#: A head may be this many of its chain's block intervals old before it counts as stale (a few missed slots or a
#: slow block are normal), and never less than :data:`HEAD_MAX_AGE_FLOOR` seconds: a fast chain's head is read a
#: few seconds after it was made, and clocks differ by seconds.
HEAD_MAX_AGE_BLOCKS = 10
HEAD_MAX_AGE_FLOOR = 60.0


@dataclass(frozen=True)
class ChainSpec:
    name: str
    chain_id: int
    block_seconds: float  # the chain's usual block interval, to judge how far behind a node may fall

    @property
    def head_max_age(self) -> float:
        """How old (by its own block time) a head may be before it is stale: 120 s on Ethereum, 60 s on the
        others."""
        return max(HEAD_MAX_AGE_FLOOR, HEAD_MAX_AGE_BLOCKS * self.block_seconds)


#: The chains :data:`NODES` covers. Block intervals: Ethereum 12 s slots, BNB Chain 0.75 s since its Maxwell
#: upgrade (2025), Polygon PoS and the OP-stack chains 2 s, Arbitrum One about 0.25 s.
CHAINS: dict[str, ChainSpec] = {spec.name: spec for spec in (
    ChainSpec("ethereum", 1, 12.0),
    ChainSpec("bsc", 56, 0.75),
    ChainSpec("polygon", 137, 2.0),
    ChainSpec("arbitrum", 42161, 0.25),
    ChainSpec("base", 8453, 2.0),
    ChainSpec("optimism", 10, 2.0),
)}


@dataclass(frozen=True)
class NodeSpec:
    id: str
    name: str
    url: str
    chain: str
    chain_id: int


NODES: tuple[NodeSpec, ...] = (
    NodeSpec("rpc_eth_publicnode", "PublicNode Ethereum", "https://ethereum-rpc.publicnode.com", "ethereum", 1),
    NodeSpec("rpc_eth_llamarpc", "LlamaRPC Ethereum", "https://eth.llamarpc.com", "ethereum", 1),
    NodeSpec("rpc_eth_drpc", "dRPC Ethereum", "https://eth.drpc.org", "ethereum", 1),
    NodeSpec("rpc_eth_1rpc", "1RPC Ethereum", "https://1rpc.io/eth", "ethereum", 1),
    NodeSpec("rpc_eth_cloudflare", "Cloudflare Ethereum", "https://cloudflare-eth.com", "ethereum", 1),
    NodeSpec("rpc_bsc_binance", "BNB Chain dataseed", "https://bsc-dataseed.binance.org", "bsc", 56),
    NodeSpec("rpc_bsc_publicnode", "PublicNode BSC", "https://bsc-rpc.publicnode.com", "bsc", 56),
    NodeSpec("rpc_bsc_drpc", "dRPC BSC", "https://bsc.drpc.org", "bsc", 56),
    NodeSpec("rpc_polygon_publicnode", "PublicNode Polygon", "https://polygon-bor-rpc.publicnode.com", "polygon",
             137),
    NodeSpec("rpc_polygon_drpc", "dRPC Polygon", "https://polygon.drpc.org", "polygon", 137),
    NodeSpec("rpc_arbitrum_publicnode", "PublicNode Arbitrum One", "https://arbitrum-one-rpc.publicnode.com",
             "arbitrum", 42161),
    NodeSpec("rpc_base_publicnode", "PublicNode Base", "https://base-rpc.publicnode.com", "base", 8453),
    NodeSpec("rpc_optimism_publicnode", "PublicNode OP Mainnet", "https://optimism-rpc.publicnode.com", "optimism",
             10),
)


@functools.cache
def node(spec: NodeSpec) -> JsonRpcNode:
    """A provider instance for one declared node (a class per node keeps the declarative style)."""
    cls = type(f"Node_{spec.id}", (JsonRpcNode,), {
        "id": spec.id, "name": spec.name, "base_url": spec.url, "chain": spec.chain, "chain_id": spec.chain_id,
        "docs": "https://ethereum.org/en/developers/docs/apis/json-rpc/",
    })
    return cls()


def nodes_for(chain: str) -> list[JsonRpcNode]:
    return [node(spec) for spec in NODES if spec.chain == chain]
