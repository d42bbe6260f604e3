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
from models.market import MarketDataPayload
from models.messages import iso
from models.whales import WhaleCoverage, WhalePrice, WhaleTrackingPayload, WhaleTransaction
from services.ports import Prices, hub_prices
from services.whale_tracking import WhalePools, WhaleTrackingService, build
from sources.errors import AnswerError
from sources.fetcher import Fetcher
from sources.http import http_client
from sources.pools import Pool
from sources.providers.eth_transfers import normalize_eth_block
from sources.providers.rpc import nodes_for, rpc_result
from sources.providers.whales import BlockchainInfoUnconfirmed, MempoolRecent, WhaleAlert
from tests.support.clock import FakeClock
from tests.support.context import build_context
from tests.support.recordings import recorded_json as body
from tests.support.recordings import routes_transport
from ui.tabs.whales import render_whales
from ui.widgets import View
from ws.hub import Hub

BLOCKCHAIN_INFO = "https://blockchain.info/unconfirmed-transactions"
MEMPOOL = "https://mempool.space/api/mempool/recent"
WHALE_ALERT = "https://api.whale-alert.io/v1/transactions"
ETH_NODE = "https://ethereum-rpc.publicnode.com"
SPEC_KEYS = {"large_transactions", "whale_wallets", "total_volume", "alert_threshold", "timestamp"}
PRICES = Prices({"BTC": 60_000.0, "ETH": 3_000.0}, 0.0)



def ok(payload: Any) -> httpx.Response:
    return httpx.Response(200, content=orjson.dumps(payload), headers={"content-type": "application/json"})


# -- normalisers ----------------------------------------------------------------------------------------

SMALL_TX = "whales/unconfirmed-tx-bdbd6859-2021-05-30.json"  # one input, one output, no change


def test_blockchain_info_recorded() -> None:
    [tx] = BlockchainInfoUnconfirmed.normalize_unconfirmed(body(SMALL_TX))
    assert tx.hash == "bdbd6859ac5c310fc2e302af6bdd2b758cf45c82495527aedbaee6b3b05defe9"
    assert tx.amount == pytest.approx(0.00362267) and (tx.chain, tx.symbol) == ("bitcoin", "BTC")
    assert tx.sender == "3Gd4ZqZQCuZqGbD6DBBXfqVk3AHpWr1uDT" and tx.receiver == "1P5Jb58TY2o7aP6o4qLsvDAWVP8w6Wrc6R"
    assert tx.timestamp == 1622415879 and tx.value_usd is None
    assert tx.amount_kind == "transferred" and tx.total_output == pytest.approx(0.00362267)


def test_bitcoin_change_back_to_an_input_address_is_not_transferred() -> None:
    """The recorded 300 BTC transaction: 50 BTC to another address, 250 BTC back to the spent P2PK output's own
    script and address. The transfer is the 50 BTC, to the other address; the total output is said apart."""
    tx = BlockchainInfoUnconfirmed.normalize_tx(body("whales/rawtx-1db6251a-300btc-p2pk-change-2011-08-11.json"))
    assert tx is not None and tx.hash.startswith("1db6251a")
    assert tx.amount == 50 and tx.total_output == 300 and tx.amount_kind == "transferred"
    assert tx.sender == "1PJJygLB42VsaTgo2twFPgRT8CNz1bpGNE" and tx.receiver == "15WvMGm9qG1wDb54TMcvgzZsfvz9KdxzoN"
    assert tx.sender_addresses == ("1PJJygLB42VsaTgo2twFPgRT8CNz1bpGNE",)
    assert tx.timestamp == 1313042188  # 2011-08-11: after Bitcoin's genesis, kept


