"""Whale sources against recorded bodies, and the whale_tracking payload: valuation, window, wallets, failover."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from config import Redactor, Settings
from models.messages import iso
from models.payloads import MarketDataPayload
from services.ports import Prices, hub_prices
from services.whale_tracking import WhalePools, WhaleTrackingService, build
from sources.errors import AnswerError
from sources.fetcher import Fetcher
from sources.http import http_client
from sources.pools import Pool
from sources.providers.rpc import nodes_for, rpc_result
from sources.providers.whales import (
    BlockchainInfoUnconfirmed,
    MempoolRecent,
    WhaleAlert,
    normalize_eth_block,
)
from tests.support.clock import FakeClock
from tests.support.context import build_context
from tests.support.recordings import recorded, routes_transport
from ws.hub import Hub

BLOCKCHAIN_INFO = "https://blockchain.info/unconfirmed-transactions"
MEMPOOL = "https://mempool.space/api/mempool/recent"
WHALE_ALERT = "https://api.whale-alert.io/v1/transactions"
ETH_NODE = "https://ethereum-rpc.publicnode.com"
SPEC_KEYS = {"large_transactions", "whale_wallets", "total_volume", "alert_threshold", "timestamp"}
PRICES = Prices({"BTC": 60_000.0, "ETH": 3_000.0}, 0.0)


def body(name: str) -> Any:
    return orjson.loads(recorded(name))


def ok(payload: Any) -> httpx.Response:
    return httpx.Response(200, content=orjson.dumps(payload), headers={"content-type": "application/json"})


# -- normalisers ----------------------------------------------------------------------------------------

def test_blockchain_info_recorded() -> None:
    [tx] = BlockchainInfoUnconfirmed.normalize_unconfirmed(body("blockchain_info_whales/unconfirmed-transactions.json"))
    assert tx.hash == "bdbd6859ac5c310fc2e302af6bdd2b758cf45c82495527aedbaee6b3b05defe9"
    assert tx.amount == pytest.approx(0.00362267) and (tx.chain, tx.symbol) == ("bitcoin", "BTC")
    assert tx.sender == "3Gd4ZqZQCuZqGbD6DBBXfqVk3AHpWr1uDT" and tx.receiver == "1P5Jb58TY2o7aP6o4qLsvDAWVP8w6Wrc6R"
    assert tx.timestamp == 1622415879 and tx.value_usd is None


def test_blockchain_info_error_body_and_changed_shape() -> None:
    with pytest.raises(AnswerError):
        BlockchainInfoUnconfirmed.normalize_unconfirmed({"error": "Maximum concurrent requests reached."})
    with pytest.raises(AnswerError):
        BlockchainInfoUnconfirmed.normalize_unconfirmed({"txs": [{"hash": 1}, "x"]})
    assert BlockchainInfoUnconfirmed.normalize_unconfirmed({"txs": []}) == []
    good = body("blockchain_info_whales/unconfirmed-transactions.json")["txs"][0]
    no_addresses = {"hash": "ab", "inputs": [{"prev_out": {"value": 5}}], "out": [{"value": 4}]}
    bad_value = {"hash": "cd", "out": [{"addr": "x", "value": "4"}]}
    odd_lists = {"hash": "ef", "inputs": 7, "out": {"addr": "x"}}
    odd_prev_out = {"hash": "ab", "inputs": [{"prev_out": "?"}], "out": [{"value": 4}]}
    read = BlockchainInfoUnconfirmed.normalize_unconfirmed({"txs": [good, no_addresses, bad_value, odd_lists]})
    assert BlockchainInfoUnconfirmed.normalize_unconfirmed({"txs": [odd_prev_out]})[0].sender is None
    assert [t.hash for t in read] == [good["hash"], "ab"]
    assert read[1].sender is None and read[1].receiver is None and read[1].timestamp is None


def test_mempool_recent_recorded() -> None:
    transfers = MempoolRecent.normalize_recent(body("mempool_recent/mempool-recent.json"))
    assert len(transfers) == 10
    first = transfers[0]
    assert first.hash == "a8d826af0027ecf5bfe180fadff4b0bdd07e451c53a8a48efbb89d8219adf8b6"
    assert first.amount == pytest.approx(0.0138647)
    # mempool.space gives no addresses and no time: they stay empty, never guessed
    assert all(t.sender is None and t.receiver is None and t.timestamp is None for t in transfers)


def test_mempool_recent_error_body_and_changed_shape() -> None:
    with pytest.raises(AnswerError):
        MempoolRecent.normalize_recent({"error": "not found"})
    with pytest.raises(AnswerError):
        MempoolRecent.normalize_recent([{"id": "x", "amount": 1}])
    assert [t.hash for t in MempoolRecent.normalize_recent([{"txid": "a", "value": 1}, {"txid": "b"}])] == ["a"]


def test_whale_alert_recorded() -> None:
    transfers = WhaleAlert.normalize_transactions(body("whale_alert/transactions.json"))
    assert len(transfers) == 23
    eth = transfers[0]
    # Whale Alert drops Ethereum's 0x: we put it back, so its hashes match the nodes'
    assert eth.hash == "0xa41cda979c4bb5829aede4d96eeb9b64a02d3ed77b68bf18e2cf8147cd97a667"
    assert eth.sender == "0x387ad93bfe9957a4eeba0cb2ff9303f6ec0833d0"
    assert (eth.chain, eth.symbol, eth.amount, eth.value_usd) == ("ethereum", "ETH", 4777, 1285958.8)
    btc = transfers[1]
    assert btc.hash == "911797e16ceb462122b4a49a4563cd75ecc9ef06be68a61d2d19c89b7f737d7b"
    assert btc.sender == "1JDknRvZTi5XdhQB3cgvJ9R8aogUvfbYUB" and btc.timestamp == 1560837132
    raw = body("whale_alert/transactions.json")
    multiple = [t for t in raw["transactions"] if "Multiple Addresses" in (t["from"]["address"], t["to"]["address"])]
    assert multiple, "the recording has Whale Alert's pseudo-address"
    by_hash = {t.hash.removeprefix("0x"): t for t in transfers}
    for tx in multiple:
        read = by_hash[tx["hash"]]
        assert "Multiple Addresses" not in (read.sender, read.receiver)


def test_whale_alert_error_body_and_changed_shape() -> None:
    with pytest.raises(AnswerError, match="invalid api_key"):
        WhaleAlert.normalize_transactions({"result": "error", "message": "invalid api_key"})
    with pytest.raises(AnswerError):
        WhaleAlert.normalize_transactions([])
    with pytest.raises(AnswerError):
        WhaleAlert.normalize_transactions({"result": "success", "transactions": {"a": 1}})
    # nothing matched: the API leaves out the list
    assert WhaleAlert.normalize_transactions({"result": "success", "cursor": "0-0-0", "count": 0}) == []
    partial = {"result": "success", "transactions": [{"blockchain": "tron", "symbol": "usdt", "hash": "h",
                                                        "amount": 1, "amount_usd": None}, "x"]}
    assert WhaleAlert.normalize_transactions(partial) == []
    odd_parties = {"result": "success", "transactions": [{"blockchain": "bitcoin", "symbol": "btc", "hash": "h",
                                                            "amount": 1, "amount_usd": 2e6, "from": "x", "to": None}]}
    [read] = WhaleAlert.normalize_transactions(odd_parties)
    assert read.sender is None and read.receiver is None and read.timestamp is None


def test_eth_block_recorded() -> None:
    block = normalize_eth_block(rpc_result(body("ethereum/eth_getBlockByNumber-latest-full.json")), "node")
    assert block.number == 0x36 and block.timestamp == 0x21C
    # three contract creations move no Ether; the fourth moves 2 wei
    [transfer] = block.transfers
    assert transfer.hash.startswith("0x42bbb5422d") and transfer.amount == 2 / 10**18
    assert transfer.receiver == "0x7dcd17433742f4c0ca53122ab541d0ba67fc27df"


def test_eth_block_error_bodies_and_changed_shape() -> None:
    with pytest.raises(AnswerError, match="not found"):
        normalize_eth_block(rpc_result(body("ethereum/eth_getBlockByNumber-notfound.json")), "node")
    with pytest.raises(AnswerError, match="invalid argument"):
        rpc_result(body("ethereum/error-invalid-argument.json"))
    hashes_only = {"number": "0x1", "timestamp": "0x2", "transactions": ["0xabc"]}
    with pytest.raises(AnswerError, match="hashes"):
        normalize_eth_block(hashes_only, "node")
    with pytest.raises(AnswerError):
        normalize_eth_block({"number": 12, "transactions": []}, "node")
    odd = {"number": "0x1", "transactions": [{"hash": "0xa", "value": "0xzz"}, {"hash": "0xb", "value": "0x1"}]}
    block = normalize_eth_block(odd, "node")
    assert [t.hash for t in block.transfers] == ["0xb"] and block.timestamp is None


# -- the service ----------------------------------------------------------------------------------------

def big_btc(hash_: str, btc: float) -> dict[str, Any]:
    """The recorded transaction, re-used as a test input with another hash and a whale-sized output."""
    tx = copy.deepcopy(body("blockchain_info_whales/unconfirmed-transactions.json")["txs"][0])
    tx["hash"] = hash_
    tx["out"][0]["value"] = int(btc * 10**8)
    return tx


def eth_block(number: int, eth: float) -> dict[str, Any]:
    """The recorded test-chain block as a test input, renumbered, its fourth transaction moving ``eth``."""
    block = copy.deepcopy(rpc_result(body("ethereum/eth_getBlockByNumber-latest-full.json")))
    block["number"] = hex(number)
    tx = block["transactions"][3]
    tx["hash"] = f"0x{number:064x}"
    tx["value"] = hex(int(eth * 10**18))
    return block


class EthNode:
    """A JSON-RPC node answering eth_getBlockByNumber from a table of blocks; counts what it was asked."""

    def __init__(self, blocks: dict[int, dict[str, Any]]) -> None:
        self.blocks = blocks
        self.asked: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        call = json.loads(request.content)
        assert call["method"] == "eth_getBlockByNumber" and call["params"][1] is True
        tag = call["params"][0]
        self.asked.append(tag)
        number = max(self.blocks) if tag == "latest" else int(tag, 16)
        return ok({"jsonrpc": "2.0", "id": call["id"], "result": self.blocks.get(number)})


def whale_service(routes: dict, *, prices: Prices = PRICES, key: str | None = None,
                  **kwargs: Any) -> WhaleTrackingService:
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(routes)), retries=0, backoff=0.001,
                      budgets=False, redact=Redactor([key]))
    pools = WhalePools(
        bitcoin=Pool("whales_bitcoin", [BlockchainInfoUnconfirmed(), MempoolRecent()], fetcher),
        ethereum=Pool("whales_ethereum", nodes_for("ethereum")[:1], fetcher),
        whale_alert=Pool("whales_whale_alert", [WhaleAlert(key)], fetcher),
    )
    return WhaleTrackingService(pools, fetcher, threshold=1_000_000, prices=lambda: prices,
                                data_source="live", max_wait=0.0, **kwargs)


async def test_large_transfers_valued_windowed_and_ranked() -> None:
    btc = {"txs": [big_btc("b1", 2000), *body("blockchain_info_whales/unconfirmed-transactions.json")["txs"]]}
    node = EthNode({100: eth_block(100, 1000)})
    service = whale_service({BLOCKCHAIN_INFO: ok(btc), ETH_NODE: node})
    payload = await service.collect()
    json.dumps(payload)
    assert payload.keys() >= SPEC_KEYS and payload["status"] == "ok"
    assert payload["alert_threshold"] == 1_000_000 and payload["prices_used"] == {"BTC": 60000.0, "ETH": 3000.0}
    by_hash = {t["hash"]: t for t in payload["large_transactions"]}
    assert set(by_hash) == {"b1", f"0x{100:064x}"}  # the 0.0036 BTC and 2-wei transfers are below the threshold
    whale = by_hash["b1"]
    assert whale["value"] == 2000 * 60_000 and whale["amount"] == 2000
    assert whale["from"] == "3Gd4ZqZQCuZqGbD6DBBXfqVk3AHpWr1uDT" and whale["to"] == "1P5Jb58TY2o7aP6o4qLsvDAWVP8w6Wrc6R"
    assert whale["timestamp"] == "2021-05-30T23:04:39.000Z" and whale["explorer_url"] == "https://mempool.space/tx/b1"
    ether = by_hash[f"0x{100:064x}"]
    assert ether["value"] == 3_000_000 and ether["symbol"] == "ETH" and ether["source"] == "rpc_eth_publicnode"
    assert ether["explorer_url"].startswith("https://etherscan.io/tx/0x")
    assert payload["total_volume"] == pytest.approx(whale["value"] + 3_000_000)
    wallets = payload["whale_wallets"]
    assert wallets[0]["address"] in (whale["from"], whale["to"]) and wallets[0]["volume_usd"] == whale["value"]
    assert {w["chain"] for w in wallets} == {"bitcoin", "ethereum"}
    assert payload["providers"]["whale_alert"]["status"] == "missing_api_key"

    # the next run sees the same transactions again: nothing is counted twice
    again = await service.collect()
    assert again["total_volume"] == payload["total_volume"] and len(again["large_transactions"]) == 2


async def test_ethereum_reads_new_blocks_only_and_a_bounded_number() -> None:
    node = EthNode({n: eth_block(n, 500) for n in range(100, 106)})
    node.blocks = {100: node.blocks[100]}
    service = whale_service({BLOCKCHAIN_INFO: ok({"txs": []}), ETH_NODE: node})
    await service.collect()
    assert node.asked == ["latest"] and service.last_block == 100
    node.blocks = {n: eth_block(n, 500) for n in range(100, 106)}  # five blocks later
    node.asked.clear()
    payload = await service.collect()
    assert node.asked == ["latest", hex(104)]  # at most two blocks a run
    assert service.last_block == 105 and len(payload["large_transactions"]) == 3
    node.asked.clear()
    payload = await service.collect()  # no new block
    assert node.asked == ["latest"] and len(payload["large_transactions"]) == 3


async def test_bitcoin_fails_over_to_mempool_without_addresses() -> None:
    recent = [{"txid": "m1", "fee": 1, "vsize": 100, "value": 50 * 10**8}, {"txid": "m2", "value": 1000}]
    service = whale_service({BLOCKCHAIN_INFO: httpx.Response(503), MEMPOOL: ok(recent),
                             ETH_NODE: EthNode({1: eth_block(1, 0)})})
    payload = await service.collect()
    [tx] = payload["large_transactions"]
    assert tx["hash"] == "m1" and tx["value"] == 3_000_000 and tx["source"] == "mempool_recent"
    assert tx["from"] is None and tx["to"] is None and tx["timestamp"] is None
    assert payload["whale_wallets"] == []  # no address is known: no wallet is made up
    assert payload["providers"]["blockchain_info_unconfirmed"]["status"] == "error"
    assert payload["providers"]["mempool_recent"]["status"] == "ok"


async def test_no_price_no_valuation_and_no_calls() -> None:
    service = whale_service({}, prices=Prices())  # any call would fail to connect
    payload = await service.collect()
    assert payload["status"] == "no_data" and payload["total_volume"] is None
    assert payload["large_transactions"] == [] and payload["prices_used"] == {}
    assert "no recent BTC price" in payload["message"] and "no recent ETH price" in payload["message"]
    assert "blockchain_info_unconfirmed" not in payload["providers"]  # not asked: its amounts cannot be valued
    assert service.fetcher.runtime("blockchain_info_unconfirmed").health.requests == 0


async def test_every_source_down_no_data_then_stale_with_the_window() -> None:
    routes: dict = {}
    service = whale_service(routes)
    first = await service.collect()
    assert first["status"] == "no_data" and first["total_volume"] is None
    assert "every provider failed" in first["message"]
    routes.update({BLOCKCHAIN_INFO: ok({"txs": [big_btc("b1", 100)]}), ETH_NODE: EthNode({1: eth_block(1, 0)})})
    good = await service.collect()
    assert good["status"] == "ok" and good["total_volume"] == 6_000_000
    routes.clear()
    stale = await service.collect()
    assert stale["status"] == "stale" and stale["stale_since"] and stale["age_seconds"] >= 0
    assert stale["large_transactions"] == good["large_transactions"] and stale["total_volume"] == 6_000_000
    assert stale["timestamp"] == good["timestamp"]


async def test_prices_in_tether_are_said_so() -> None:
    routes = {BLOCKCHAIN_INFO: ok({"txs": [big_btc("b1", 100)]}), ETH_NODE: EthNode({1: eth_block(1, 0)})}
    service = whale_service(routes, prices=Prices({"BTC": 60_000.0, "ETH": 3_000.0}, 0.0, "USDT"))
    payload = await service.collect()
    assert payload["status"] == "ok" and "USDT prices, taken as dollars" in payload["message"]


async def test_odd_numbers_from_a_source_never_break_the_stream() -> None:
    """A time in milliseconds (a changed shape), an absurd time or amount: left out or the answer refused, but
    collect() publishes; no OverflowError or "year out of range" raised from the payload's dates."""
    in_ms, absurd = big_btc("b-ms", 100), big_btc("b-absurd", 200)
    in_ms["time"] = 1_622_415_879_000
    absurd["time"] = 1e300
    block = eth_block(7, 0)
    block["timestamp"] = hex(1_622_415_879_000)  # milliseconds: no such date is read
    block["transactions"][3]["value"] = "0x" + "f" * 300  # not a 256-bit quantity: that transaction is skipped
    service = whale_service({BLOCKCHAIN_INFO: ok({"txs": [in_ms, absurd]}), ETH_NODE: EthNode({7: block})})
    payload = await service.collect()
    orjson.dumps(payload)
    assert payload["status"] == "ok"
    assert {t["hash"]: t["timestamp"] for t in payload["large_transactions"]} == {"b-ms": None, "b-absurd": None}
    assert service.last_block == 7 and all(t.timestamp is None for t in normalize_eth_block(block, "n").transfers)


