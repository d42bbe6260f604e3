"""The replay recordings of the chain, explorer, on-chain, news and sentiment providers: each read by the very code
that reads the live answer, each provider's recordings of one moment, each dated by when it was captured, and the
streams made of them coherent with one another.

Every ``routes.json`` entry of the JSON-RPC, CryptoSlate, Bitcoinist and Reddit folders is sent through
:class:`ReplayTransport` twice: once as a raw request (the file must come back byte for byte, so the route points
where it should) and once through the provider's own fetch and normalize, as the services call it.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app import create_app
from models.messages import epoch
from services import onchain, rpc_nodes
from services.onchain import GAS_CHAINS
from services.rpc_nodes import read_node
from sources.fetcher import Fetcher
from sources.pools import Pool
from sources.providers.explorers import BlockchainInfo, Blockchair, ethereum_from_node
from sources.providers.news import FEEDS
from sources.providers.rpc import CHAINS, NODES, NodeSpec, fetch_gas, hex_int, node, normalize_block_head, rpc_result
from sources.providers.social import AlternativeMe, Reddit
from sources.providers.values import EARLIEST_DATA_TIME
from sources.replay import ReplayTransport
from tests.support.context import build_context
from tests.support.paths import REPLAY
from tests.support.server import serve
from tests.support.settings import make_settings

FOLDERS = ("rpc", "cryptoslate_rss", "bitcoinist_rss", "reddit")
#: The replay folders of the chain, explorer, on-chain, news and sentiment providers (the market and whale
#: folders are checked with their streams).
CHAIN_AND_NEWS_FOLDERS = ("rpc", "mempool", "blockchair", "blockchain_info", "etherscan", "defillama", "alternative_me",
                          "reddit", *(cls.id for cls in FEEDS))
#: One moment: the recordings of one provider (other than its chain id) were all captured within this many seconds.
ONE_MOMENT = 60.0
#: Providers with recordings in replay since they were completed, healthy in a replay run of the whole app.
COMPLETED = ("cryptoslate_rss", "bitcoinist_rss", "reddit")


def entries(folders: tuple[str, ...], table: str = "routes.json") -> Iterator[tuple[str, dict[str, Any]]]:
    for folder in folders:
        path = REPLAY / folder / table
        if path.exists():
            for entry in json.loads(path.read_text()):
                yield folder, entry


def route_entries() -> Iterator[Any]:
    for folder, entry in entries(FOLDERS):
        label = f"{folder}:{entry.get('rpc_method', 'GET')}:{entry['url']}"
        yield pytest.param(folder, entry, id=label)


def spec_for(url: str) -> NodeSpec:
    return next(spec for spec in NODES if spec.url.rstrip("/") == url.rstrip("/"))


async def raw_answer(http: httpx.AsyncClient, entry: dict[str, Any]) -> httpx.Response:
    if "rpc_method" in entry:
        body = {"jsonrpc": "2.0", "id": 1, "method": entry["rpc_method"], "params": entry.get("rpc_params", [])}
        return await http.post(entry["url"], json=body)
    return await http.get(entry["url"])


def routed(url: str, method: str) -> dict[str, Any] | None:
    return next((e for _, e in entries(("rpc",)) if e["url"] == url and e["rpc_method"] == method), None)


async def check_rpc(fetcher: Fetcher, entry: dict[str, Any], recorded: Any) -> None:
    spec = spec_for(entry["url"])
    rpc_node = node(spec)
    method = entry["rpc_method"]
    if method == "eth_chainId":
        # rpc_nodes compares this with the chain the node is declared for: a mainnet id for a mainnet node
        assert hex_int(await rpc_node.call(fetcher, "eth_chainId")) == spec.chain_id
    elif method == "eth_blockNumber":  # the health probe's call: the very head the node's block answer holds
        block = routed(spec.url, "eth_getBlockByNumber")
        assert block is not None
        head = normalize_block_head(rpc_result(orjson.loads((REPLAY / "rpc" / block["file"]).read_bytes())))
        assert hex_int(await rpc_node.call(fetcher, "eth_blockNumber")) == hex_int(rpc_result(recorded)) == head.number
        await rpc_node.probe(fetcher)
    elif method == "eth_getBlockByNumber":  # rpc_nodes' head; onchain's (and explorers') gas block
        assert entry["rpc_params"] == ["latest", False]
        block = rpc_result(recorded)
        # through a pool, as rpc_nodes reads it: a node with no eth_chainId recording still answers with its head
        read = await Pool("rpc", [rpc_node], fetcher).gather(lambda n: read_node(n, fetcher))
        reading = read.values[rpc_node.id]
        assert reading.block_number == hex_int(block["number"])
        assert reading.block_time is not None and reading.block_time >= EARLIEST_DATA_TIME
        if spec.chain == "ethereum":  # explorers reads the Ethereum nodes' latest block too
            # through a pool, as explorers asks: a node without eth_gasPrice still answers with its block
            result = await Pool("explorers", [rpc_node], fetcher).fetch(lambda n: ethereum_from_node(n, fetcher, 0.0))
            assert result.value is not None and result.value.block_number == hex_int(block["number"])
    else:  # eth_gasPrice, read beside the block for a chain's gas
        assert method == "eth_gasPrice"
        gas = await fetch_gas(rpc_node, fetcher, 0.0)
        assert gas.gas_price_gwei is not None and gas.gas_price_gwei > 0
        # a gas price below the same block's base fee could not be paid: the two are of one moment
        assert gas.base_fee_gwei is None or gas.gas_price_gwei >= gas.base_fee_gwei


@pytest.mark.parametrize(("folder", "entry"), list(route_entries()))
async def test_recording_reads_through_its_provider(folder: str, entry: dict[str, Any]) -> None:
    recorded_bytes = (REPLAY / folder / entry["file"]).read_bytes()
    async with httpx.AsyncClient(transport=ReplayTransport()) as http:
        raw = await raw_answer(http, entry)
        assert raw.status_code == 200 and raw.content == recorded_bytes
        assert epoch(raw.headers["x-replay-recorded-at"]) == epoch(entry["recorded_at"])
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


# -- every recording says when it was captured, and each provider's are of one moment -------------------------

def test_every_recording_says_when_it_was_captured() -> None:
    now = time.time()
    for folder, entry in entries(CHAIN_AND_NEWS_FOLDERS):
        captured = epoch(entry.get("recorded_at"))
        assert captured is not None, f"{folder}/{entry['file']}: no recorded_at"
        assert EARLIEST_DATA_TIME <= captured <= now, f"{folder}/{entry['file']}: {entry['recorded_at']}"
        assert (REPLAY / folder / entry["file"]).exists()


def test_each_provider_recordings_are_of_one_moment() -> None:
    """A provider's recordings (by host: one node, one API) were captured together, so no stream shows a 2021
    height beside 2025 fees. A chain id is a constant of its chain, true at any moment: it keeps its own date."""
    moments: dict[str, list[float]] = defaultdict(list)
    for _, entry in entries(CHAIN_AND_NEWS_FOLDERS):
        if entry.get("rpc_method") != "eth_chainId":
            moments[httpx.URL(entry["url"]).host].append(epoch(entry["recorded_at"]) or 0.0)
    assert moments
    for host, times in moments.items():
        assert max(times) - min(times) <= ONE_MOMENT, host


def newest_time(folder: str, file: str, body: bytes) -> float | None:
    """The newest time a recorded body carries of its own data, read by its provider's normaliser."""
    if folder == "rpc":
        return normalize_block_head(rpc_result(orjson.loads(body))).time if "getBlockByNumber" in file else None
    if folder == "blockchair":
        return epoch(Blockchair.normalize_bitcoin(orjson.loads(body)).last_block_time)
    if folder == "blockchain_info":
        return epoch(BlockchainInfo.normalize_stats(orjson.loads(body)).stats_time)
    if folder == "alternative_me":
        return epoch(AlternativeMe.normalize_fng(orjson.loads(body)).timestamp)
    if folder == "reddit":
        return max(epoch(p.created_at) or 0.0 for p in Reddit.normalize_listing(orjson.loads(body)))
    feed = next((cls for cls in FEEDS if cls.id == folder), None)
    if feed is not None:
        articles = feed.normalize_feed(body, source=feed.name, feed=feed.id, url=feed.base_url)
        return max(epoch(a.published_at) or 0.0 for a in articles)
    return None  # DefiLlama's lists carry no time of their own


