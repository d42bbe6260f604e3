"""The JSON-RPC node helpers, the per-chain summary, and the rpc_nodes service over mocked and replayed nodes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from models.freshness import SourceState
from models.messages import epoch, iso
from services import rpc_nodes
from services.rpc_nodes import NodeReading, RpcNodesService, max_lag_blocks, summarize_chain
from sources.errors import AnswerError
from sources.fetcher import Fetcher
from sources.pools import Pool
from sources.providers.rpc import (
    CHAINS,
    NODES,
    UINT256_MAX,
    JsonRpcNode,
    hex_int,
    node,
    nodes_for,
    rpc_result,
)
from sources.replay import ReplayTransport
from tests.support.context import build_context
from tests.support.recordings import recorded
from tests.support.settings import make_settings


def test_declared_nodes_match_their_chains() -> None:
    assert {spec.chain for spec in NODES} == set(CHAINS)
    for spec in NODES:
        assert spec.chain_id == CHAINS[spec.chain].chain_id, spec.id
    assert len({spec.id for spec in NODES}) == len(NODES) and len({spec.url for spec in NODES}) == len(NODES)


def test_rpc_result_and_hex_int_on_recorded_bodies() -> None:
    assert hex_int(rpc_result(orjson.loads(recorded("rpc/eth_chainId-base.json")))) == 8453
    assert hex_int(rpc_result(orjson.loads(recorded("rpc/eth_blockNumber-ethereum.json")))) == 22130747
    with pytest.raises(AnswerError, match="invalid argument 0"):
        rpc_result(orjson.loads(recorded("rpc/error-invalid-argument.json")))
    with pytest.raises(AnswerError, match="without result"):
        rpc_result({"jsonrpc": "2.0", "id": 1})
    with pytest.raises(AnswerError, match="hex quantity"):
        hex_int(rpc_result(orjson.loads(recorded("rpc/eth_getBlockByNumber-notfound.json"))))


# -- the pure per-chain summary ----------------------------------------------------------------------------

#: Our clock in the pure summary tests, and a head made 12 s before it.
NOW = 1_780_000_000.0
FRESH = NOW - 12


def test_summary_lag_wrong_chain_and_unreachable() -> None:
    chain = CHAINS["ethereum"]
    members = nodes_for("ethereum")[:4]
    a, b, c, d = (n.id for n in members)
    readings = {a: NodeReading(1, 100, 120.5, FRESH), b: NodeReading(1, 97, 300.0, FRESH - 36),
                c: NodeReading(0xC72DD9D5E883E, 500, 80.0, FRESH)}  # a test chain's id, a block number far ahead
    sources = {d: SourceState(status="error", error="timed out after 10 s")}
    views, summary = summarize_chain(chain, members, readings, sources, {a: "2026-01-01T00:00:00.000Z"}, NOW)
    assert summary.best_block == 100  # the wrong-chain node's 500 is not counted
    assert (views[a].lag_blocks, views[b].lag_blocks) == (0, 3)
    assert views[a].latency_ms == 120.5 and views[a].last_check == "2026-01-01T00:00:00.000Z"
    assert views[c].chain_id_ok is False and views[c].lag_blocks is None and "expected 1" in (views[c].error or "")
    assert views[d].reachable is False and views[d].error == "timed out after 10 s"
    assert views[d].block_number is None and views[d].latency_ms is None and views[d].chain_id is None
    assert max_lag_blocks(chain) == 3
    assert summary.healthy_nodes == 2 and summary.nodes == 4 and summary.chain_id == 1
    assert views[a].healthy and views[b].healthy and not views[c].healthy and not views[d].healthy
    assert views[a].head_age_seconds == 12 and views[b].head_age_seconds == 48 and views[a].head_stale is False
    assert summary.best_block_time == iso(FRESH) and summary.head_max_age_seconds == 120


def test_a_stale_head_is_unhealthy_whatever_its_lag() -> None:
    """A chain with one node has no lag to judge it by (0 by definition), and nodes stuck together lag none
    behind each other: only the head's own time shows they are stuck."""
    [single] = nodes_for("base")
    chain = CHAINS["base"]
    stuck = NOW - chain.head_max_age - 1
    views, summary = summarize_chain(chain, [single], {single.id: NodeReading(8453, 1000, 50.0, stuck)}, {}, {}, NOW)
    view = views[single.id]
    assert view.lag_blocks == 0 and view.head_stale is True and view.healthy is False
    assert summary.healthy_nodes == 0 and "is 61 s old" in (view.error or "") and "over the 60 s" in (view.error or "")
    fresh_views, fresh = summarize_chain(chain, [single], {single.id: NodeReading(8453, 1000, 50.0, FRESH)}, {}, {},
                                         NOW)
    assert fresh.healthy_nodes == 1 and fresh_views[single.id].error is None
    eth = nodes_for("ethereum")[:2]  # two nodes stuck on the same block
    readings = {n.id: NodeReading(1, 500, 10.0, NOW - 600) for n in eth}
    views, summary = summarize_chain(CHAINS["ethereum"], eth, readings, {}, {}, NOW)
    assert summary.healthy_nodes == 0 and all(v.lag_blocks == 0 and v.head_stale for v in views.values())


