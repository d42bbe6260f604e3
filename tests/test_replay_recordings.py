"""The recordings that complete replay mode (the JSON-RPC nodes, CryptoSlate, Bitcoinist, Reddit), each read by the
very code that reads the live answer, and a replay run of the whole app that shows those providers healthy.

Every ``routes.json`` entry of those folders is sent through :class:`ReplayTransport` twice: once as a raw request
(the file must come back byte for byte, so the route points where it should) and once through the provider's own
fetch and normalize, as the services call it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import create_app
from services.onchain import GAS_CHAINS
from services.rpc_nodes import read_node
from sources.fetcher import Fetcher
from sources.providers.explorers import ethereum_from_node
from sources.providers.news import FEEDS
from sources.providers.rpc import NODES, NodeSpec, fetch_gas, hex_int, node, rpc_result
from sources.providers.social import Reddit
from sources.replay import ReplayTransport
from tests.support.paths import REPLAY
from tests.support.server import serve
from tests.support.settings import make_settings

FOLDERS = ("rpc", "cryptoslate_rss", "bitcoinist_rss", "reddit")
#: The providers that answered "no recording" in replay before these recordings.
COMPLETED = ("cryptoslate_rss", "bitcoinist_rss", "reddit", "rpc_polygon_publicnode", "rpc_polygon_drpc")


def route_entries() -> Iterator[Any]:
    for folder in FOLDERS:
        for entry in json.loads((REPLAY / folder / "routes.json").read_text()):
            label = f"{folder}:{entry.get('rpc_method', 'GET')}:{entry['url']}"
            yield pytest.param(folder, entry, id=label)


def spec_for(url: str) -> NodeSpec:
    return next(spec for spec in NODES if spec.url.rstrip("/") == url.rstrip("/"))


async def raw_answer(http: httpx.AsyncClient, entry: dict[str, Any]) -> httpx.Response:
    if "rpc_method" in entry:
        body = {"jsonrpc": "2.0", "id": 1, "method": entry["rpc_method"], "params": []}
        return await http.post(entry["url"], json=body)
    return await http.get(entry["url"])


async def check_rpc(fetcher: Fetcher, entry: dict[str, Any], recorded: Any) -> None:
    spec = spec_for(entry["url"])
    rpc_node = node(spec)
    method = entry["rpc_method"]
    if method == "eth_chainId":
        # rpc_nodes compares this with the chain the node is declared for
        assert hex_int(await rpc_node.call(fetcher, "eth_chainId")) == spec.chain_id
    elif method == "eth_blockNumber":
        node_reading = await read_node(rpc_node, fetcher)
        assert node_reading.chain_id == spec.chain_id and node_reading.block_number > 0
    else:  # eth_gasPrice, eth_getBlockByNumber: onchain reads both for a chain's gas
        gas = await fetch_gas(rpc_node, fetcher, 0.0)
        assert gas.gas_price_gwei > 0
        if method == "eth_getBlockByNumber":
            block = rpc_result(recorded)
            assert gas.block_number == hex_int(block["number"])
            # chains recorded before EIP-1559 (BNB Chain 2020, OP Mainnet before Bedrock) carry no base fee
            assert (gas.base_fee_gwei is None) == ("baseFeePerGas" not in block)
            if spec.chain == "ethereum":  # explorers reads the Ethereum nodes' latest block too
                stats = await ethereum_from_node(rpc_node, fetcher, 0.0)
                assert stats.block_number == hex_int(block["number"])


@pytest.mark.parametrize(("folder", "entry"), list(route_entries()))
async def test_recording_reads_through_its_provider(folder: str, entry: dict[str, Any]) -> None:
    recorded_bytes = (REPLAY / folder / entry["file"]).read_bytes()
    async with httpx.AsyncClient(transport=ReplayTransport()) as http:
        raw = await raw_answer(http, entry)
        assert raw.status_code == 200 and raw.content == recorded_bytes
        fetcher = Fetcher(http, retries=0, budgets=False)
        if folder == "rpc":
            await check_rpc(fetcher, entry, json.loads(recorded_bytes))
        elif folder == "reddit":
            posts = await Reddit().fetch_posts(fetcher)
            assert posts and all(p.title and p.url and p.created_at and p.score is not None for p in posts)
            assert {p.subreddit for p in posts} <= set(Reddit.SUBREDDITS)
        else:
            feed = next(cls for cls in FEEDS if cls.id == folder)()
            articles = await feed.fetch_articles(fetcher)
            host = httpx.URL(feed.base_url).host
            assert articles and all(a.published_at and a.summary and a.feed == feed.id for a in articles)
            # links are the publisher's own, tracking parameters removed
            assert all(httpx.URL(a.url).host == host and "utm_" not in a.url for a in articles)
        assert fetcher.runtimes and all(rt.health.consecutive_failures == 0 for rt in fetcher.runtimes.values())


def test_every_declared_node_has_the_calls_its_services_make() -> None:
    routed = {(entry["url"], entry["rpc_method"]) for entry in json.loads((REPLAY / "rpc" / "routes.json").read_text())}
    for spec in NODES:
        needed = {"eth_chainId", "eth_blockNumber"}  # rpc_nodes
        if spec.chain in GAS_CHAINS:
            needed |= {"eth_gasPrice", "eth_getBlockByNumber"}  # onchain (and explorers for Ethereum)
        assert needed <= {method for url, method in routed if url == spec.url}, spec.id


def latest(server: Any, service: str) -> dict[str, Any] | None:
    update = server.app.state.hub.latest(service)
    return json.loads(update.text)["data"] if update else None


def test_replay_run_shows_the_completed_providers_healthy(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, interval_scale=0.05)
    with serve(lambda: create_app(settings), settings) as server:
        def completed_healthy() -> bool:
            health = latest(server, "health_checker")
            return health is not None and all(
                health["providers"].get(pid, {}).get("status") == "healthy" for pid in COMPLETED)

        server.wait_for(completed_healthy, timeout=30)
        server.wait_for(lambda: bool(latest(server, "rpc_nodes") and latest(server, "onchain")), timeout=30)
        nodes = latest(server, "rpc_nodes")
        assert nodes is not None
        polygon = nodes["chains"]["polygon"]
        assert polygon["healthy_nodes"] == 2 and polygon["best_block"] == 0x2958277
        assert nodes["nodes"]["rpc_polygon_drpc"]["chain_id_ok"] is True

        def gas_for_every_chain() -> bool:
            onchain = latest(server, "onchain")
            return onchain is not None and set(GAS_CHAINS) <= set(onchain["gas"])

        server.wait_for(gas_for_every_chain, timeout=30)