def test_bitcoin_four_inputs_change_to_one_of_them() -> None:
    """The recorded 4-input transaction: the receiver is the largest output that is not change, the change (to
    one of the input addresses) is left out, and both input addresses are the sender's wallet."""
    tx = BlockchainInfoUnconfirmed.normalize_tx(body("whales/rawtx-4a367acd-4in-2out-change-2025-06-05.json"))
    assert tx is not None and tx.amount == pytest.approx(1.418) and tx.total_output == pytest.approx(1.42702483)
    assert tx.receiver == "bc1qwqdg6squsna38e46795at95yu9atm8azzmyvckulcc7kytlcckxswvvzej"
    assert tx.sender == "bc1qyy30guv6m5ez7ntj0ayr08u23w3k5s8vg3elmxdzlh8a3xskupyqn2lp5w"
    assert set(tx.sender_addresses) == {"bc1qyy30guv6m5ez7ntj0ayr08u23w3k5s8vg3elmxdzlh8a3xskupyqn2lp5w",
                                        "3G2W5fwfsXfgVJrBc9gxTYfHi6C9zUdtVd"}


def test_bitcoin_inputs_without_addresses_give_the_total_output_labelled() -> None:
    """Hand-written, blockchain.info's shape: an input that says neither address nor script cannot be matched
    against the outputs, so nothing is taken for change and the amount says it is the total output."""
    tx = {"hash": "h", "time": 1_700_000_000, "inputs": [{"prev_out": {"value": 10**9}}],
          "out": [{"addr": "1A", "value": 6 * 10**8}, {"addr": "1B", "value": 4 * 10**8}]}
    read = BlockchainInfoUnconfirmed.normalize_tx(tx)
    assert read is not None and read.amount == 10 and read.amount_kind == "total_output" and read.receiver == "1A"
    every_output_back = {"hash": "self", "inputs": [{"prev_out": {"addr": "1A", "value": 10**9}}],
                         "out": [{"addr": "1A", "value": 10**9 - 500}]}
    self_transfer = BlockchainInfoUnconfirmed.normalize_tx(every_output_back)
    assert self_transfer is not None and self_transfer.amount == 0 and self_transfer.receiver is None
    before_genesis = BlockchainInfoUnconfirmed.normalize_tx({**tx, "time": 540})  # a 1970 time is no time
    assert before_genesis is not None and before_genesis.timestamp is None


def test_blockchain_info_error_body_and_changed_shape() -> None:
    with pytest.raises(AnswerError):
        BlockchainInfoUnconfirmed.normalize_unconfirmed({"error": "Maximum concurrent requests reached."})
    with pytest.raises(AnswerError):
        BlockchainInfoUnconfirmed.normalize_unconfirmed({"txs": [{"hash": 1}, "x"]})
    assert BlockchainInfoUnconfirmed.normalize_unconfirmed({"txs": []}) == []
    good = body(SMALL_TX)["txs"][0]
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
    # mempool.space gives no addresses and no time: they stay empty, never guessed; its value is the total output
    assert all(t.sender is None and t.receiver is None and t.timestamp is None for t in transfers)
    assert all(t.amount_kind == "total_output" and t.total_output == t.amount for t in transfers)


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
    # the test chain's block time is 540 s after 1970: no time, rather than a 1970 date (issue 10)
    assert block.number == 0x36 and block.timestamp is None and block.transactions == 4
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
    tx = copy.deepcopy(body(SMALL_TX)["txs"][0])
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


#: The recorded small transaction's own time: the service's clock in these tests stands a few seconds after it,
#: so the transactions built from it are as fresh as a mempool's newest (ages count from the sources' own times).
SMALL_TX_TIME = 1_622_415_879


def whale_service(routes: dict, *, prices: Prices = PRICES, key: str | None = None,
                  **kwargs: Any) -> WhaleTrackingService:
    kwargs.setdefault("wall", FakeClock(SMALL_TX_TIME + 5))
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(routes)), retries=0, backoff=0.001,
                      budgets=False, redact=Redactor([key]), replay=True)
    pools = WhalePools(
        bitcoin=Pool("whales_bitcoin", [BlockchainInfoUnconfirmed(), MempoolRecent()], fetcher),
        ethereum=Pool("whales_ethereum", nodes_for("ethereum")[:1], fetcher),
        whale_alert=Pool("whales_whale_alert", [WhaleAlert(key)], fetcher),
    )
    return WhaleTrackingService(pools, fetcher, threshold=1_000_000, prices=lambda: prices,
                                data_source="live", max_wait=0.0, **kwargs)


