"""Large-transaction sources: Bitcoin from blockchain.info and mempool.space, Ether from public JSON-RPC nodes,
and Whale Alert when its key is set. Each normalises to :class:`Transfer`.

Only Whale Alert values a transfer itself; the others give amounts in the chain's unit, which the service
values at market_data's prices. A value a source does not give (mempool.space has no addresses and no time) is
left out, never guessed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sources.errors import AnswerError
from sources.fetcher import Fetcher, Provider
from sources.limits import Rate
from sources.providers.rpc import UINT256_MAX, JsonRpcNode, hex_int
from sources.providers.values import json_count, json_number, objects, unix_seconds

SATOSHI_PER_BTC = 100_000_000
WEI_PER_ETH = 10**18
#: Whale Alert's name for several senders or receivers: not an address, so it is not shown as one.
MULTIPLE_ADDRESSES = "Multiple Addresses"


@dataclass(frozen=True)
class Transfer:
    hash: str
    chain: str  # "bitcoin", "ethereum", or Whale Alert's blockchain name
    symbol: str  # "BTC", "ETH", "USDT", ...
    amount: float  # in the asset's own unit
    sender: str | None
    receiver: str | None
    timestamp: float | None  # Unix seconds, as the source gives it
    source: str
    value_usd: float | None = None  # only when the source values it (Whale Alert)

    @property
    def key(self) -> str:
        """The identity of a transfer across sources: one transaction may move Ether and a token (Whale Alert
        reports the token), and Whale Alert writes Ethereum hashes without their 0x."""
        return f"{self.chain}:{self.symbol}:{self.hash.lower().removeprefix('0x')}"


@dataclass(frozen=True)
class EthBlock:
    number: int
    timestamp: float | None
    transfers: tuple[Transfer, ...]


def _address(value: Any) -> str | None:
    return value if isinstance(value, str) and value and value != MULTIPLE_ADDRESSES else None


def _largest_address(entries: Sequence[tuple[str | None, int]]) -> str | None:
    """The address that moved the most among a transaction's inputs or outputs (those with an address)."""
    known = [(value, addr) for addr, value in entries if addr]
    return max(known)[1] if known else None


class WhaleProvider(Provider):
    """A source of large transfers. ``since`` (Unix seconds) and ``min_value`` (USD) narrow the answer where the
    provider can filter (Whale Alert); a list of recent transactions (Bitcoin's mempool) ignores them."""

    category = "whales"

    async def fetch_transfers(self, fetcher: Fetcher, max_wait: float, *, since: float | None = None,
                              min_value: float = 0.0) -> list[Transfer]:
        raise NotImplementedError


class BitcoinSource(WhaleProvider):
    """A source of recent Bitcoin transactions (the ``whales_bitcoin`` pool fails over between them)."""


class BlockchainInfoUnconfirmed(BitcoinSource):
    id = "blockchain_info_unconfirmed"
    name = "Blockchain.com unconfirmed transactions"
    base_url = "https://blockchain.info"
    endpoints = ("/unconfirmed-transactions",)
    docs = "https://www.blockchain.com/explorer/api/blockchain_api"
    # blockchain.info asks for at most one query every 10 seconds; a burst of 2 leaves room for one retry.
    rate = Rate(6, 60, burst=2)
    probe_path = "/unconfirmed-transactions"
    probe_params = MappingProxyType({"format": "json"})
    probe_interval = 600.0
    slow_ms = 4000.0

    async def fetch_transfers(self, fetcher: Fetcher, max_wait: float, *, since: float | None = None,
                              min_value: float = 0.0) -> list[Transfer]:
        raw = await fetcher.get_json(self, "/unconfirmed-transactions", {"format": "json"}, max_wait=max_wait)
        return self.normalize_unconfirmed(raw)

    @classmethod
    def normalize_unconfirmed(cls, raw: Any) -> list[Transfer]:
        """``txs[]``: ``hash``, ``time`` (when blockchain.com's node saw it), ``inputs[].prev_out.{addr, value}``
        and ``out[].{addr, value}``, values in satoshi. The amount is the total output (change included); the
        sender is the input address that paid the most, the receiver the output address that got the most."""
        if not isinstance(raw, dict) or not isinstance(raw.get("txs"), list):
            raise AnswerError(f"blockchain.info: expected an object with txs, got {str(raw)[:120]}")
        transfers = []
        for tx in raw["txs"]:
            transfer = cls._transfer(tx)
            if transfer is not None:
                transfers.append(transfer)
        if raw["txs"] and not transfers:
            raise AnswerError("blockchain.info: no transaction in a shape we can read")
        return transfers

    @classmethod
    def _transfer(cls, tx: Any) -> Transfer | None:
        if not isinstance(tx, dict) or not isinstance(tx.get("hash"), str):
            return None
        outputs = [(_address(o.get("addr")), json_count(o.get("value"))) for o in objects(tx.get("out"))]
        if not outputs or any(value is None or value < 0 for _, value in outputs):
            return None
        previous = [i.get("prev_out") for i in objects(tx.get("inputs"))]
        inputs = [(_address(p.get("addr")), json_count(p.get("value"))) for p in previous if isinstance(p, dict)]
        paid = [(addr, value) for addr, value in inputs if value is not None]
        received = [(addr, value) for addr, value in outputs if value is not None]
        return Transfer(hash=tx["hash"], chain="bitcoin", symbol="BTC",
                        amount=sum(value for _, value in received) / SATOSHI_PER_BTC,
                        sender=_largest_address(paid), receiver=_largest_address(received),
                        timestamp=unix_seconds(json_number(tx.get("time"))), source=cls.id)


