"""The Ethereum block whale_tracking's scanners are served in replay (issue 10: a real recorded transfer over the
threshold): the body is the recorded one, and it is real chain data, checked from its own fields without a library.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from app import create_app
from sources.providers.eth_transfers import normalize_eth_block
from sources.providers.rpc import rpc_result
from tests.support.paths import REPLAY
from tests.support.server import serve
from tests.support.settings import make_settings
from tests.test_whales_ethereum import keccak256

BLOCK = REPLAY / "rpc_whales" / "eth_getBlockByNumber-ethereum-block-50017-full-2015-08-07.json"


def test_the_replayed_ethereum_block_is_the_recorded_mainnet_block() -> None:
    """The served body is the recorded one (blockchain-etl/ethereum-etl), and it is real chain data: its header
    hashes to its ``hash``, each transaction to its ``hash``, and the transactions to its ``transactionsRoot``."""
    raw = BLOCK.read_bytes()
    assert len(raw) == 4635 and raw.endswith(b"}\n")
    block = rpc_result(orjson.loads(raw))
    header = [_b(block[k]) for k in ("parentHash", "sha3Uncles", "miner", "stateRoot", "transactionsRoot",
                                     "receiptsRoot", "logsBloom")]
    header += [_q(block[k]) for k in ("difficulty", "number", "gasLimit", "gasUsed", "timestamp")]
    header += [_b(block["extraData"]), _b(block["mixHash"]), _b(block["nonce"])]
    assert "0x" + keccak256(_rlp(header)).hex() == block["hash"]
    raws = []
    for tx in block["transactions"]:  # Frontier transactions: nonce, gasPrice, gas, to, value, input, v, r, s
        encoded = _rlp([_q(tx["nonce"]), _q(tx["gasPrice"]), _q(tx["gas"]), _b(tx["to"]), _q(tx["value"]),
                        _b(tx["input"]), _q(tx["v"]), _q(tx["r"]), _q(tx["s"])])
        assert "0x" + keccak256(encoded).hex() == tx["hash"]
        raws.append(encoded)
    assert "0x" + _trie_root([(_rlp(_q(hex(i))), r) for i, r in enumerate(raws)]).hex() == block["transactionsRoot"]
    parsed = normalize_eth_block(block, "node")
    assert [t.amount for t in parsed.transfers] == [99.0, 1999.9, 14.74, 200.0]


def test_the_replayed_app_reports_the_ether_transfer_at_the_replayed_price(tmp_path: Path) -> None:
    """The demo: the whole app in replay values the recorded 1,999.9 ETH at market_data's replayed CoinGecko price
    (USD, 2023-07-28), and the stream shows the block's own time and says it is stale."""
    settings = make_settings(tmp_path, interval_scale=0.05)
    with serve(lambda: create_app(settings), settings) as server:
        def whales() -> dict[str, Any] | None:
            update = server.app.state.hub.latest("whale_tracking")
            return json.loads(update.text)["data"] if update else None

        def has_ether() -> bool:
            data = whales()
            return data is not None and any(t["chain"] == "ethereum" for t in data["large_transactions"])

        server.wait_for(has_ether, timeout=30)
        data = whales()
        assert data is not None
    [eth] = [t for t in data["large_transactions"] if t["chain"] == "ethereum"]
    assert (eth["symbol"], eth["amount"], eth["block_number"]) == ("ETH", 1999.9, 50_017)
    assert eth["price_usd"] == data["prices_used"]["ETH"] == 1874.18  # CoinGecko's ethereum of 2023-07-28
    assert eth["value"] == round(1999.9 * 1874.18, 2) and eth["value"] >= data["alert_threshold"] == 1_000_000
    assert (eth["from"], eth["to"]) == ("0xa29319e81069e5d60df00f3de5adee3505ecd5fb",
                                       "0x2910543af39aba0cd09dbb2d50200b3e800a63d2")
    assert eth["timestamp"] == "2015-08-07T21:26:56.000Z" and eth["price_source"] == "market_data/coingecko"
    assert data["prices_detail"]["ETH"]["quote_currency"] == "USD"
    assert data["status"] == "stale" and data["coverage"]["ethereum"]["status"] == "ok"


# -- RLP and the Merkle-Patricia trie root, to check a recorded block (no library needed) ------------------

def _q(value: str) -> bytes:
    number = int(value, 16)
    return number.to_bytes((number.bit_length() + 7) // 8, "big")


def _b(value: str) -> bytes:
    return bytes.fromhex(value[2:])


def _rlp_length(length: int, offset: int) -> bytes:
    if length < 56:
        return bytes([offset + length])
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(size)]) + size


def _rlp(item: bytes | list[Any]) -> bytes:
    if isinstance(item, bytes):
        return item if len(item) == 1 and item[0] < 0x80 else _rlp_length(len(item), 0x80) + item
    payload = b"".join(_rlp(i) for i in item)
    return _rlp_length(len(payload), 0xC0) + payload


def _compact(nibbles: list[int], leaf: bool) -> bytes:
    flag = 2 if leaf else 0
    nibbles = [flag + 1, *nibbles] if len(nibbles) % 2 else [flag, 0, *nibbles]
    return bytes(nibbles[i] * 16 + nibbles[i + 1] for i in range(0, len(nibbles), 2))


def _embed(node: list[Any]) -> bytes | list[Any]:
    encoded = _rlp(node)
    return node if len(encoded) < 32 else keccak256(encoded)


def _trie_node(items: list[tuple[list[int], bytes]]) -> list[Any]:
    if len(items) == 1:
        return [_compact(items[0][0], True), items[0][1]]
    shared = 0
    while all(len(k) > shared for k, _ in items) and len({k[shared] for k, _ in items}) == 1:
        shared += 1
    if shared:
        return [_compact(items[0][0][:shared], False), _embed(_trie_node([(k[shared:], v) for k, v in items]))]
    branch: list[Any] = [b""] * 17
    for nibble in range(16):
        group = [(k[1:], v) for k, v in items if k and k[0] == nibble]
        if group:
            branch[nibble] = _embed(_trie_node(group))
    branch[16] = next((v for k, v in items if not k), b"")
    return branch


def _trie_root(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return keccak256(_rlp(_trie_node([([n for c in k for n in (c >> 4, c & 15)], v) for k, v in pairs])))