def test_no_recording_is_dated_after_its_capture() -> None:
    """A body cannot hold data newer than the moment it was captured: its recorded_at is not a guess that
    contradicts it. And a "latest" block was the head when captured: not older than its chain's tolerance."""
    for folder, entry in entries(CHAIN_AND_NEWS_FOLDERS):
        captured = epoch(entry["recorded_at"]) or 0.0
        data_time = newest_time(folder, entry["file"], (REPLAY / folder / entry["file"]).read_bytes())
        if data_time is None:
            continue
        assert EARLIEST_DATA_TIME <= data_time <= captured + 60, f"{folder}/{entry['file']}"
        if folder == "rpc":
            chain = CHAINS[spec_for(entry["url"]).chain]
            assert captured - data_time <= chain.head_max_age, entry["file"]


def test_no_answer_is_built_to_pass_a_test_chain_as_mainnet() -> None:
    for _, entry in entries(("rpc",)):
        spec = spec_for(entry["url"])
        body = orjson.loads((REPLAY / "rpc" / entry["file"]).read_bytes())
        if entry["rpc_method"] == "eth_chainId":
            assert hex_int(rpc_result(body)) == spec.chain_id
        if entry["rpc_method"] == "eth_getBlockByNumber":  # mainnet blocks only: a test chain dates its from 1970
            assert (normalize_block_head(rpc_result(body)).time or 0.0) >= EARLIEST_DATA_TIME
    served = {e["file"] for _, e in entries(("rpc",))}
    assert served == {p.name for p in (REPLAY / "rpc").glob("*.json")} - {"routes.json"}  # nothing unserved