class MempoolRecent(BitcoinSource):
    id = "mempool_recent"
    name = "mempool.space recent transactions"
    base_url = "https://mempool.space/api"
    endpoints = ("/mempool/recent",)
    docs = "https://mempool.space/docs/api/rest#get-mempool-transactions"
    # No published limit; the explorers service polls this host too, so this fallback stays well under one
    # call every 15 seconds.
    rate = Rate(4, 60, burst=2)
    probe_path = "/mempool/recent"
    probe_interval = 300.0

    async def fetch_transfers(self, fetcher: Fetcher, max_wait: float, *, since: float | None = None,
                              min_value: float = 0.0) -> list[Transfer]:
        raw = await fetcher.get_json(self, "/mempool/recent", max_wait=max_wait)
        return self.normalize_recent(raw)

    @classmethod
    def normalize_recent(cls, raw: Any) -> list[Transfer]:
        """The last transactions to enter the mempool: ``txid``, ``fee``, ``vsize`` and ``value`` (total output,
        satoshi). No addresses and no time: those stay empty."""
        if not isinstance(raw, list):
            raise AnswerError(f"mempool.space: expected a list of transactions, got {str(raw)[:120]}")
        transfers = []
        for tx in raw:
            if not isinstance(tx, dict) or not isinstance(tx.get("txid"), str):
                continue
            value = json_count(tx.get("value"))
            if value is None or value < 0:
                continue
            transfers.append(Transfer(hash=tx["txid"], chain="bitcoin", symbol="BTC",
                                      amount=value / SATOSHI_PER_BTC, sender=None, receiver=None,
                                      timestamp=None, source=cls.id))
        if raw and not transfers:
            raise AnswerError("mempool.space: no transaction in a shape we can read")
        return transfers


