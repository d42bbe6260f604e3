"""rpc_nodes: every declared public node checked on every run, all at once.

Each chain is a pool (``rpc_<chain>``) read with :meth:`Pool.gather`, so every node is asked, each through the
fetcher with its own budget and breaker: ``eth_chainId`` (compared with the chain's declared id) and
``eth_blockNumber``. Latency is the fetcher's measure of that ``eth_blockNumber`` call. A node's lag is the best
block among the nodes of its chain that answered with the right chain id, minus its own. A node is healthy when
it answered, is on the right chain, and is no further behind than :data:`LAG_TOLERANCE_SECONDS` of blocks.
An unreachable node carries its error; its block, latency and chain id stay empty, never zero.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from models.freshness import SourceState
from models.messages import iso, now_iso
from models.payloads import RpcChain, RpcNode, RpcNodesPayload
from services.base import BuildContext, Service
from sources.fetcher import Fetcher
from sources.pools import GatherResult, Pool
from sources.providers.rpc import CHAINS, ChainSpec, JsonRpcNode, hex_int, nodes_for

#: Concurrent calls to several nodes land a few seconds apart, and fast chains move many blocks meanwhile.
LAG_TOLERANCE_SECONDS = 30.0


@dataclass(frozen=True)
class NodeReading:
    chain_id: int
    block_number: int
    latency_ms: float | None


async def read_node(node: JsonRpcNode, fetcher: Fetcher, max_wait: float = 0.0) -> NodeReading:
    # One attempt each (``probe``): a status check reports how the node answers now, and a dead node must not
    # hold the whole run through retries and backoff.
    chain_id = hex_int(await node.call(fetcher, "eth_chainId", max_wait=max_wait, probe=True))
    block = hex_int(await node.call(fetcher, "eth_blockNumber", max_wait=max_wait, probe=True))
    # Read right after the call returned: nothing else of this node ran in between.
    latency = fetcher.runtime(node.id).health.response_time_ms
    return NodeReading(chain_id, block, latency)


def max_lag_blocks(chain: ChainSpec) -> int:
    return max(2, math.ceil(LAG_TOLERANCE_SECONDS / chain.block_seconds))


def summarize_chain(chain: ChainSpec, nodes: Sequence[JsonRpcNode], readings: Mapping[str, NodeReading],
                    sources: Mapping[str, SourceState], last_checks: Mapping[str, str | None]
                    ) -> tuple[dict[str, RpcNode], RpcChain]:
    """Pure: one chain's node views and its summary from what each node answered (or why not)."""
    on_chain = [r.block_number for r in readings.values() if r.chain_id == chain.chain_id]
    best = max(on_chain) if on_chain else None
    tolerance = max_lag_blocks(chain)
    views: dict[str, RpcNode] = {}
    healthy = 0
    for node in nodes:
        reading = readings.get(node.id)
        if reading is None:
            state = sources.get(node.id)
            views[node.id] = RpcNode(chain=chain.name, url=node.base_url, reachable=False,
                                     error=_why(state), last_check=last_checks.get(node.id))
            continue
        chain_ok = reading.chain_id == chain.chain_id
        lag = best - reading.block_number if chain_ok and best is not None else None
        if chain_ok and lag is not None and lag <= tolerance:
            healthy += 1
        views[node.id] = RpcNode(
            chain=chain.name, url=node.base_url, reachable=True, latency_ms=reading.latency_ms,
            block_number=reading.block_number, lag_blocks=lag, chain_id=reading.chain_id, chain_id_ok=chain_ok,
            error=None if chain_ok else f"chain id {reading.chain_id}, expected {chain.chain_id}",
            last_check=last_checks.get(node.id))
    return views, RpcChain(chain_id=chain.chain_id, best_block=best, nodes=len(nodes), healthy_nodes=healthy)


def _why(state: SourceState | None) -> str:
    if state is None:
        return "not checked"
    if state.status in ("ok", "error"):
        return state.error or state.status
    return f"{state.status}: {state.error}" if state.error else state.status


class RpcNodesService(Service):
    name = "rpc_nodes"

    def __init__(self, pools: Mapping[str, Pool[JsonRpcNode]], fetcher: Fetcher, *,
                 data_source: Literal["live", "replay"], max_wait: float = 0.0) -> None:
        self.pools = pools  # chain name -> pool of that chain's nodes
        self.fetcher = fetcher
        self.data_source = data_source
        self.max_wait = max_wait

    async def collect(self) -> Mapping[str, Any]:
        chains = list(self.pools)
        results = await asyncio.gather(*(self.pools[chain].gather(
            lambda n: read_node(n, self.fetcher, self.max_wait)) for chain in chains))
        nodes: dict[str, RpcNode] = {}
        summaries: dict[str, RpcChain] = {}
        for chain, result in zip(chains, results, strict=True):
            views, summaries[chain] = self._chain_view(chain, result)
            nodes.update(views)
        return RpcNodesPayload(
            nodes=nodes, chains=summaries,
            healthy_count=sum(c.healthy_nodes for c in summaries.values()),
            total_nodes=len(nodes), timestamp=now_iso(), data_source=self.data_source,
        ).model_dump(mode="json")

    def _chain_view(self, chain: str, result: GatherResult[NodeReading]) -> tuple[dict[str, RpcNode], RpcChain]:
        members = self.pools[chain].providers
        last_checks = {n.id: iso(self.fetcher.runtime(n.id).health.last_check) for n in members}
        return summarize_chain(CHAINS[chain], members, result.values, result.sources, last_checks)


def build(ctx: BuildContext) -> list[Service]:
    pools: dict[str, Pool[JsonRpcNode]] = {chain: ctx.pool(f"rpc_{chain}", nodes_for(chain)) for chain in CHAINS}
    # Nodes are shared with explorers and whale_tracking: a moment's wait for a token is not an outage.
    return [RpcNodesService(pools, ctx.fetcher, data_source=ctx.data_source,
                            max_wait=min(5.0, ctx.intervals["rpc_nodes"] / 4))]
