"""rpc_nodes: every declared public node checked on every run, all at once.

Each chain is a pool (``rpc_<chain>``) read with :meth:`Pool.gather`, so every node is asked, each through the
fetcher with its own budget and breaker: ``eth_chainId`` (compared with the chain's declared id) and its head,
``eth_getBlockByNumber("latest", false)`` (number and time in one answer). Latency is the fetcher's measure of
that block call. A node's lag is the best block among the nodes of its chain that answered with the right chain
id, minus its own.

The head's own time is compared with now (in replay: with when the answer was captured): a head older than the
chain's :attr:`~sources.providers.rpc.ChainSpec.head_max_age` is stale, whatever its lag, so a chain served by a
single node (lag 0 by definition) or by nodes stuck together is not healthy. A node is healthy when it answered,
is on the right chain, is no further behind than :data:`LAG_TOLERANCE_SECONDS` of blocks and its head is fresh.
A node that gives its head but not its chain id is reachable but not healthy (its chain is not checked).
An unreachable node carries its error; its block, latency and chain id stay empty, never zero.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from models.chain import RpcChain, RpcNode, RpcNodesPayload
from models.freshness import SourceState
from models.messages import epoch, iso, now_iso
from services.base import BuildContext, Service
from sources.errors import AnswerError, ProviderBadResponse
from sources.fetcher import Fetcher
from sources.limits import Clock
from sources.pools import GatherResult, Pool
from sources.providers.rpc import CHAINS, ChainSpec, JsonRpcNode, hex_int, nodes_for, normalize_block_head

#: Concurrent calls to several nodes land a few seconds apart, and fast chains move many blocks meanwhile.
LAG_TOLERANCE_SECONDS = 30.0


@dataclass(frozen=True)
class NodeReading:
    chain_id: int | None  # None: the node did not say (``chain_error``)
    block_number: int
    latency_ms: float | None
    block_time: float | None = None  # the head block's own time (Unix seconds)
    chain_error: str | None = None


async def read_node(node: JsonRpcNode, fetcher: Fetcher, max_wait: float = 0.0) -> NodeReading:
    """A node's chain id and head. One attempt each (``probe``): a status check reports how the node answers now,
    and a dead node must not hold the whole run through retries and backoff. Without its head a node is
    unreachable; without its chain id (an error answer: the node is there, a timeout or a rate limit says it is
    not) it is reachable, but its chain is not checked."""
    chain_id: int | None = None
    chain_error: str | None = None
    try:
        chain_id = hex_int(await node.call(fetcher, "eth_chainId", max_wait=max_wait, probe=True))
    except ProviderBadResponse as exc:
        chain_error = exc.message
    except AnswerError as exc:
        chain_error = str(exc)
    head = normalize_block_head(
        await node.call(fetcher, "eth_getBlockByNumber", ["latest", False], max_wait=max_wait, probe=True))
    # Read right after the call returned: nothing else of this node ran in between.
    latency = fetcher.runtime(node.id).health.response_time_ms
    return NodeReading(chain_id, head.number, latency, head.time, chain_error)


def max_lag_blocks(chain: ChainSpec) -> int:
    return max(2, math.ceil(LAG_TOLERANCE_SECONDS / chain.block_seconds))


def summarize_chain(chain: ChainSpec, nodes: Sequence[JsonRpcNode], readings: Mapping[str, NodeReading],
                    sources: Mapping[str, SourceState], last_checks: Mapping[str, str | None],
                    now: float | None = None) -> tuple[dict[str, RpcNode], RpcChain]:
    """Pure: one chain's node views and its summary from what each node answered (or why not), at wall time
    ``now``. A head's age counts from its block time to when it was read: ``now``, or in replay the capture time
    of its answer (``sources[id].recorded_at``)."""
    now = time.time() if now is None else now
    on_chain = {nid: r for nid, r in readings.items() if r.chain_id == chain.chain_id}
    best_id = max(on_chain, key=lambda nid: on_chain[nid].block_number, default=None)
    best = on_chain[best_id].block_number if best_id is not None else None
    views: dict[str, RpcNode] = {}
    healthy = 0
    for node in nodes:
        reading = readings.get(node.id)
        state = sources.get(node.id)
        if reading is None:
            views[node.id] = RpcNode(chain=chain.name, url=node.base_url, reachable=False,
                                     error=_why(state), last_check=last_checks.get(node.id))
            continue
        recorded_at = epoch(state.recorded_at) if state is not None else None
        age = (round(max(0.0, (recorded_at or now) - reading.block_time), 1)
               if reading.block_time is not None else None)
        stale = age > chain.head_max_age if age is not None else None
        chain_ok = reading.chain_id == chain.chain_id if reading.chain_id is not None else None
        lag = best - reading.block_number if chain_ok and best is not None else None
        problems = _problems(chain, reading, chain_ok, lag, age)
        ok = not problems
        healthy += ok
        views[node.id] = RpcNode(
            chain=chain.name, url=node.base_url, reachable=True, latency_ms=reading.latency_ms,
            block_number=reading.block_number, lag_blocks=lag, chain_id=reading.chain_id, chain_id_ok=chain_ok,
            error="; ".join(problems) or None, last_check=last_checks.get(node.id),
            block_time=iso(reading.block_time), head_age_seconds=age, head_stale=stale, healthy=ok,
            recorded_at=iso(recorded_at))
    best_time = on_chain[best_id].block_time if best_id is not None else None
    return views, RpcChain(chain_id=chain.chain_id, best_block=best, nodes=len(nodes), healthy_nodes=healthy,
                           best_block_time=iso(best_time), head_max_age_seconds=chain.head_max_age)


def _problems(chain: ChainSpec, reading: NodeReading, chain_ok: bool | None, lag: int | None,
              age: float | None) -> list[str]:
    """Why a node that answered is not healthy (nothing when it is)."""
    problems = []
    if chain_ok is None:
        problems.append(f"chain id not checked ({reading.chain_error or 'no answer'})")
    elif not chain_ok:
        problems.append(f"chain id {reading.chain_id}, expected {chain.chain_id}")
    if lag is not None and lag > max_lag_blocks(chain):
        problems.append(f"{lag} blocks behind the chain's best node")
    if age is None:
        problems.append("its head block has no time we can read")
    elif age > chain.head_max_age:
        problems.append(f"head block {reading.block_number} is {age:.0f} s old (of {iso(reading.block_time)}), "
                        f"over the {chain.head_max_age:.0f} s a {chain.name} head may be")
    return problems


def _why(state: SourceState | None) -> str:
    if state is None:
        return "not checked"
    if state.status in ("ok", "error"):
        return state.error or state.status
    return f"{state.status}: {state.error}" if state.error else state.status


class RpcNodesService(Service):
    name = "rpc_nodes"

    def __init__(self, pools: Mapping[str, Pool[JsonRpcNode]], fetcher: Fetcher, *,
                 data_source: Literal["live", "replay"], max_wait: float = 0.0, clock: Clock = time.time) -> None:
        self.pools = pools  # chain name -> pool of that chain's nodes
        self.fetcher = fetcher
        self.data_source = data_source
        self.max_wait = max_wait
        self._clock = clock  # wall time, to judge how old each head is

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
        return summarize_chain(CHAINS[chain], members, result.values, result.sources, last_checks, self._clock())


def build(ctx: BuildContext) -> list[Service]:
    pools: dict[str, Pool[JsonRpcNode]] = {chain: ctx.pool(f"rpc_{chain}", nodes_for(chain)) for chain in CHAINS}
    # Nodes are shared with explorers and whale_tracking: a moment's wait for a token is not an outage.
    return [RpcNodesService(pools, ctx.fetcher, data_source=ctx.data_source,
                            max_wait=min(5.0, ctx.intervals["rpc_nodes"] / 4))]