class WhaleAlert(WhaleProvider):
    id = "whale_alert"
    name = "Whale Alert"
    base_url = "https://api.whale-alert.io/v1"
    endpoints = ("/transactions",)
    docs = "https://docs.whale-alert.io/"
    key_setting = "whale_alert_api_key"
    key_required = True
    # The free plan allowed 10 calls a minute; we need one per whale_tracking run (15 s).
    rate = Rate(6, 60, burst=2)
    probe_path = "/status"
    probe_interval = 600.0

    def auth(self) -> tuple[dict[str, str], dict[str, str]]:
        return ({}, {"api_key": self.key}) if self.key else ({}, {})

    async def fetch_transfers(self, fetcher: Fetcher, max_wait: float, *, since: float | None = None,
                              min_value: float = 0.0) -> list[Transfer]:
        # Whale Alert's plans reach an hour back at most.
        start = int(since if since is not None else time.time() - 3540)
        params = {"start": str(start), "min_value": str(int(min_value))}
        raw = await fetcher.get_json(self, "/transactions", params, max_wait=max_wait)
        return self.normalize_transactions(raw)

    @classmethod
    def normalize_transactions(cls, raw: Any) -> list[Transfer]:
        """``{"result": "success", "transactions": [...]}``, each with ``blockchain``, ``symbol``, ``hash``,
        ``from``/``to`` ``{address, owner?}``, ``timestamp``, ``amount`` and ``amount_usd``; errors are
        ``{"result": "error", "message": ...}``."""
        if not isinstance(raw, dict):
            raise AnswerError(f"whale_alert: expected an object, got {type(raw).__name__}")
        if raw.get("result") != "success":
            raise AnswerError(f"whale_alert error: {raw.get('message') or raw.get('result')!r}")
        transactions = raw.get("transactions") or []  # the API leaves the key out when nothing matched
        if not isinstance(transactions, list):
            raise AnswerError("whale_alert: transactions is not a list")
        transfers = []
        for tx in transactions:
            transfer = cls._transfer(tx)
            if transfer is not None:
                transfers.append(transfer)
        return transfers

    @classmethod
    def _transfer(cls, tx: Any) -> Transfer | None:
        if not isinstance(tx, dict):
            return None
        chain, symbol, tx_hash = tx.get("blockchain"), tx.get("symbol"), tx.get("hash")
        amount, amount_usd = json_number(tx.get("amount")), json_number(tx.get("amount_usd"))
        if not (isinstance(chain, str) and isinstance(symbol, str) and isinstance(tx_hash, str) and tx_hash):
            return None
        if amount is None or amount_usd is None:
            return None
        if chain == "ethereum":
            # Whale Alert drops the 0x that Ethereum hashes and addresses carry everywhere else.
            tx_hash = "0x" + tx_hash.lower().removeprefix("0x")
        sender = _address(tx["from"].get("address")) if isinstance(tx.get("from"), dict) else None
        receiver = _address(tx["to"].get("address")) if isinstance(tx.get("to"), dict) else None
        if chain == "ethereum":
            sender = "0x" + sender.lower().removeprefix("0x") if sender else None
            receiver = "0x" + receiver.lower().removeprefix("0x") if receiver else None
        timestamp = unix_seconds(json_number(tx.get("timestamp")))
        return Transfer(hash=tx_hash, chain=chain, symbol=symbol.upper(), amount=amount, sender=sender,
                        receiver=receiver, timestamp=timestamp, source=cls.id, value_usd=amount_usd)


# -- Ether transfers from public nodes ------------------------------------------------------------------

def normalize_eth_block(result: Any, source: str) -> EthBlock:
    """An ``eth_getBlockByNumber(..., true)`` result: the block's number, time and its transactions that move
    Ether (``value`` in wei, hex). Contract creations (``to`` null) keep an empty receiver."""
    if result is None:
        raise AnswerError("block not found (null result)")
    if not isinstance(result, dict):
        raise AnswerError(f"expected a block object, got {type(result).__name__}")
    block_number = hex_int(result.get("number"))
    timestamp = unix_seconds(hex_int(result["timestamp"])) if result.get("timestamp") is not None else None
    transactions = result.get("transactions")
    if not isinstance(transactions, list):
        raise AnswerError("block without a transactions list")
    transfers = []
    for tx in transactions:
        if not isinstance(tx, dict):
            raise AnswerError("block has transaction hashes, not transaction objects (full=false?)")
        if not isinstance(tx.get("hash"), str):
            continue
        try:
            wei = hex_int(tx.get("value"), UINT256_MAX)
        except AnswerError:  # one odd transaction is skipped, not the block
            continue
        if wei <= 0:
            continue
        sender, receiver = tx.get("from"), tx.get("to")
        transfers.append(Transfer(
            hash=tx["hash"].lower(), chain="ethereum", symbol="ETH", amount=wei / WEI_PER_ETH,
            sender=sender.lower() if isinstance(sender, str) else None,
            receiver=receiver.lower() if isinstance(receiver, str) else None,
            timestamp=timestamp, source=source))
    return EthBlock(block_number, timestamp, tuple(transfers))


async def fetch_eth_blocks(node: JsonRpcNode, fetcher: Fetcher, *, after: int | None, max_blocks: int,
                           max_wait: float) -> list[EthBlock]:
    """The latest block and, when blocks were produced since ``after``, up to ``max_blocks - 1`` of the ones
    before it, newest first: the work per run stays bounded however long the service was away."""
    latest = normalize_eth_block(
        await node.call(fetcher, "eth_getBlockByNumber", ["latest", True], max_wait=max_wait), node.id)
    blocks = [latest]
    if after is not None:
        for number in range(latest.number - 1, max(after, latest.number - max_blocks), -1):
            result = await node.call(fetcher, "eth_getBlockByNumber", [hex(number), True], max_wait=max_wait)
            blocks.append(normalize_eth_block(result, node.id))
    return blocks