async def test_large_transfers_valued_windowed_and_ranked() -> None:
    btc = {"txs": [big_btc("b1", 2000), *body(SMALL_TX)["txs"]]}
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
    # no addresses: the figure is the transaction's total output, change included, and says so
    assert tx["amount_kind"] == "total_output" and payload["coverage"]["bitcoin"]["amount_kind"] == "total_output"
    assert payload["coverage"]["bitcoin"]["source"] == "mempool_recent"
    assert payload["coverage"]["bitcoin"]["transactions_seen"] == 2
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
                             quote_currency=quote_currency, source="coingecko", data_time=iso(1_700_000_000),
                             prices={"bitcoin": 64000.0, "ethereum": 3200.0, "tether": 1.0}).model_dump(mode="json")


def test_hub_prices_read_market_data_and_refuse_old_prices() -> None:
    hub = Hub()
    read = hub_prices(hub)
    assert read() == Prices()  # market_data has published nothing yet
    hub.publish("market_data", market_update(time.time()))
    # the USD stablecoins too, for valuing ERC-20 transfers at their market price (issue 10)
    assert read().usd == {"BTC": 64000.0, "ETH": 3200.0, "USDT": 1.0}
    assert read().source == "coingecko" and read().data_time == 1_700_000_000
    hub.publish("market_data", market_update(time.time(), quote_currency="USDT"))
    assert read().currency == "USDT"
    hub.publish("market_data", market_update(time.time() - 7200))
    assert read().usd == {}
    hub.publish("market_data", {"status": "no_data", "prices": "not what market_data publishes"})
    assert read() == Prices()


async def test_build_declares_pools_and_reads_market_data_through_the_hub(tmp_path: Path) -> None:
    settings = Settings(data_source="replay", data_dir=tmp_path)
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport({})), budgets=False, replay=True)
    hub = Hub()
    ctx = build_context(settings, fetcher, {"whale_tracking": 15.0, "market_data": 5.0}, hub=hub)
    [service] = build(ctx)
    assert isinstance(service, WhaleTrackingService)
    assert {"whales_bitcoin", "whales_ethereum", "whales_whale_alert"} <= set(ctx.pools)
    assert not fetcher.runtime("whale_alert").provider.enabled  # no key: never called
    assert service.prices() == Prices()  # market_data published nothing: nothing is valued
    hub.publish("market_data", market_update(time.time()))
    assert service.prices().usd == {"BTC": 64000.0, "ETH": 3200.0, "USDT": 1.0}


