"""whale_tracking on Ethereum: ERC-20 stablecoin transfers (USDT, USDC) read from public nodes' eth_getLogs beside
plain Ether transfers, bounded to the blocks scanned, and what each update says it covered.

The logs bodies the nodes answer with here are hand-written in eth_getLogs' format (the one recorded body,
``whales/usdt-eth_getLogs-block-0x15536ea.trimmed.json``, has no transfer above $1M); the blocks are the recorded
test-chain block, renumbered, with a real mainnet block's logs bloom where a block must hold token logs.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from services.ports import Prices
from services.whale_tracking import WhalePools, WhaleTrackingService
from sources.errors import AnswerError
from sources.fetcher import Fetcher
from sources.pools import Pool
from sources.providers.eth_transfers import (
    STABLECOINS,
    TRANSFER_TOPIC,
    TRANSFER_TOPIC_BLOOM,
    bloom_may_hold,
    eth_scanners,
    normalize_eth_block,
    normalize_token_logs,
)
from sources.providers.rpc import nodes_for, rpc_result
from sources.providers.whales import BlockchainInfoUnconfirmed, MempoolRecent, WhaleAlert
from tests.support.clock import FakeClock
from tests.support.recordings import recorded_json as body
from tests.support.recordings import routes_transport

NODE_A, NODE_B = "https://ethereum-rpc.publicnode.com", "https://eth.llamarpc.com"
USDT, USDC = STABLECOINS
BLOCK_TIME = 1_742_988_107  # the recorded mainnet block's time (2025-03-26 11:21:47 UTC)
PRICES = Prices({"BTC": 60_000.0, "ETH": 3_000.0}, BLOCK_TIME, source="coingecko", data_time=BLOCK_TIME - 30)
MAINNET_BLOCK = "whales/mainnet-eth_getBlockByNumber-latest-hashes-2025-03-26.json"
RECORDED_LOGS = "whales/usdt-eth_getLogs-block-0x15536ea.trimmed.json"



# -- keccak-256, to check the bloom bits written into sources/providers/whales.py ------------------------

_RC = [0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000, 0x000000000000808B,
       0x0000000080000001, 0x8000000080008081, 0x8000000000008009, 0x000000000000008A, 0x0000000000000088,
       0x0000000080008009, 0x000000008000000A, 0x000000008000808B, 0x800000000000008B, 0x8000000000008089,
       0x8000000000008003, 0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
       0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008]
_ROT = [[0, 36, 3, 41, 18], [1, 44, 10, 45, 2], [62, 6, 43, 15, 61], [28, 55, 25, 21, 56], [27, 20, 39, 8, 14]]
_M = (1 << 64) - 1


def _rol(x: int, n: int) -> int:
    return ((x << n) | (x >> (64 - n))) & _M if n % 64 else x


def _permute(a: list[list[int]]) -> list[list[int]]:
    for rc in _RC:
        c = [a[x][0] ^ a[x][1] ^ a[x][2] ^ a[x][3] ^ a[x][4] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rol(c[(x + 1) % 5], 1) for x in range(5)]
        a = [[a[x][y] ^ d[x] for y in range(5)] for x in range(5)]
        b = [[0] * 5 for _ in range(5)]
        for x in range(5):
            for y in range(5):
                b[y][(2 * x + 3 * y) % 5] = _rol(a[x][y], _ROT[x][y])
        a = [[b[x][y] ^ (~b[(x + 1) % 5][y] & b[(x + 2) % 5][y]) for y in range(5)] for x in range(5)]
        a[0][0] ^= rc
    return a


def keccak256(data: bytes) -> bytes:
    """Keccak-256 as Ethereum uses it (the original padding, not NIST SHA3-256's), rate 136 bytes."""
    padded = bytearray(data) + b"\x01"
    padded += bytes(-len(padded) % 136)
    padded[-1] |= 0x80
    state = [[0] * 5 for _ in range(5)]
    for offset in range(0, len(padded), 136):
        for i in range(17):
            state[i % 5][i // 5] ^= int.from_bytes(padded[offset + 8 * i: offset + 8 * i + 8], "little")
        state = _permute(state)
    return b"".join(state[i % 5][i // 5].to_bytes(8, "little") for i in range(4))


def bloom_bits(value: bytes) -> tuple[int, ...]:
    digest = keccak256(value)
    return tuple(int.from_bytes(digest[i:i + 2], "big") & 0x7FF for i in (0, 2, 4))


def test_bloom_bits_are_those_of_the_contracts_and_the_transfer_topic() -> None:
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert "0x" + keccak256(b"Transfer(address,address,uint256)").hex() == TRANSFER_TOPIC
    assert bloom_bits(bytes.fromhex(TRANSFER_TOPIC[2:])) == TRANSFER_TOPIC_BLOOM
    for coin in STABLECOINS:
        assert bloom_bits(bytes.fromhex(coin.contract[2:])) == coin.bloom
    assert (USDT.contract, USDT.decimals) == ("0xdac17f958d2ee523a2206206994597c13d831ec7", 6)
    assert (USDC.contract, USDC.decimals) == ("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", 6)


def test_a_real_mainnet_bloom_holds_the_stablecoins_and_the_test_chain_bloom_does_not() -> None:
    mainnet = rpc_result(body(MAINNET_BLOCK))["logsBloom"]
    assert bloom_may_hold(mainnet, TRANSFER_TOPIC_BLOOM)
    assert bloom_may_hold(mainnet, USDT.bloom) and bloom_may_hold(mainnet, USDC.bloom)
    test_chain = rpc_result(body("ethereum/eth_getBlockByNumber-latest-full.json"))["logsBloom"]
    assert not bloom_may_hold(test_chain, USDT.bloom) and not bloom_may_hold(test_chain, USDC.bloom)
    assert bloom_may_hold(None, USDT.bloom)  # no bloom to read: the logs must be asked for


# -- the logs normaliser -----------------------------------------------------------------------------------

def test_recorded_usdt_logs_read_transfers_only_and_every_log_of_a_transaction() -> None:
    result = rpc_result(body(RECORDED_LOGS))
    transfers, outside = normalize_token_logs(result, first=0x15536EA, last=0x15536EA, times={}, source="node")
    # three Transfer logs; the Approval (same topics layout, another event) is left out
    assert outside == 0 and [t.log_index for t in transfers] == [0x2B, 0x94, 0x149]
    first = transfers[0]
    assert first.amount == pytest.approx(49_998.5) and first.symbol == "USDT" and first.chain == "ethereum"
    assert first.sender == "0x56eddb7aa87536c09ccc2793473599fd21a8b17f"
    assert first.receiver == "0xe291cc3e5b9e0c9b37c9fbdd549abf3b5c0ad342"
    assert first.hash == "0x9ebd9461d1973d565c0a53c054e3eb058b1b2a14d0982cea11db488b455a7dab"
    assert first.block_number == 0x15536EA and first.contract == USDT.contract and first.timestamp is None
    assert transfers[1].amount == pytest.approx(35_433.288322)
    assert len({t.key for t in transfers}) == 3  # one key per log, not per transaction


def test_logs_for_other_blocks_than_asked_are_not_believed() -> None:
    result = rpc_result(body(RECORDED_LOGS))
    transfers, outside = normalize_token_logs(result, first=100, last=101, times={}, source="node")
    assert transfers == [] and outside == 3


def test_odd_logs_are_left_out_and_an_error_answer_is_the_nodes_failure() -> None:
    good = token_log(USDC, 5, 7, 2_000_000, sender="aa", receiver="bb")
    removed = {**token_log(USDT, 5, 8, 9), "removed": True}
    nft = {**token_log(USDT, 5, 9, 9), "topics": [TRANSFER_TOPIC, "0x" + "0" * 64, "0x" + "0" * 64, "0x" + "1" * 64]}
    other = {**token_log(USDT, 5, 10, 9), "address": "0x" + "12" * 20}
    bad_amount = {**token_log(USDT, 5, 11, 9), "data": "0x" + "f" * 70}
    transfers, _ = normalize_token_logs([good, removed, nft, other, bad_amount, "x"], first=5, last=5,
                                        times={5: BLOCK_TIME}, source="node")
    [usdc] = transfers
    assert usdc.symbol == "USDC" and usdc.amount == 2_000_000 and usdc.timestamp == BLOCK_TIME
    assert usdc.sender == "0x" + "aa" * 20 and usdc.receiver == "0x" + "bb" * 20
    with pytest.raises(AnswerError, match="more than 10000 results"):
        rpc_result({"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "query returned more than "
                                                                                     "10000 results"}})
    with pytest.raises(AnswerError):
        normalize_token_logs({"logs": []}, first=1, last=1, times={}, source="node")


# -- the service ------------------------------------------------------------------------------------------

def token_log(coin: Any, block: int, index: int, tokens: float, *, sender: str = "01", receiver: str = "02",
              tx: str | None = None) -> dict[str, Any]:
    """A Transfer log in eth_getLogs' shape (hand-written)."""
    return {"address": coin.contract, "topics": [TRANSFER_TOPIC, "0x" + "0" * 24 + sender * 20,
                                                 "0x" + "0" * 24 + receiver * 20],
            "data": "0x" + format(int(tokens * 10**coin.decimals), "064x"), "blockNumber": hex(block),
            "transactionHash": tx or f"0x{block:032x}{index:032x}", "transactionIndex": "0x1",
            "blockHash": "0x" + "ab" * 32, "logIndex": hex(index), "removed": False}


def chain_block(number: int, *, eth: float = 0.0, with_tokens: bool = True) -> dict[str, Any]:
    """The recorded test-chain block, renumbered and dated, its fourth transaction moving ``eth``; with a real
    mainnet block's logs bloom when it must hold stablecoin logs."""
    block = copy.deepcopy(rpc_result(body("ethereum/eth_getBlockByNumber-latest-full.json")))
    block["number"], block["timestamp"] = hex(number), hex(BLOCK_TIME + 12 * (number - 100))
    tx = block["transactions"][3]
    tx["hash"], tx["value"] = f"0x{number:064x}", hex(int(eth * 10**18))
    if with_tokens:
        block["logsBloom"] = rpc_result(body(MAINNET_BLOCK))["logsBloom"]
    return block


class Chain:
    """A JSON-RPC node serving blocks and token logs from tables; counts the calls."""

    def __init__(self, blocks: dict[int, dict[str, Any]], logs: list[dict[str, Any]] | None = None,
                 logs_error: dict[str, Any] | None = None) -> None:
        self.blocks, self.logs, self.logs_error = blocks, logs or [], logs_error
        self.asked: list[tuple[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        call = json.loads(request.content)
        method, params = call["method"], call["params"]
        self.asked.append((method, params[0]))
        if method == "eth_getBlockByNumber":
            assert params[1] is True
            number = max(self.blocks) if params[0] == "latest" else int(params[0], 16)
            answer: dict[str, Any] = {"result": self.blocks.get(number)}
        else:
            assert method == "eth_getLogs"
            query = params[0]
            assert query["topics"] == [TRANSFER_TOPIC] and query["address"] == [USDT.contract, USDC.contract]
            low, high = int(query["fromBlock"], 16), int(query["toBlock"], 16)
            answer = ({"error": self.logs_error} if self.logs_error else
                      {"result": [log for log in self.logs if low <= int(log["blockNumber"], 16) <= high]})
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": call["id"], **answer})


def eth_service(nodes: dict[str, Chain], *, prices: Prices = PRICES, **kwargs: Any) -> WhaleTrackingService:
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(nodes)), retries=0, backoff=0.001,
                      budgets=False)
    pools = WhalePools(bitcoin=Pool("whales_bitcoin", [BlockchainInfoUnconfirmed(), MempoolRecent()], fetcher),
                       ethereum=Pool("whales_ethereum", eth_scanners()[:2], fetcher),
                       whale_alert=Pool("whales_whale_alert", [WhaleAlert(None)], fetcher))
    return WhaleTrackingService(pools, fetcher, threshold=1_000_000, prices=lambda: prices, data_source="live",
                                max_wait=0.0, wall=FakeClock(BLOCK_TIME + 20), **kwargs)


async def test_stablecoin_transfers_join_ether_valued_at_one_dollar_and_said_so() -> None:
    logs = [token_log(USDT, 100, 3, 5_000_000, sender="aa", receiver="bb"),
            token_log(USDC, 100, 4, 999_999, sender="cc", receiver="dd"),  # under $1M at $1
            token_log(USDT, 100, 5, 1_200_000, sender="aa", receiver="ee", tx=f"0x{100:064x}")]
    node = Chain({100: chain_block(100, eth=400)}, logs)
    payload = await eth_service({NODE_A: node}).collect()
    by_key = {(t["symbol"], t["log_index"]): t for t in payload["large_transactions"]}
    # 400 ETH at $3,000 and two USDT transfers over $1M; 999,999 USDC at $1 stays under the threshold
    assert set(by_key) == {("ETH", None), ("USDT", 3), ("USDT", 5)}
    usdt = by_key[("USDT", 3)]
    assert usdt["value"] == 5_000_000 and usdt["price_usd"] == 1.0 and usdt["price_source"] == "usd_peg"
    assert usdt["from"] == "0x" + "aa" * 20 and usdt["to"] == "0x" + "bb" * 20 and usdt["block_number"] == 100
    assert usdt["token_contract"] == USDT.contract and usdt["timestamp"] == "2025-03-26T11:21:47.000Z"
    assert usdt["explorer_url"] == f"https://etherscan.io/tx/{usdt['hash']}"
    assert "USDT valued at $1 a token because they are USD stablecoins" in payload["message"]
    assert payload["prices_used"] == {"BTC": 60_000.0, "ETH": 3_000.0, "USDT": 1.0}
    assert payload["prices_detail"]["USDT"]["source"] == "usd_peg"
    eth = payload["prices_detail"]["ETH"]
    assert eth["source"] == "market_data/coingecko" and eth["data_time"] == "2025-03-26T11:21:17.000Z"
    assert ("eth_getLogs", {"fromBlock": "0x64", "toBlock": "0x64", "address": [USDT.contract, USDC.contract],
                            "topics": [TRANSFER_TOPIC]}) in node.asked
    coverage = payload["coverage"]["ethereum"]
    assert coverage["token_logs"] == "read" and coverage["token_transfers_seen"] == 3
    assert coverage["source"] == "rpc_eth_publicnode_whales" and coverage["transactions_seen"] == 4


async def test_ether_and_token_of_one_transaction_are_two_transfers() -> None:
    """The fourth transaction moves 400 ETH ($1.2M) and, by its log 5, 1.2M USDT: both are reported."""
    logs = [token_log(USDT, 100, 5, 1_200_000, tx=f"0x{100:064x}")]
    payload = await eth_service({NODE_A: Chain({100: chain_block(100, eth=400)}, logs)}).collect()
    assert sorted(t["symbol"] for t in payload["large_transactions"]) == ["ETH", "USDT"]
    assert payload["total_volume"] == 2_400_000


async def test_stablecoins_at_market_datas_price_when_it_has_one() -> None:
    prices = Prices({**PRICES.usd, "USDT": 0.9990, "USDC": 1.0001}, BLOCK_TIME, source="coinpaprika")
    logs = [token_log(USDC, 100, 3, 2_000_000)]
    payload = await eth_service({NODE_A: Chain({100: chain_block(100)}, logs)}, prices=prices).collect()
    [usdc] = payload["large_transactions"]
    assert usdc["value"] == 2_000_200 and usdc["price_source"] == "market_data/coinpaprika"
    assert payload["prices_used"]["USDC"] == 1.0001 and "USDT" not in payload["prices_used"]
    assert "stablecoins" not in (payload["message"] or "")


async def test_no_logs_asked_when_no_block_bloom_can_hold_them() -> None:
    node = Chain({100: chain_block(100, with_tokens=False)}, [token_log(USDT, 100, 3, 5_000_000)])
    payload = await eth_service({NODE_A: node}).collect()
    assert [method for method, _ in node.asked] == ["eth_getBlockByNumber"]
    assert payload["coverage"]["ethereum"]["token_logs"] == "not_in_bloom"
    assert payload["coverage"]["ethereum"]["token_transfers_seen"] is None and payload["large_transactions"] == []


async def test_a_node_refusing_the_logs_fails_and_the_next_node_answers() -> None:
    blocks = {100: chain_block(100)}
    limited = Chain(blocks, logs_error={"code": -32005, "message": "query returned more than 10000 results"})
    good = Chain(blocks, [token_log(USDT, 100, 3, 3_000_000)])
    payload = await eth_service({NODE_A: limited, NODE_B: good}).collect()
    assert payload["providers"]["rpc_eth_publicnode_whales"]["status"] == "error"
    assert "more than 10000 results" in payload["providers"]["rpc_eth_publicnode_whales"]["error"]
    assert payload["coverage"]["ethereum"]["source"] == "rpc_eth_llamarpc_whales"
    assert [t["value"] for t in payload["large_transactions"]] == [3_000_000]


async def test_logs_are_read_for_the_blocks_scanned_only_and_coverage_counts_the_skipped() -> None:
    node = Chain({100: chain_block(100)}, [token_log(USDT, n, 1, 2_000_000) for n in range(95, 110)])
    service = eth_service({NODE_A: node})
    first = await service.collect()
    assert first["coverage"]["ethereum"] == {**first["coverage"]["ethereum"], "blocks_scanned": 1, "first_block": 100,
                                             "last_block": 100, "blocks_skipped": 0}
    node.blocks = {n: chain_block(n) for n in range(100, 106)}  # five blocks later, two are read per run
    node.asked.clear()
    payload = await service.collect()
    assert node.asked == [("eth_getBlockByNumber", "latest"), ("eth_getBlockByNumber", hex(104)),
                          ("eth_getLogs", {"fromBlock": hex(104), "toBlock": hex(105),
                                           "address": [USDT.contract, USDC.contract], "topics": [TRANSFER_TOPIC]})]
    coverage = payload["coverage"]["ethereum"]
    assert (coverage["blocks_scanned"], coverage["first_block"], coverage["last_block"]) == (2, 104, 105)
    assert coverage["blocks_skipped"] == 3 and coverage["token_transfers_seen"] == 2
    assert sorted(t["block_number"] for t in payload["large_transactions"]) == [100, 104, 105]


async def test_whale_alert_and_the_nodes_reporting_one_transfer_count_it_once() -> None:
    logs = [token_log(USDT, 100, 3, 5_000_000, tx="0x" + "7" * 64)]
    service = eth_service({NODE_A: Chain({100: chain_block(100)}, logs)})
    await service.collect()
    alert = {"result": "success", "transactions": [
        {"blockchain": "ethereum", "symbol": "usdt", "hash": "7" * 64, "from": {"address": "aa" * 20},
         "to": {"address": "bb" * 20}, "timestamp": BLOCK_TIME, "amount": 5_000_000, "amount_usd": 5_001_000}]}
    read = WhaleAlert.normalize_transactions(alert)
    service._admit(read, PRICES, BLOCK_TIME + 30)
    assert len(service.window) == 1


def test_the_scanners_are_providers_of_their_own() -> None:
    scanners = eth_scanners()
    nodes = nodes_for("ethereum")
    assert [s.base_url for s in scanners] == [n.base_url for n in nodes]
    assert all(s.id == f"{n.id}_whales" and s.category == "whales" for s, n in zip(scanners, nodes, strict=True))


def test_ethereum_block_counts_every_transaction_and_keeps_its_bloom() -> None:
    block = normalize_eth_block(chain_block(100, eth=1), "node")
    assert block.transactions == 4 and len(block.transfers) == 1 and block.logs_bloom is not None
    assert block.timestamp == BLOCK_TIME and block.transfers[0].block_number == 100