def test_head_age_counts_from_the_capture_in_replay() -> None:
    [single] = nodes_for("optimism")
    captured = "2023-05-31T04:06:36.000Z"
    reading = NodeReading(10, 103110422, 30.0, epoch("2023-05-31T04:06:34Z"))
    sources = {single.id: SourceState(status="ok", recorded_at=captured)}
    views, _ = summarize_chain(CHAINS["optimism"], [single], {single.id: reading}, sources, {}, NOW)
    view = views[single.id]
    assert view.head_age_seconds == 2 and view.healthy and view.recorded_at == captured
    assert view.block_time == "2023-05-31T04:06:34.000Z"


def test_a_node_that_hides_its_chain_id_is_reachable_but_not_healthy() -> None:
    members = nodes_for("polygon")
    readings = {m.id: NodeReading(None, 43352696, 20.0, FRESH, chain_error="HTTP 404: no recording")
                for m in members}
    views, summary = summarize_chain(CHAINS["polygon"], members, readings, {}, {}, NOW)
    assert summary.healthy_nodes == 0 and summary.best_block is None  # no node of a checked chain
    view = views[members[0].id]
    assert view.reachable and view.chain_id is None and view.chain_id_ok is None and view.lag_blocks is None
    assert view.error == "chain id not checked (HTTP 404: no recording)"


def test_a_head_without_a_believable_time_is_not_healthy() -> None:
    [single] = nodes_for("arbitrum")
    views, _ = summarize_chain(CHAINS["arbitrum"], [single], {single.id: NodeReading(42161, 5, 1.0, None)}, {}, {},
                               NOW)
    assert views[single.id].healthy is False and views[single.id].head_age_seconds is None
    assert "no time" in (views[single.id].error or "")


def test_head_tolerance_per_chain() -> None:
    assert CHAINS["ethereum"].head_max_age == 120  # ten 12 s slots
    assert all(CHAINS[c].head_max_age == 60 for c in ("bsc", "polygon", "arbitrum", "base", "optimism"))


def test_summary_when_no_node_answers() -> None:
    members = nodes_for("polygon")
    sources = {members[0].id: SourceState(status="circuit_open", error="HTTP 502: Bad Gateway")}
    views, summary = summarize_chain(CHAINS["polygon"], members, {}, sources, {}, NOW)
    assert summary.best_block is None and summary.healthy_nodes == 0
    assert views[members[0].id].error == "circuit_open: HTTP 502: Bad Gateway"
    assert views[members[1].id].error == "not checked"


def test_lag_tolerance_follows_block_time() -> None:
    assert max_lag_blocks(CHAINS["arbitrum"]) == 120 and max_lag_blocks(CHAINS["bsc"]) == 40


# -- the service --------------------------------------------------------------------------------------------

def rpc_body(result: Any) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": result})


Answer = Callable[[str], httpx.Response]


def nodes_transport(answers: dict[str, Answer], calls: list[tuple[str, str]]) -> httpx.MockTransport:
    """Answers each node URL by JSON-RPC method; an unknown URL fails to connect."""
    def handle(request: httpx.Request) -> httpx.Response:
        url = str(request.url).rstrip("/")
        method = json.loads(request.content)["method"]
        calls.append((url, method))
        if url not in answers:
            raise httpx.ConnectError(f"no route to {url}", request=request)
        return answers[url](method)
    return httpx.MockTransport(handle)


def head(block: int, made: float = FRESH) -> dict[str, str]:
    """A block header in the shape of ``eth_getBlockByNumber("latest", false)``, cut to the fields read."""
    return {"number": hex(block), "timestamp": hex(int(made)), "hash": "0x" + "ab" * 32}