async def test_replay_recordings_serve_a_real_transfer_over_the_threshold_on_each_chain(tmp_path: Path) -> None:
    settings = Settings(data_source="replay", data_dir=tmp_path)
    fetcher = Fetcher(http_client(settings), budgets=False, retries=0, replay=True)
    ctx = build_context(settings, fetcher, {"whale_tracking": 15.0})
    [service] = build(ctx)
    assert isinstance(service, WhaleTrackingService)
    service.prices = lambda: PRICES
    payload = await service.collect()
    assert payload["data_source"] == "replay"
    assert payload["providers"]["blockchain_info_unconfirmed"]["status"] == "ok"
    # real recorded transfers over the threshold (issue 10), newest first: 1,999.9 ETH of mainnet block 50,017
    # (2015-08-07), then 50 BTC of the 300 BTC transaction (2011), the 250 BTC change left out
    eth, btc = payload["large_transactions"]
    assert btc["hash"].startswith("1db6251a") and btc["amount"] == 50 and btc["total_output"] == 300
    assert btc["value"] == 50 * 60_000 and btc["amount_kind"] == "transferred"
    assert btc["from"] == "1PJJygLB42VsaTgo2twFPgRT8CNz1bpGNE" and btc["to"] == "15WvMGm9qG1wDb54TMcvgzZsfvz9KdxzoN"
    assert eth == {**eth, "hash": "0xc173b771ce6c50eff46c7f6024e0e747f6c306767a27cabb8d8e3017b421b250",
                   "chain": "ethereum", "symbol": "ETH", "amount": 1999.9, "value": round(1999.9 * 3_000, 2),
                   "price_usd": 3_000.0, "from": "0xa29319e81069e5d60df00f3de5adee3505ecd5fb",
                   "to": "0x2910543af39aba0cd09dbb2d50200b3e800a63d2", "timestamp": "2015-08-07T21:26:56.000Z",
                   "block_number": 50_017, "source": "rpc_eth_publicnode_whales", "amount_kind": "transferred"}
    assert payload["total_volume"] == round(50 * 60_000 + 1999.9 * 3_000, 2)
    # the block's three other transfers (99, 200 and 14.74 ETH) are under the threshold: not reported
    assert all(t["amount"] >= 1999 or t["chain"] == "bitcoin" for t in payload["large_transactions"])
    # sender and change address are one wallet, counted once: each wallet once, not the change as a second
    assert [(w["address"], w["volume_usd"]) for w in payload["whale_wallets"]] == [
        ("0x2910543af39aba0cd09dbb2d50200b3e800a63d2", 5_999_700), ("0xa29319e81069e5d60df00f3de5adee3505ecd5fb",
                                                                     5_999_700),
        ("15WvMGm9qG1wDb54TMcvgzZsfvz9KdxzoN", 3_000_000), ("1PJJygLB42VsaTgo2twFPgRT8CNz1bpGNE", 3_000_000)]
    # the update says when its data was captured (the Bitcoin answer's capture; the Ethereum block's is not
    # known) and how old the newest data was then (2015): stale, not "ok", and it names whose data that is
    assert payload["recorded_at"] == "2025-06-26T19:41:18.000Z"
    assert payload["data_time"] == eth["timestamp"]
    assert payload["status"] == "stale" and "over the 900 s" in payload["message"]
    assert "rpc_eth_publicnode_whales" in payload["message"]
    assert payload["coverage"]["bitcoin"] == {**payload["coverage"]["bitcoin"], "status": "ok",
                                              "source": "blockchain_info_unconfirmed", "transactions_seen": 1,
                                              "amount_kind": "transferred"}
    # a block of 2015 predates USDT and USDC: its logs bloom holds no Transfer of theirs, so no eth_getLogs
    assert payload["coverage"]["ethereum"] == {**payload["coverage"]["ethereum"], "status": "ok",
                                               "source": "rpc_eth_publicnode_whales", "transactions_seen": 4,
                                               "blocks_scanned": 1, "first_block": 50_017, "last_block": 50_017,
                                               "blocks_skipped": 0, "token_logs": "not_in_bloom"}
    # the scanners are providers of their own, served the full block (["latest", true]); the nodes rpc_nodes,
    # explorers and onchain read keep the 2025-03-26 moment (["latest", false]) and are never called from here
    assert all(pid.endswith("_whales") for pid in payload["providers"] if pid.startswith("rpc_"))
    assert "rpc_eth_publicnode" not in fetcher.runtimes
    # the next run finds no newer block: nothing is read twice, the transfer stays in the window
    again = await service.collect()
    assert again["coverage"]["ethereum"]["blocks_scanned"] == 0 and len(again["large_transactions"]) == 2
    await fetcher.http.aclose()


