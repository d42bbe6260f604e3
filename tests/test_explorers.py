"""Explorer providers against recorded bodies, the Bitcoin and Ethereum pools' failover, and the payload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from config import Settings
from models.messages import epoch, iso
from services import explorers
from services.explorers import BITCOIN_MAX_AGE, ETHEREUM_MAX_AGE, ExplorersService
from sources.errors import AnswerError
from sources.fetcher import Fetcher, Provider
from sources.pools import Pool
from sources.providers.explorers import (
    BlockchainInfo,
    Blockchair,
    Etherscan,
    MempoolSpace,
    normalize_node_block,
)
from sources.providers.rpc import nodes_for
from sources.replay import RECORDED_AT, ReplayTransport
from tests.support.context import build_context
from tests.support.recordings import recorded
from tests.support.recordings import recorded_json as body
from tests.support.settings import make_settings

MEMPOOL = "https://mempool.space/api"
BLOCKCHAIR = "https://api.blockchair.com"
BLOCKCHAIN_INFO = "https://api.blockchain.info/stats"
ETHERSCAN = "https://api.etherscan.io/v2/api"
PUBLICNODE = "https://ethereum-rpc.publicnode.com"
LLAMARPC = "https://eth.llamarpc.com"



#: Hand-written in the format of mempool.space's ``/block/:hash`` (Esplora's): the id, height, time and
#: difficulty of block 783770 as Blockchair's recorded stats give them; the block's other fields are left out.
TIP_HASH = "00000000000000000001d03f94ae0c307a708c48253d7b24ce1d675e65b7fe08"
TIP_BLOCK = {"id": TIP_HASH, "height": 783770, "timestamp": 1680530690, "difficulty": 46843400286277}
TIP_TIME = 1680530690.0  # 2023-04-03T14:04:50Z, also Blockchair's best_block_time
#: The replayed Ethereum mainnet block 22130747 (2025-03-26T11:21:47Z), with a gas price of the hive test chain
#: (only its format matters here).
ETH_BLOCK = recorded("rpc/eth_getBlockByNumber-ethereum-latest.json")
ETH_BLOCK_TIME = 1742988107.0
GAS_PRICE = recorded("ethereum/eth_gasPrice.json")


# -- mempool.space ------------------------------------------------------------------------------------------

def test_mempool_recorded_bodies() -> None:
    stats = MempoolSpace.normalize(body("mempool/fees-recommended.json"), body("mempool/mempool.json"),
                                   TIP_BLOCK, TIP_HASH)
    assert stats.height == 783770 and stats.last_block_time == "2023-04-03T14:04:50.000Z"
    assert stats.fees == {"fastest": 11, "half_hour": 10, "hour": 8, "economy": 2, "minimum": 1}
    assert (stats.mempool_count, stats.mempool_vsize) == (811, 412270)
    hashrate, difficulty = MempoolSpace.normalize_hashrate(body("mempool/hashrate-3d.json"))
    assert hashrate == pytest.approx(2.520332473552123e20) and difficulty == 31251101365711.12


def test_mempool_tip_hash_and_block() -> None:
    assert MempoolSpace.normalize_tip_hash(TIP_HASH + "\n") == TIP_HASH
    assert MempoolSpace.normalize_block(TIP_BLOCK, TIP_HASH) == (783770, TIP_TIME)
    with pytest.raises(AnswerError, match="is not the tip"):
        MempoolSpace.normalize_block({**TIP_BLOCK, "id": "ab" * 32}, TIP_HASH)
    with pytest.raises(AnswerError, match="without a height"):
        MempoolSpace.normalize_block({"id": TIP_HASH, "height": "783770"}, TIP_HASH)
    # A block time before Bitcoin existed (a 0, or milliseconds) is no time: left out, never 1970.
    for wrong in (0, 540, 1680530690000):
        assert MempoolSpace.normalize_block({**TIP_BLOCK, "timestamp": wrong}) == (783770, None)


def test_mempool_older_fee_shape_keeps_what_it_has() -> None:
    fees = MempoolSpace.normalize_fees(body("mempool/fees-recommended-2021-three-keys.json"))
    assert fees == {"fastest": 127, "half_hour": 115, "hour": 107}  # no economy/minimum: left out, not 0


def test_mempool_error_bodies_and_changed_shapes() -> None:
    html = recorded("mempool/error-429-too-many-requests.html").decode()
    with pytest.raises(AnswerError, match="tip hash"):
        MempoolSpace.normalize_tip_hash(html)
    with pytest.raises(AnswerError, match="expected an object"):
        MempoolSpace.normalize_fees(html)
    with pytest.raises(AnswerError, match="none of"):
        MempoolSpace.normalize_fees({"fast": 3, "slow": 1})
    with pytest.raises(AnswerError, match="transaction count"):
        MempoolSpace.normalize_mempool({"size": 10})
    with pytest.raises(AnswerError, match="no current figures"):
        MempoolSpace.normalize_hashrate({"hashrates": [], "difficulty": []})
    assert MempoolSpace.normalize_mempool({"count": 5, "vsize": "n/a"}) == (5, None)


# -- Blockchair ---------------------------------------------------------------------------------------------

def test_blockchair_bitcoin_recorded() -> None:
    stats = Blockchair.normalize_bitcoin(body("blockchair/bitcoin-stats.json"))
    assert stats.height == 783770 and stats.mempool_count == 29979
    # Blockchair's fee is per byte: not one of the sat/vB fees, and labelled as what it is.
    assert stats.fees == {} and stats.suggested_fee_sat_per_byte == 21
    assert stats.mempool_vsize is None  # its mempool_size is in bytes, not vbytes
    assert stats.hashrate == pytest.approx(345095835785586196564) and stats.difficulty == 46843400286277
    assert stats.last_block_time == "2023-04-03T14:04:50.000Z"  # "2023-04-03 14:04:50" UTC


def test_blockchair_ethereum_documented_format() -> None:
    stats = Blockchair.normalize_ethereum(body("blockchair/ethereum-stats.json"))
    assert stats.block_number == 12023240 and stats.gas_price_gwei is None
    assert stats.gas_oracle == {"sloth": 102, "slow": 115, "normal": 122, "fast": 134, "cheetah": 173}


def test_blockchair_error_body_and_changed_shape() -> None:
    with pytest.raises(AnswerError, match="blockchair error 430: Your IP address is temporary blacklisted"):
        Blockchair.normalize_bitcoin(body("blockchair/error-430-blacklisted.json"))
    with pytest.raises(AnswerError, match="best_block_height"):
        Blockchair.normalize_bitcoin({"data": {"blocks": 5}, "context": {"code": 200}})
    with pytest.raises(AnswerError):
        Blockchair.normalize_ethereum({"data": [], "context": {"code": 200}})


# -- blockchain.info ----------------------------------------------------------------------------------------

def test_blockchain_info_recorded_and_legacy_shape() -> None:
    stats = BlockchainInfo.normalize_stats(body("blockchain_info/stats.json"))
    assert stats.height == 969990 and stats.difficulty == 132716002350731
    assert stats.hashrate == pytest.approx(1095159811329.552e9)  # GH/s -> H/s
    assert stats.fees == {} and stats.mempool_count is None and stats.last_block_time is None
    assert stats.stats_time == "2026-10-05T09:39:20.000Z"  # its `timestamp`, in milliseconds
    legacy = BlockchainInfo.normalize_stats(body("blockchain_info/stats-2014.json"))
    assert legacy.height == 286903 and legacy.hashrate == pytest.approx(2.7225087107952803e16)


def test_blockchain_info_error_and_changed_shape() -> None:
    with pytest.raises(AnswerError):
        BlockchainInfo.normalize_stats("Maximum concurrent requests reached.")
    with pytest.raises(AnswerError, match="n_blocks_total"):
        BlockchainInfo.normalize_stats({"hash_rate": 1, "blocks": 3})


# -- Etherscan ----------------------------------------------------------------------------------------------

def test_etherscan_gas_oracle_recorded() -> None:
    stats = Etherscan.normalize_gas_oracle(body("etherscan/gasoracle.json"))
    assert stats.block_number == 15816910 and stats.base_fee_gwei == pytest.approx(9.849758735)
    assert stats.gas_oracle == {"safe": 10, "propose": 11, "fast": 55}
    assert stats.gas_price_gwei is None and stats.last_block_time is None


@pytest.mark.parametrize("name", ["etherscan/error-notok-max-rate-limit.json",
                                  "etherscan/error-notok-calls-per-sec.json"])
def test_etherscan_error_bodies(name: str) -> None:
    with pytest.raises(AnswerError, match="etherscan error: NOTOK: Max"):
        Etherscan.normalize_gas_oracle(body(name))


def test_etherscan_changed_shape() -> None:
    with pytest.raises(AnswerError, match="LastBlock"):
        Etherscan.normalize_gas_oracle({"status": "1", "message": "OK", "result": {"SafeGasPrice": "1"}})


# -- JSON-RPC node as Ethereum source -----------------------------------------------------------------------

def test_node_block_recorded() -> None:
    stats = normalize_node_block(orjson.loads(ETH_BLOCK), orjson.loads(GAS_PRICE))
    assert stats.block_number == 22130747 and stats.last_block_time == "2025-03-26T11:21:47.000Z"
    assert stats.base_fee_gwei == pytest.approx(0x259D4524 / 1e9)
    assert stats.gas_price_gwei == pytest.approx(0x63A1889D / 1e9)


def test_a_test_chain_block_time_is_no_date() -> None:
    """The hive test chain's block is dated 540 s after 1970: that is no provider time, and no 1970 date is shown
    (this assertion replaces the former one that expected 1970-01-01T00:09:00Z)."""
    stats = normalize_node_block(body("ethereum/eth_getBlockByNumber-latest-full.json"), orjson.loads(GAS_PRICE))
    assert stats.block_number == 0x36 and stats.last_block_time is None


def test_node_block_error_bodies_and_changed_shapes() -> None:
    gas = orjson.loads(GAS_PRICE)
    with pytest.raises(AnswerError, match="hex string without 0x prefix"):
        normalize_node_block(body("rpc/error-invalid-argument.json"), gas)
    with pytest.raises(AnswerError, match="no block"):
        normalize_node_block(body("rpc/eth_getBlockByNumber-notfound.json"), gas)
    with pytest.raises(AnswerError, match="hex quantity"):
        normalize_node_block({"jsonrpc": "2.0", "id": 1, "result": {"number": 54}}, gas)
    pre_london = normalize_node_block({"result": {"number": "0x10", "timestamp": "0x5"}}, gas)
    assert pre_london.base_fee_gwei is None and pre_london.block_number == 16


# -- the service --------------------------------------------------------------------------------------------

def rpc_answer(request: httpx.Request, answers: dict[str, bytes]) -> httpx.Response:
    method = json.loads(request.content)["method"]
    if method not in answers:
        return httpx.Response(404)
    return httpx.Response(200, content=answers[method], headers={"content-type": "application/json"})


NODE_ANSWERS = {"eth_getBlockByNumber": ETH_BLOCK, "eth_gasPrice": GAS_PRICE}


class Upstream:
    """Answers by URL (query ignored), counting calls; an Exception or a status code stands for a failure.

    Every answer says when it was captured (``captured``, as replay's answers do), so that the recorded bodies'
    ages count from a moment the test chooses rather than from today."""

    def __init__(self, routes: dict[str, Any]) -> None:
        self.routes = routes
        self.calls: list[str] = []
        self.captured = NOW

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url).split("?", 1)[0].rstrip("/")
        self.calls.append(url)
        answer = self.routes.get(url)
        if answer is None:
            raise httpx.ConnectError(f"no route to {url}", request=request)
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, int):
            return httpx.Response(answer)
        if callable(answer):
            response: httpx.Response = answer(request)
        else:
            content_type = "text/plain" if url.endswith("/hash") else "application/json"
            response = httpx.Response(200, content=answer, headers={"content-type": content_type})
        response.headers[RECORDED_AT] = iso(self.captured) or ""
        return response


def healthy_routes(tip: dict[str, Any] | None = None) -> dict[str, Any]:
    """``tip``: mempool.space's tip block (by default :data:`RECENT_TIP`)."""
    tip = tip or RECENT_TIP
    return {
        f"{MEMPOOL}/v1/fees/recommended": recorded("mempool/fees-recommended.json"),
        f"{MEMPOOL}/mempool": recorded("mempool/mempool.json"),
        f"{MEMPOOL}/blocks/tip/hash": str(tip["id"]).encode(),
        f"{MEMPOOL}/block/{tip['id']}": orjson.dumps(tip),
        f"{MEMPOOL}/v1/mining/hashrate/3d": recorded("mempool/hashrate-3d.json"),
        f"{BLOCKCHAIR}/bitcoin/stats": recorded("blockchair/bitcoin-stats.json"),
        f"{BLOCKCHAIR}/ethereum/stats": recorded("blockchair/ethereum-stats.json"),
        BLOCKCHAIN_INFO: recorded("blockchain_info/stats.json"),
        PUBLICNODE: lambda r: rpc_answer(r, NODE_ANSWERS),
        LLAMARPC: lambda r: rpc_answer(r, NODE_ANSWERS),
        ETHERSCAN: recorded("etherscan/gasoracle.json"),
    }


#: Hand-written for the service tests: mempool.space's tip a few minutes before the replayed Ethereum block, so that
#: one clock finds both sections fresh (its id is made up: only the format matters here).
RECENT_TIP = {"id": "00" * 8 + "ab" * 24, "height": 888888, "timestamp": int(ETH_BLOCK_TIME) - 300}
#: Our clock in the service tests: 13 s after the Ethereum block was made.
NOW = ETH_BLOCK_TIME + 13


def service(upstream: Upstream, etherscan_key: str | None = None,
            at: float = NOW) -> tuple[ExplorersService, Pool, Pool]:
    """The service, its clock and ``upstream``'s answers at ``at``."""
    upstream.captured = at
    # Budgets off: these runs come milliseconds apart, not an interval apart.
    fetcher = Fetcher(httpx.AsyncClient(transport=httpx.MockTransport(upstream)), retries=0, backoff=0.001,
                      budgets=False, replay=True)
    etherscan, blockchair = Etherscan(etherscan_key), Blockchair()
    bitcoin = Pool("explorers_bitcoin", [MempoolSpace(), blockchair, BlockchainInfo()], fetcher)
    ethereum = Pool("explorers_ethereum", [*nodes_for("ethereum"), etherscan, blockchair], fetcher)
    oracle = Pool("explorers_gas_oracle", [etherscan], fetcher)
    return ExplorersService(bitcoin, ethereum, fetcher, gas_oracle=oracle, interval=0.0,
                            data_source="live", clock=lambda: at), bitcoin, ethereum


async def test_preferred_sources_answer() -> None:
    upstream = Upstream(healthy_routes())
    svc, bitcoin, ethereum = service(upstream)
    payload = await svc.collect()
    json.dumps(payload)
    assert payload["status"] == "ok" and payload["timestamp"].endswith("Z")
    btc = payload["bitcoin"]
    assert btc["status"] == "ok" and btc["source"] == "mempool_space" and btc["height"] == 888888
    assert btc["fees"]["fastest"] == 11 and btc["mempool_count"] == 811 and btc["mempool_vsize"] == 412270
    assert btc["hashrate"] == pytest.approx(2.520332473552123e20) and btc["difficulty"] == 31251101365711.12
    # Dated by its tip block: 313 s old when read, of the 2 h a Bitcoin tip may be.
    assert epoch(btc["last_block_time"]) == ETH_BLOCK_TIME - 300 and btc["data_time"] == btc["last_block_time"]
    assert btc["age_seconds"] == 313 and btc["max_age_seconds"] == BITCOIN_MAX_AGE
    assert btc["providers"]["blockchair"]["status"] == "not_tried"
    eth = payload["ethereum"]
    assert eth["source"] == "rpc_eth_publicnode" and eth["block_number"] == 22130747
    assert eth["gas_price_gwei"] == pytest.approx(1.671530653) and eth["base_fee_gwei"] == pytest.approx(0.631063844)
    assert eth["last_block_time"] == "2025-03-26T11:21:47.000Z" and eth["age_seconds"] == 13
    assert eth["max_age_seconds"] == ETHEREUM_MAX_AGE == 120
    assert eth["gas_oracle"] == {} and eth["providers"]["etherscan"]["status"] == "missing_api_key"
    assert not any(call.startswith(ETHERSCAN) for call in upstream.calls)  # never called without its key
    assert bitcoin.failover_count == 0 and ethereum.failover_count == 0


async def test_etherscan_gas_ladder_is_added_when_keyed() -> None:
    upstream = Upstream(healthy_routes())
    svc, _, _ = service(upstream, etherscan_key="k-123")
    eth = (await svc.collect())["ethereum"]
    assert eth["source"] == "rpc_eth_publicnode" and eth["gas_price_gwei"] == pytest.approx(1.671530653)
    assert eth["gas_oracle"] == {"safe": 10, "propose": 11, "fast": 55}
    assert eth["providers"]["etherscan"]["status"] == "ok"


async def test_etherscan_error_body_leaves_the_node_figures_alone() -> None:
    routes = healthy_routes()
    routes[ETHERSCAN] = recorded("etherscan/error-notok-max-rate-limit.json")
    svc, _, _ = service(Upstream(routes), etherscan_key="k-123")
    eth = (await svc.collect())["ethereum"]
    assert eth["status"] == "ok" and eth["block_number"] == 22130747 and eth["gas_oracle"] == {}
    assert eth["providers"]["etherscan"]["status"] == "error"
    assert "Max rate limit reached" in eth["providers"]["etherscan"]["error"]


@pytest.mark.parametrize("failure", [
    httpx.ReadTimeout("timed out"),
    429,
    recorded("blockchair/error-430-blacklisted.json"),  # a body mempool.space never sends: a changed shape
], ids=["timeout", "429", "changed-shape"])
async def test_bitcoin_fails_over_to_blockchair(failure: Any) -> None:
    routes = healthy_routes()
    routes[f"{MEMPOOL}/v1/fees/recommended"] = failure
    svc, bitcoin, _ = service(Upstream(routes), at=TIP_TIME + 600)  # when Blockchair's answer was new
    bitcoin.active = "mempool_space"  # it answered before
    btc = (await svc.collect())["bitcoin"]
    assert btc["status"] == "ok" and btc["source"] == "blockchair" and btc["height"] == 783770
    assert btc["fees"] == {} and btc["suggested_fee_sat_per_byte"] == 21 and btc["mempool_vsize"] is None
    assert btc["last_block_time"] == "2023-04-03T14:04:50.000Z"
    assert btc["providers"]["mempool_space"]["status"] in ("error", "rate_limited")
    assert bitcoin.failover_count == 1 and bitcoin.failovers[-1].to_source == "blockchair"


async def test_bitcoin_down_to_blockchain_info_then_nothing_then_stale() -> None:
    routes = healthy_routes()
    for url in list(routes):
        if url.startswith((MEMPOOL, BLOCKCHAIR)):
            routes[url] = 502
    svc, _, _ = service(Upstream(routes), at=epoch("2026-10-05T09:40:00Z") or 0.0)
    btc = (await svc.collect())["bitcoin"]
    assert btc["source"] == "blockchain_info" and btc["height"] == 969990
    assert btc["status"] == "ok" and btc["data_time"] == "2026-10-05T09:39:20.000Z"  # when it computed them
    assert btc["fees"] == {} and btc["mempool_count"] is None  # it has no such figures: none invented
    routes[BLOCKCHAIN_INFO] = 502
    payload = await svc.collect()
    assert payload["bitcoin"]["status"] == "stale" and payload["bitcoin"]["height"] == 969990
    assert "every provider failed" in payload["bitcoin"]["message"]
    assert payload["status"] == "stale"  # one section stale (Ethereum's block is stale too at this clock)


async def test_no_bitcoin_data_ever_is_no_data_and_the_payload_partial() -> None:
    routes = {url: answer for url, answer in healthy_routes().items() if not url.startswith(
        (MEMPOOL, BLOCKCHAIR, BLOCKCHAIN_INFO))}
    svc, _, _ = service(Upstream(routes))
    payload = await svc.collect()
    btc = payload["bitcoin"]
    assert btc["status"] == "no_data" and btc["height"] is None and btc["fees"] == {} and btc["source"] is None
    assert payload["ethereum"]["status"] == "ok" and payload["status"] == "partial"


async def test_ethereum_node_error_fails_over_to_the_next_node() -> None:
    routes = healthy_routes()
    routes[PUBLICNODE] = lambda r: httpx.Response(200, content=recorded("rpc/error-invalid-argument.json"))
    svc, _, ethereum = service(Upstream(routes))
    ethereum.active = "rpc_eth_publicnode"
    eth = (await svc.collect())["ethereum"]
    assert eth["source"] == "rpc_eth_llamarpc" and eth["block_number"] == 22130747
    assert "hex string without 0x prefix" in eth["providers"]["rpc_eth_publicnode"]["error"]
    assert ethereum.failover_count == 1


@pytest.mark.parametrize(("method", "result", "source"), [
    ("eth_gasPrice", "0x" + "f" * 300, "rpc_eth_llamarpc"),  # would overflow the wei-to-gwei division
    ("eth_getBlockByNumber", {"number": "0x" + "f" * 40, "timestamp": "0x5"}, "rpc_eth_llamarpc"),
    ("eth_getBlockByNumber", {"number": "0x36", "timestamp": hex(1_700_000_000_000), "baseFeePerGas": "0x7"},
     "rpc_eth_publicnode"),  # a time in milliseconds: no date is read
], ids=["huge-gas-price", "huge-block-number", "time-in-milliseconds"])
async def test_absurd_quantities_are_that_nodes_bad_answer(method: str, result: Any, source: str) -> None:
    answers = dict(NODE_ANSWERS)
    answers[method] = json.dumps({"jsonrpc": "2.0", "id": 1, "result": result}).encode()
    routes = healthy_routes()
    routes[PUBLICNODE] = lambda r: rpc_answer(r, answers)
    svc, _, _ = service(Upstream(routes))
    payload = await svc.collect()  # no OverflowError (or "year out of range") out of collect()
    orjson.dumps(payload)  # and no integer too large to publish
    eth = payload["ethereum"]
    assert eth["status"] == "ok" and eth["source"] == source
    if source == "rpc_eth_publicnode":
        assert eth["block_number"] == 0x36 and eth["last_block_time"] is None  # the odd time is left out
        assert eth["data_time"] is None and eth["age_seconds"] == 0  # so its age is not known to be large
    else:  # refused as that node's bad answer: the next node answers
        assert eth["providers"]["rpc_eth_publicnode"]["status"] == "error"


async def test_ethereum_falls_back_to_blockchair_when_no_node_answers() -> None:
    routes = healthy_routes()
    del routes[PUBLICNODE], routes[LLAMARPC]
    svc, _, _ = service(Upstream(routes))
    eth = (await svc.collect())["ethereum"]
    assert eth["source"] == "blockchair" and eth["block_number"] == 12023240
    assert eth["gas_price_gwei"] is None and eth["gas_oracle"]["normal"] == 122
    # Its documented example is of 2021-03-12: years behind this clock, so stale although Blockchair answered.
    assert eth["status"] == "stale" and "over the 120 s" in eth["message"]


async def test_mining_figures_are_fetched_at_most_every_ten_minutes() -> None:
    upstream = Upstream(healthy_routes())
    svc, _, _ = service(upstream)
    await svc.collect()
    second = await svc.collect()
    assert second["bitcoin"]["source"] == "mempool_space" and second["bitcoin"]["hashrate"] is not None
    assert upstream.calls.count(f"{MEMPOOL}/v1/mining/hashrate/3d") == 1
    assert upstream.calls.count(f"{MEMPOOL}/v1/fees/recommended") == 2


async def test_failing_mining_call_keeps_the_core_figures() -> None:
    routes = healthy_routes()
    routes[f"{MEMPOOL}/v1/mining/hashrate/3d"] = b'{"hashrates": []}'
    svc, _, _ = service(Upstream(routes))
    btc = (await svc.collect())["bitcoin"]
    assert btc["source"] == "mempool_space" and btc["height"] == 888888
    assert btc["hashrate"] is None and btc["difficulty"] is None


async def test_replay_build_end_to_end(tmp_path: Path) -> None:
    settings: Settings = make_settings(tmp_path)
    async with httpx.AsyncClient(transport=ReplayTransport()) as http:
        ctx = build_context(settings, Fetcher(http, budgets=False, replay=True))
        [svc] = explorers.build(ctx)
        payload: Any = await svc.collect()
    assert {"explorers_bitcoin", "explorers_ethereum"} <= set(ctx.pools)
    assert payload["status"] == "ok" and payload["data_source"] == "replay"
    # mempool.space has no recordings of one moment: replay fails over to Blockchair's, dated by its block.
    btc = payload["bitcoin"]
    assert btc["source"] == "blockchair" and btc["height"] == 783770 and btc["status"] == "ok"
    assert btc["recorded_at"] == btc["last_block_time"] == "2023-04-03T14:04:50.000Z"
    assert btc["providers"]["mempool_space"]["status"] == "error"
    eth = payload["ethereum"]
    assert eth["source"] == "rpc_eth_publicnode" and eth["block_number"] == 22130747
    # Mainnet, captured 9 s after the block was made; no gas price was recorded then, and none is made up.
    assert eth["recorded_at"] == "2025-03-26T11:21:56.000Z" and eth["age_seconds"] == 9 and eth["status"] == "ok"
    assert eth["gas_price_gwei"] is None and "no recording" in eth["gas_price_error"]
    assert eth["base_fee_gwei"] == pytest.approx(0.631063844)


async def test_failed_mining_refresh_is_not_retried_every_run() -> None:
    routes = healthy_routes()
    routes[f"{MEMPOOL}/v1/mining/hashrate/3d"] = 503
    upstream = Upstream(routes)
    svc, _, _ = service(upstream)
    for _ in range(3):
        btc = (await svc.collect())["bitcoin"]
    assert btc["source"] == "mempool_space" and btc["hashrate"] is None
    assert upstream.calls.count(f"{MEMPOOL}/v1/mining/hashrate/3d") == 1


async def test_etherscan_probe_reads_the_body() -> None:
    upstream = Upstream({ETHERSCAN: recorded("etherscan/error-notok-calls-per-sec.json")})
    fetcher = Fetcher(httpx.AsyncClient(transport=httpx.MockTransport(upstream)), retries=0, replay=True)
    etherscan = Etherscan("k-123")
    await etherscan.probe(fetcher)
    health = fetcher.runtime("etherscan").health
    assert health.consecutive_failures == 1 and "Max calls per sec" in (health.error or "")
    assert upstream.calls == [ETHERSCAN]


async def test_mempool_budget_holds_at_the_spec_interval() -> None:
    """Three calls every 10 s (and the mining call every 10 min) stay inside mempool.space's budget."""
    now = [0.0]
    upstream = Upstream(healthy_routes())
    fetcher = Fetcher(httpx.AsyncClient(transport=httpx.MockTransport(upstream)), retries=0,
                      clock=lambda: now[0], replay=True)
    pool = Pool("explorers_bitcoin", [MempoolSpace(), Blockchair(), BlockchainInfo()], fetcher)
    ethereum: Pool[Provider] = Pool("explorers_ethereum", nodes_for("ethereum"), fetcher)
    svc = ExplorersService(pool, ethereum, fetcher, interval=0.0, data_source="live")
    for _ in range(30):  # five minutes
        payload = await svc.collect()
        assert payload["bitcoin"]["source"] == "mempool_space"
        now[0] += 10.0
    assert pool.failover_count == 0


# -- provider time and maximum age ---------------------------------------------------------------------------

async def test_a_stuck_source_is_stale_while_it_answers() -> None:
    """A Bitcoin tip older than two hours, or an Ethereum head older than ten slots, is stale: the source still
    answers, but with an old block."""
    routes = healthy_routes({**RECENT_TIP, "timestamp": int(NOW - BITCOIN_MAX_AGE - 60)})
    svc, _, _ = service(Upstream(routes), at=ETH_BLOCK_TIME + ETHEREUM_MAX_AGE + 30)
    payload = await svc.collect()
    btc, eth = payload["bitcoin"], payload["ethereum"]
    assert btc["status"] == "stale" and btc["source"] == "mempool_space" and "over the 7200 s" in btc["message"]
    assert eth["status"] == "stale" and eth["age_seconds"] == ETHEREUM_MAX_AGE + 30
    assert eth["stale_since"] == iso(ETH_BLOCK_TIME + ETHEREUM_MAX_AGE)
    assert payload["status"] == "stale"


async def test_bitcoin_tip_block_is_read_once_per_new_tip() -> None:
    upstream = Upstream(healthy_routes())
    svc, _, _ = service(upstream)
    for _ in range(3):
        await svc.collect()
    assert upstream.calls.count(f"{MEMPOOL}/blocks/tip/hash") == 3
    assert upstream.calls.count(f"{MEMPOOL}/block/{RECENT_TIP['id']}") == 1