async def test_window_is_bounded() -> None:
    txs = [big_btc(f"b{i}", 100 + i) for i in range(5)]
    service = whale_service({BLOCKCHAIN_INFO: ok({"txs": txs}), ETH_NODE: EthNode({1: eth_block(1, 0)})},
                            max_transactions=3)
    payload = await service.collect()
    assert len(payload["large_transactions"]) == 3 and len(service.window) == 3


async def test_whale_alert_with_its_key_values_itself_and_never_shows_the_key() -> None:
    key = "wa-secret-123"
    asked: list[httpx.URL] = []

    def whale_alert(request: httpx.Request) -> httpx.Response:
        asked.append(request.url)
        return ok(body("whale_alert/transactions.json"))

    wall = FakeClock(1_770_000_000.0)
    service = whale_service({WHALE_ALERT: whale_alert}, prices=Prices(), key=key, wall=wall)
    payload = await service.collect()
    assert payload["status"] == "ok"
    assert asked[0].params["api_key"] == key and asked[0].params["min_value"] == "1000000"
    assert wall.now - int(asked[0].params["start"]) == 3_540  # the hour Whale Alert's plans reach, less a minute
    # only transfers Whale Alert valued at or above the threshold; its own USD values are kept
    assert payload["large_transactions"] and all(t["value"] >= 1_000_000 for t in payload["large_transactions"])
    assert {t["source"] for t in payload["large_transactions"]} == {"whale_alert"}
    assert key not in json.dumps(payload)