async def test_a_key_echoed_in_a_200_error_body_is_never_published(caplog: pytest.LogCaptureFixture) -> None:
    key = "wa-secret-456"
    echo = httpx.Response(200, json={"result": "error", "message": f"invalid api_key {key}"})
    service = whale_service({WHALE_ALERT: echo}, prices=Prices(), key=key)
    payload = await service.collect()
    assert "invalid api_key ***" in payload["providers"]["whale_alert"]["error"]
    assert key not in json.dumps(payload) and key not in caplog.text


# -- wallets, coverage and freshness ----------------------------------------------------------------------

def spend(hash_: str, inputs: list[tuple[str, float]], outputs: list[tuple[str, float]]) -> dict[str, Any]:
    """A transaction in blockchain.info's shape (hand-written), dated at the test clock's time."""
    return {"hash": hash_, "time": SMALL_TX_TIME,
            "inputs": [{"prev_out": {"addr": a, "value": int(btc * 10**8)}} for a, btc in inputs],
            "out": [{"addr": a, "value": int(btc * 10**8)} for a, btc in outputs]}


async def test_wallets_join_addresses_spent_together_and_count_each_transfer_once() -> None:
    txs = [spend("t1", [("1P", 300), ("1Q", 10)], [("1R", 100), ("1Q", 209.9)]),  # 100 BTC to R, change to Q
           spend("t2", [("1Q", 50)], [("1S", 40), ("1Q", 9.9)])]  # Q is P's wallet: 40 BTC to S
    service = whale_service({BLOCKCHAIN_INFO: ok({"txs": txs}), ETH_NODE: EthNode({1: eth_block(1, 0)})})
    payload = await service.collect()
    amounts = {t["hash"]: (t["amount"], t["to"], t["total_output"]) for t in payload["large_transactions"]}
    assert amounts == {"t1": (100, "1R", 309.9), "t2": (40, "1S", 49.9)}
    wallets = {w["address"]: w for w in payload["whale_wallets"]}
    # P and Q are one wallet (spent together in t1): both transfers once each, $8.4M, not $8.4M + change
    assert wallets["1P"]["volume_usd"] == 140 * 60_000 and wallets["1P"]["transactions"] == 2
    assert wallets["1P"]["addresses"] == ["1Q"] and "1Q" not in wallets
    assert wallets["1R"]["volume_usd"] == 100 * 60_000 and wallets["1S"]["volume_usd"] == 40 * 60_000
    assert payload["total_volume"] == 140 * 60_000


async def test_every_update_says_its_coverage_and_the_prices_with_their_source_and_time() -> None:
    prices = Prices({"BTC": 60_000.0, "ETH": 3_000.0}, SMALL_TX_TIME - 40, source="kraken",
                    data_time=SMALL_TX_TIME - 60)
    txs = [spend("b1", [("1P", 30)], [("1R", 29.9)]), *body(SMALL_TX)["txs"]]
    service = whale_service({BLOCKCHAIN_INFO: ok({"txs": txs}), ETH_NODE: EthNode({7: eth_block(7, 1)})},
                            prices=prices)
    payload = await service.collect()
    bitcoin, ethereum, whale_alert = (payload["coverage"][k] for k in ("bitcoin", "ethereum", "whale_alert"))
    assert (bitcoin["status"], bitcoin["source"], bitcoin["transactions_seen"]) == (
        "ok", "blockchain_info_unconfirmed", 2)
    assert (ethereum["source"], ethereum["blocks_scanned"], ethereum["last_block"]) == ("rpc_eth_publicnode", 1, 7)
    assert ethereum["transactions_seen"] == 4 and ethereum["token_logs"] == "not_in_bloom"
    assert whale_alert == {**whale_alert, "status": "not_asked", "note": "needs an API key"}
    assert payload["prices_used"] == {"BTC": 60_000.0, "ETH": 3_000.0}
    assert payload["prices_detail"]["BTC"] == {
        "usd": 60_000.0, "source": "market_data/kraken", "quote_currency": "USD",
        "fetched_at": iso(SMALL_TX_TIME - 40), "data_time": iso(SMALL_TX_TIME - 60), "recorded_at": None}
    [tx] = payload["large_transactions"]
    assert tx["price_usd"] == 60_000.0 and tx["price_source"] == "market_data/kraken"