def answering(chain_id: int, block: int, made: float = FRESH) -> Answer:
    def answer(method: str) -> httpx.Response:
        result = {"eth_chainId": hex(chain_id), "eth_getBlockByNumber": head(block, made)}[method]
        return httpx.Response(200, content=rpc_body(result), headers={"content-type": "application/json"})
    return answer


def service(transport: httpx.AsyncBaseTransport, chains: list[str]) -> tuple[RpcNodesService, Fetcher]:
    fetcher = Fetcher(httpx.AsyncClient(transport=transport), retries=0, backoff=0.001, replay=True)
    pools: dict[str, Pool[JsonRpcNode]] = {chain: Pool(f"rpc_{chain}", nodes_for(chain), fetcher) for chain in chains}
    return RpcNodesService(pools, fetcher, data_source="live", clock=lambda: NOW), fetcher


def url(node_id: str) -> str:
    return next(spec.url for spec in NODES if spec.id == node_id)


async def test_every_node_checked_with_lag_and_chain_check() -> None:
    calls: list[tuple[str, str]] = []
    answers = {
        url("rpc_eth_publicnode"): answering(1, 21_000_000),
        url("rpc_eth_llamarpc"): answering(1, 20_999_998),
        url("rpc_eth_drpc"): answering(11155111, 7_000_000),  # a Sepolia node behind a mainnet URL
        url("rpc_eth_1rpc"): lambda m: httpx.Response(200, content=recorded("rpc/error-invalid-argument.json")),
        # rpc_eth_cloudflare: no route, the connection fails
        url("rpc_bsc_binance"): answering(56, 45_000_000),
        url("rpc_bsc_publicnode"): answering(56, 44_999_900),  # 100 blocks = 75 s behind: over 30 s
        url("rpc_bsc_drpc"): lambda m: httpx.Response(429, headers={"retry-after": "60"}),
    }
    svc, _ = service(nodes_transport(answers, calls), ["ethereum", "bsc"])
    payload = await svc.collect()
    json.dumps(payload)
    assert {u for u, _ in calls} == {spec.url for spec in NODES if spec.chain in ("ethereum", "bsc")}
    nodes = payload["nodes"]
    assert payload["total_nodes"] == 8 and payload["timestamp"].endswith("Z")
    assert nodes["rpc_eth_publicnode"] | {"latency_ms": None, "last_check": None} == {
        "chain": "ethereum", "url": "https://ethereum-rpc.publicnode.com", "reachable": True, "latency_ms": None,
        "block_number": 21_000_000, "lag_blocks": 0, "chain_id": 1, "chain_id_ok": True, "error": None,
        "last_check": None, "block_time": iso(FRESH), "head_age_seconds": 12.0, "head_stale": False,
        "healthy": True, "recorded_at": None}
    assert nodes["rpc_eth_publicnode"]["latency_ms"] >= 0 and nodes["rpc_eth_publicnode"]["last_check"]
    assert nodes["rpc_eth_llamarpc"]["lag_blocks"] == 2
    assert nodes["rpc_eth_drpc"]["chain_id_ok"] is False and nodes["rpc_eth_drpc"]["lag_blocks"] is None
    assert nodes["rpc_eth_1rpc"]["reachable"] is False and "invalid argument" in nodes["rpc_eth_1rpc"]["error"]
    assert nodes["rpc_eth_cloudflare"]["reachable"] is False and "ConnectError" in nodes["rpc_eth_cloudflare"]["error"]
    assert nodes["rpc_eth_cloudflare"]["block_number"] is None and nodes["rpc_eth_cloudflare"]["latency_ms"] is None
    assert nodes["rpc_bsc_publicnode"]["lag_blocks"] == 100
    assert nodes["rpc_bsc_drpc"]["reachable"] is False and "429" in nodes["rpc_bsc_drpc"]["error"]
    assert payload["chains"]["ethereum"] == {"chain_id": 1, "best_block": 21_000_000, "nodes": 5, "healthy_nodes": 2,
                                             "best_block_time": iso(FRESH), "head_max_age_seconds": 120.0}
    assert payload["chains"]["bsc"] == {"chain_id": 56, "best_block": 45_000_000, "nodes": 3, "healthy_nodes": 1,
                                        "best_block_time": iso(FRESH), "head_max_age_seconds": 60.0}
    assert payload["healthy_count"] == 3