async def test_whale_alert_error_is_redacted() -> None:
    key = "wa-secret-456"
    service = whale_service({WHALE_ALERT: httpx.Response(401, text=f"bad key {key}")}, prices=Prices(), key=key)
    payload = await service.collect()
    assert payload["providers"]["whale_alert"]["status"] == "error"
    assert key not in json.dumps(payload)


def market_update(fetched_at: float, *, quote_currency: str = "USD", status: str = "ok") -> dict[str, Any]:
    """A market_data payload as the stream publishes it."""
    return MarketDataPayload(timestamp=iso(fetched_at) or "", fetched_at=iso(fetched_at), status=status,
                             quote_currency=quote_currency,
                             prices={"bitcoin": 64000.0, "ethereum": 3200.0, "tether": 1.0}).model_dump(mode="json")


def test_hub_prices_read_market_data_and_refuse_old_prices() -> None:
    hub = Hub()
    read = hub_prices(hub)
    assert read() == Prices()  # market_data has published nothing yet
    hub.publish("market_data", market_update(time.time()))
    assert read().usd == {"BTC": 64000.0, "ETH": 3200.0}
    hub.publish("market_data", market_update(time.time(), quote_currency="USDT"))
    assert read().currency == "USDT"
    hub.publish("market_data", market_update(time.time() - 7200))
    assert read().usd == {}
    hub.publish("market_data", {"status": "no_data", "prices": "not what market_data publishes"})
    assert read() == Prices()


