"""Large-transaction sources: Bitcoin from blockchain.info and mempool.space, Ether and USD stablecoins (USDT,
USDC) from public JSON-RPC nodes, and Whale Alert when its key is set. Each normalises to :class:`Transfer`.

Only Whale Alert values a transfer itself; the others give amounts in the asset's unit, which the service values
at market_data's prices. A value a source does not give (mempool.space has no addresses and no time) is left out,
never guessed.

Bitcoin amounts: a transaction's outputs include its change. An output paying back to an address (or script) one
of its inputs spent from is change; the amount transferred is the sum of the other outputs, and the receiver the
largest of them. Change sent to a fresh address of the sender cannot be told apart from a payment, and nothing
here guesses it. Where the inputs cannot be identified (mempool.space's recent list has no addresses at all) the
amount is the transaction's total output, and says so (``amount_kind``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from sources.errors import AnswerError
from sources.fetcher import Fetcher, Provider
from sources.limits import Rate
from sources.providers.values import json_count, json_number, objects, provider_time

SATOSHI_PER_BTC = 100_000_000
WEI_PER_ETH = 10**18
#: Whale Alert's name for several senders or receivers: not an address, so it is not shown as one.
MULTIPLE_ADDRESSES = "Multiple Addresses"

AmountKind = Literal["transferred", "total_output"]


@dataclass(frozen=True)
class Transfer:
    hash: str
    chain: str  # "bitcoin", "ethereum", or Whale Alert's blockchain name
    symbol: str  # "BTC", "ETH", "USDT", ...
    amount: float  # in the asset's own unit
    sender: str | None
    receiver: str | None
    timestamp: float | None  # Unix seconds, as the source gives it (never before 2009-01-03)
    source: str
    value_usd: float | None = None  # only when the source values it (Whale Alert)
    #: "transferred": what went to others (Bitcoin: change left out); "total_output": every output, change
    #: included, because the source gives nothing to tell change apart by.
    amount_kind: AmountKind = "transferred"
    total_output: float | None = None  # Bitcoin: every output, change included, where known
    #: Bitcoin: every address the inputs spent from. Spent together, they are one owner's: one wallet.
    sender_addresses: tuple[str, ...] = ()
    block_number: int | None = None
    log_index: int | None = None  # ERC-20: the Transfer log's index in its block
    contract: str | None = None  # ERC-20: the token contract

    @property
    def tx_key(self) -> str:
        """One transaction's movement of one asset, across sources (Whale Alert writes Ethereum hashes without
        their 0x, and reports a token transfer by its transaction)."""
        return f"{self.chain}:{self.symbol}:{self.hash.lower().removeprefix('0x')}"

    @property
    def key(self) -> str:
        """The identity of a transfer: a transaction may hold several transfers of one token (one log each)."""
        return self.tx_key if self.log_index is None else f"{self.tx_key}:{self.log_index}"


@dataclass(frozen=True)
class EthBlock:
    number: int
    timestamp: float | None
    transfers: tuple[Transfer, ...]
    transactions: int = 0  # every transaction of the block, moving Ether or not
    logs_bloom: str | None = None  # "0x" + 512 hex digits; None when the node left it out


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


@dataclass(frozen=True)
class _Output:
    address: str | None
    script: str | None
    value: int


def _script(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value else None


class BlockchainInfoUnconfirmed(BitcoinSource):
    id = "blockchain_info_unconfirmed"
    name = "Blockchain.com unconfirmed transactions"
    base_url = "https://blockchain.info"
    endpoints = ("/unconfirmed-transactions",)
    docs = "https://www.blockchain.com/explorer/api/blockchain_api"
    # blockchain.info asks for at most one query every 10 seconds; a burst of 2 leaves room for one retry.
    rate = Rate(6, 60, burst=2)
    probe_path = "/unconfirmed-transactions"
    probe_keys = ("txs",)
    probe_params = MappingProxyType({"format": "json"})
    probe_interval = 600.0
    slow_ms = 4000.0

    async def fetch_transfers(self, fetcher: Fetcher, max_wait: float, *, since: float | None = None,
                              min_value: float = 0.0) -> list[Transfer]:
        raw = await fetcher.get_json(self, "/unconfirmed-transactions", {"format": "json"}, max_wait=max_wait)
        return self.normalize_unconfirmed(raw)

    @classmethod
    def normalize_unconfirmed(cls, raw: Any) -> list[Transfer]:
        """``txs[]``, each in the shape of ``/rawtx``: ``hash``, ``time`` (when blockchain.com's node saw it),
        ``inputs[].prev_out.{addr, script, value}`` and ``out[].{addr, script, value}``, values in satoshi."""
        if not isinstance(raw, dict) or not isinstance(raw.get("txs"), list):
            raise AnswerError(f"blockchain.info: expected an object with txs, got {str(raw)[:120]}")
        transfers = []
        for tx in raw["txs"]:
            transfer = cls.normalize_tx(tx)
            if transfer is not None:
                transfers.append(transfer)
        if raw["txs"] and not transfers:
            raise AnswerError("blockchain.info: no transaction in a shape we can read")
        return transfers

    @classmethod
    def normalize_tx(cls, tx: Any) -> Transfer | None:
        """One transaction (an item of ``txs``, or a ``/rawtx`` answer): change excluded where the inputs say
        where they came from; the sender is the input address that paid the most."""
        if not isinstance(tx, dict) or not isinstance(tx.get("hash"), str):
            return None
        outputs = [_Output(_address(o.get("addr")), _script(o.get("script")), value)
                   for o in objects(tx.get("out")) if (value := json_count(o.get("value"))) is not None]
        if not outputs or len(outputs) != len(objects(tx.get("out"))):
            return None
        raw_inputs = objects(tx.get("inputs"))
        previous = [p for p in (i.get("prev_out") for i in raw_inputs) if isinstance(p, dict)]
        from_addresses = {a for p in previous if (a := _address(p.get("addr")))}
        from_scripts = {s for p in previous if (s := _script(p.get("script")))}
        # Change can only be told apart when every input says what it spent from.
        inputs_known = bool(raw_inputs) and len(previous) == len(raw_inputs) and all(
            _address(p.get("addr")) or _script(p.get("script")) for p in previous)

        def is_change(output: _Output) -> bool:
            return (output.address is not None and output.address in from_addresses) or (
                output.script is not None and output.script in from_scripts)

        paid = [o for o in outputs if not is_change(o)] if inputs_known else outputs
        paid_by = [(_address(p.get("addr")), value) for p in previous
                   if (value := json_count(p.get("value"))) is not None]
        return Transfer(hash=tx["hash"], chain="bitcoin", symbol="BTC",
                        amount=sum(o.value for o in paid) / SATOSHI_PER_BTC,
                        sender=_largest_address(paid_by),
                        receiver=_largest_address([(o.address, o.value) for o in paid]),
                        timestamp=provider_time(json_number(tx.get("time"))), source=cls.id,
                        amount_kind="transferred" if inputs_known else "total_output",
                        total_output=sum(o.value for o in outputs) / SATOSHI_PER_BTC,
                        sender_addresses=tuple(sorted(from_addresses)))


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
        satoshi). No addresses and no time: those stay empty, and the amount is the total output, change
        included (nothing tells the change apart)."""
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
                                      timestamp=None, source=cls.id, amount_kind="total_output",
                                      total_output=value / SATOSHI_PER_BTC))
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
        timestamp = provider_time(json_number(tx.get("timestamp")))
        return Transfer(hash=tx_hash, chain=chain, symbol=symbol.upper(), amount=amount, sender=sender,
                        receiver=receiver, timestamp=timestamp, source=cls.id, value_usd=amount_usd)