async def test_a_nodes_gas_block_is_its_head_block(tmp_path: Path) -> None:
    """rpc_nodes and onchain read the same nodes in replay: the block a chain's gas names is the head rpc_nodes
    reports for that node (not BNB Chain gas at block 26,803 beside a head of 121,830,774)."""
    settings = make_settings(tmp_path)
    async with httpx.AsyncClient(transport=ReplayTransport()) as http:
        ctx = build_context(settings, Fetcher(http, budgets=False, retries=0))
        [nodes_stream] = rpc_nodes.build(ctx)
        [onchain_stream] = onchain.build(ctx)
        heads: Any = await nodes_stream.collect()
        chain_data: Any = await onchain_stream.collect()
    for chain, gas in chain_data["gas"].items():
        head = heads["nodes"][gas["source"]]
        assert gas["block_number"] == head["block_number"] and gas["block_time"] == head["block_time"], chain
        assert gas["recorded_at"] == head["recorded_at"], chain
    assert set(chain_data["gas"]) == {"ethereum", "polygon", "arbitrum", "base"}
    assert all(reason for reason in chain_data["gas_errors"].values())  # what is left out says why


# -- the whole app ------------------------------------------------------------------------------------------

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
        ethereum = nodes["chains"]["ethereum"]
        assert ethereum["healthy_nodes"] == 5 and ethereum["best_block"] == 22130747
        assert nodes["nodes"]["rpc_eth_drpc"]["chain_id_ok"] is True
        assert nodes["nodes"]["rpc_eth_drpc"]["recorded_at"] == "2025-03-26T11:21:56.000Z"

        def gas_where_recorded() -> bool:
            data = latest(server, "onchain")
            return data is not None and {"ethereum", "polygon", "arbitrum", "base"} <= set(data["gas"])

        server.wait_for(gas_where_recorded, timeout=30)
        data = latest(server, "onchain")
        assert data is not None and set(data["gas"]) | set(data["gas_errors"]) == set(GAS_CHAINS)