async def test_build_declares_pools_and_reads_market_data_through_the_hub(tmp_path: Path) -> None:
    settings = Settings(data_source="replay", data_dir=tmp_path)
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport({})), budgets=False)
    hub = Hub()
    ctx = build_context(settings, fetcher, {"whale_tracking": 15.0, "market_data": 5.0}, hub=hub)
    [service] = build(ctx)
    assert isinstance(service, WhaleTrackingService)
    assert {"whales_bitcoin", "whales_ethereum", "whales_whale_alert"} <= set(ctx.pools)
    assert not fetcher.runtime("whale_alert").provider.enabled  # no key: never called
    assert service.prices() == Prices()  # market_data published nothing: nothing is valued
    hub.publish("market_data", market_update(time.time()))
    assert service.prices().usd == {"BTC": 64000.0, "ETH": 3200.0}


async def test_replay_recordings_serve_bitcoin(tmp_path: Path) -> None:
    settings = Settings(data_source="replay", data_dir=tmp_path)
    fetcher = Fetcher(http_client(settings), budgets=False, retries=0)
    ctx = build_context(settings, fetcher, {"whale_tracking": 15.0})
    [service] = build(ctx)
    assert isinstance(service, WhaleTrackingService)
    service.prices = lambda: PRICES
    payload = await service.collect()
    assert payload["status"] == "ok" and payload["data_source"] == "replay"
    assert payload["providers"]["blockchain_info_unconfirmed"]["status"] == "ok"
    # the recorded transactions are real and small: nothing crosses the threshold, and the total says 0
    assert payload["large_transactions"] == [] and payload["total_volume"] == 0
    await fetcher.http.aclose()


async def test_a_key_echoed_in_a_200_error_body_is_never_published(caplog: pytest.LogCaptureFixture) -> None:
    key = "wa-secret-456"
    echo = httpx.Response(200, json={"result": "error", "message": f"invalid api_key {key}"})
    service = whale_service({WHALE_ALERT: echo}, prices=Prices(), key=key)
    payload = await service.collect()
    assert "invalid api_key ***" in payload["providers"]["whale_alert"]["error"]
    assert key not in json.dumps(payload) and key not in caplog.text