async def test_an_absurd_block_number_is_that_nodes_bad_answer() -> None:
    """A 160-bit "block number" is no block: taken as one it would make every other node lag and the payload
    unpublishable (orjson writes no integer above 64 bits)."""
    calls: list[tuple[str, str]] = []
    answers = {url("rpc_base_publicnode"): answering(8453, 2**160)}
    svc, _ = service(nodes_transport(answers, calls), ["base"])
    payload = await svc.collect()
    orjson.dumps(payload)
    node = payload["nodes"]["rpc_base_publicnode"]
    assert node["reachable"] is False and node["block_number"] is None and "out of range" in node["error"]
    assert payload["chains"]["base"]["best_block"] is None


def test_hex_quantities_are_bounded() -> None:
    assert hex_int("0x" + "f" * 13) == 16**13 - 1
    assert hex_int("0x" + "f" * 64, UINT256_MAX) == UINT256_MAX  # an amount in wei may be that large
    for bad in ("0x" + "f" * 14, "0x" + "f" * 65, "0x", "0x-1", "0x_1", " 0x1", "0x1 ", 17):
        with pytest.raises(AnswerError):
            hex_int(bad)


async def test_nodes_are_checked_concurrently() -> None:
    members = nodes_for("ethereum")
    barrier = asyncio.Barrier(len(members))

    async def handle(request: httpx.Request) -> httpx.Response:
        method = json.loads(request.content)["method"]
        if method == "eth_chainId":
            await barrier.wait()  # passes only once every node's first call is in flight
        result = "0x1" if method == "eth_chainId" else head(16)
        return httpx.Response(200, content=rpc_body(result), headers={"content-type": "application/json"})

    svc, _ = service(httpx.MockTransport(handle), ["ethereum"])
    payload = await asyncio.wait_for(svc.collect(), timeout=5)
    assert payload["chains"]["ethereum"]["healthy_nodes"] == len(members)


async def test_a_dead_node_is_skipped_once_its_breaker_opens() -> None:
    calls: list[tuple[str, str]] = []
    answers = {url("rpc_optimism_publicnode"): lambda m: httpx.Response(502)}
    svc, _ = service(nodes_transport(answers, calls), ["optimism"])
    for _ in range(3):
        await svc.collect()
    assert len(calls) == 3  # one attempt per run: a status check does not retry
    payloads = [await svc.collect() for _ in range(4)]
    # its chain has no other node: a trial every other call of the pool, so a node back is seen soon
    assert 3 < len(calls) <= 5
    assert any(p["nodes"]["rpc_optimism_publicnode"]["error"].startswith("circuit_open: HTTP 502") for p in payloads)


async def test_replay_build_end_to_end(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with httpx.AsyncClient(transport=ReplayTransport()) as http:
        ctx = build_context(settings, Fetcher(http, budgets=False, replay=True))
        svc: Any  # build() gives the base Service, whose collect() may return None (this one never does)
        [svc] = rpc_nodes.build(ctx)
        payload: dict[str, Any] = dict(await svc.collect())
    assert {f"rpc_{chain}" for chain in CHAINS} <= set(ctx.pools)
    assert payload["data_source"] == "replay" and payload["total_nodes"] == len(NODES)
    chains, nodes = payload["chains"], payload["nodes"]
    # Ethereum: the mainnet capture of 2025-03-26 (not a test chain's block 54 of 1970), 9 s old when captured.
    assert chains["ethereum"]["best_block"] == 22130747 and chains["ethereum"]["healthy_nodes"] == 5
    assert chains["ethereum"]["best_block_time"] == "2025-03-26T11:21:47.000Z"
    assert nodes["rpc_eth_publicnode"]["head_age_seconds"] == 9
    assert nodes["rpc_eth_publicnode"]["recorded_at"] == "2025-03-26T11:21:56.000Z"
    # Single-node chains are judged by their head's time, each from its own capture.
    assert chains["arbitrum"]["best_block"] == 96223596 and chains["base"]["best_block"] == 50546271
    assert chains["optimism"]["best_block"] == 103110422
    assert all(chains[c]["healthy_nodes"] == 1 for c in ("arbitrum", "base", "optimism"))
    # Left out where no recording of one moment exists, and said so: no BNB Chain head, no Polygon chain id.
    assert all(not nodes[n.id]["reachable"] and "no recording" in nodes[n.id]["error"] for n in nodes_for("bsc"))
    assert all(nodes[n.id]["reachable"] and nodes[n.id]["chain_id_ok"] is None for n in nodes_for("polygon"))
    assert payload["healthy_count"] == 8
    assert all(n["block_time"] is None or n["block_time"] >= "2009-01-03" for n in nodes.values())


def test_node_instances_are_shared() -> None:
    spec = NODES[0]
    assert node(spec) is node(spec) and nodes_for(spec.chain)[0] is node(spec)