async def test_a_chain_without_a_price_is_not_asked_and_says_why() -> None:
    service = whale_service({}, prices=Prices({"ETH": 3_000.0}, 0.0))
    payload = await service.collect()
    assert payload["coverage"]["bitcoin"] == {**payload["coverage"]["bitcoin"], "status": "not_asked",
                                              "note": "no recent BTC price from market_data"}
    assert payload["coverage"]["ethereum"]["status"] == "failed"  # asked, and nothing answered
    assert "every provider failed" in payload["coverage"]["ethereum"]["note"]


async def test_freshness_counts_from_the_newest_transaction_the_sources_gave() -> None:
    wall = FakeClock(SMALL_TX_TIME + 5)
    routes = {BLOCKCHAIN_INFO: ok({"txs": [big_btc("b1", 100)]}), ETH_NODE: EthNode({1: eth_block(1, 0)})}
    service = whale_service(routes, wall=wall)
    payload = await service.collect()
    assert payload["status"] == "ok" and payload["data_time"] == iso(SMALL_TX_TIME)
    assert payload["age_seconds"] == 5 and payload["max_age_seconds"] == 900
    # the source keeps answering, but with the same old transactions: stuck, so stale however it answers
    wall.advance(1000)
    stuck = await service.collect()
    assert stuck["status"] == "stale" and "over the 900 s" in stuck["message"]
    assert stuck["large_transactions"] == payload["large_transactions"]


def test_the_whales_tab_says_what_amounts_are_what_was_looked_at_and_the_prices_origin() -> None:
    txs = [WhaleTransaction(hash="1db6", value=3e6, from_="1PJJ", to="15Wv", timestamp=iso(SMALL_TX_TIME),
                            chain="bitcoin", symbol="BTC", amount=50, total_output=300, source="blockchain_info"),
           WhaleTransaction(hash="m1", value=3e6, timestamp=None, chain="bitcoin", symbol="BTC", amount=50,
                            amount_kind="total_output", total_output=50, source="mempool_recent"),
           WhaleTransaction(hash="0x7", value=5e6, timestamp=None, chain="ethereum", symbol="USDT", amount=5e6,
                            source="rpc_eth_publicnode_whales", price_usd=1.0, price_source="usd_peg")]
    coverage = {"bitcoin": WhaleCoverage(source="blockchain_info_unconfirmed", transactions_seen=1),
                "ethereum": WhaleCoverage(source="rpc_eth_publicnode_whales", transactions_seen=350,
                                          blocks_scanned=2, first_block=104, last_block=105, blocks_skipped=3,
                                          token_logs="read", token_transfers_seen=12),
                "whale_alert": WhaleCoverage(status="not_asked", note="needs an API key")}
    detail = {"BTC": WhalePrice(usd=60_000, source="market_data/coingecko", data_time=iso(SMALL_TX_TIME)),
              "USDT": WhalePrice(usd=1.0, source="usd_peg")}
    data = WhaleTrackingPayload(large_transactions=txs, total_volume=11e6, alert_threshold=1e6, timestamp=iso(1),
                                fetched_at=iso(1), window_seconds=3600, prices_used={"BTC": 60_000, "USDT": 1.0},
                                prices_detail=detail, coverage=coverage).model_dump(mode="json")
    html = render_whales(data, View(now=SMALL_TX_TIME + 60))
    assert "of 300 out, change excluded" in html and "total output, change included" in html
    assert "USDT at $1 (a USD stablecoin; no market price)" in html and "from coingecko" in html
    assert "Bitcoin: 1 transaction from blockchain_info_unconfirmed" in html
    assert "blocks 104–105, 3 skipped" in html and "12 USDT/USDC transfers" in html
    assert "Whale Alert: needs an API key" in html
