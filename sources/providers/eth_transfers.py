"""Ether and USD stablecoin (USDT, USDC) transfers from public Ethereum nodes: new blocks with their transactions,
and the stablecoins' ``Transfer`` logs over the same blocks (one ``eth_getLogs`` a run, skipped when no block's
logs bloom can hold one), through whale_tracking's own scanner providers. Normalised to
:class:`~sources.providers.whales.Transfer`."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sources.errors import AnswerError
from sources.fetcher import Fetcher
from sources.providers.rpc import NODES, UINT256_MAX, JsonRpcNode, NodeSpec, hex_int
from sources.providers.values import objects, provider_time
from sources.providers.whales import WEI_PER_ETH, EthBlock, Transfer

#: keccak-256 of ``Transfer(address,address,uint256)``: topic 0 of every ERC-20 Transfer log.
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
#: The three bits (of a block's 2048-bit ``logsBloom``) a log with this topic sets: the low 11 bits of the first
#: three 16-bit words of keccak-256(topic). Computed once and checked in tests/test_whales_ethereum.py.
TRANSFER_TOPIC_BLOOM = (1443, 481, 1060)


TokenLogs = Literal["read", "not_in_bloom"]


@dataclass(frozen=True)
class Stablecoin:
    symbol: str
    contract: str  # lower-case
    decimals: int
    bloom: tuple[int, int, int]  # the logs-bloom bits of the contract address (see TRANSFER_TOPIC_BLOOM)


#: The USD stablecoins read on Ethereum mainnet: Tether's and Circle's contracts, six decimals each.
STABLECOINS: tuple[Stablecoin, ...] = (
    Stablecoin("USDT", "0xdac17f958d2ee523a2206206994597c13d831ec7", 6, (788, 1672, 679)),
    Stablecoin("USDC", "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", 6, (856, 1467, 717)),
)
_BY_CONTRACT: Mapping[str, Stablecoin] = {coin.contract: coin for coin in STABLECOINS}


@functools.cache
def scanner(spec: NodeSpec) -> JsonRpcNode:
    """A public node as whale_tracking's scanner of full blocks and token logs: a provider of its own (budget,
    breaker, health). Public nodes limit those heavy calls (eth_getLogs above all) while they serve the head and gas
    figures rpc_nodes, explorers and onchain read from them; a node refusing the scan must fail the scan only."""
    cls = type(f"Scanner_{spec.id}", (JsonRpcNode,), {
        "id": f"{spec.id}_whales", "name": f"{spec.name} (whale scan)", "category": "whales",
        "base_url": spec.url, "chain": spec.chain, "chain_id": spec.chain_id,
        "endpoints": ("eth_getBlockByNumber", "eth_getLogs"),
        "docs": "https://ethereum.org/en/developers/docs/apis/json-rpc/",
    })
    return cls()


def eth_scanners() -> list[JsonRpcNode]:
    """The Ethereum nodes of :data:`~sources.providers.rpc.NODES`, as whale scanners, in their order."""
    return [scanner(spec) for spec in NODES if spec.chain == "ethereum"]


def _bloom(value: Any) -> bytes | None:
    if not isinstance(value, str) or len(value) != 514 or not value.startswith("0x"):
        return None
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        return None


def bloom_may_hold(bloom: str | None, bits: Sequence[int]) -> bool:
    """Whether a block's logs bloom may hold a value whose bits these are (a bloom has false positives, never
    false negatives). No bloom to read: it may."""
    data = _bloom(bloom)
    return data is None or all(data[255 - (bit >> 3)] & (1 << (bit & 7)) for bit in bits)


def may_hold_stablecoin_transfers(block: EthBlock) -> bool:
    return bloom_may_hold(block.logs_bloom, TRANSFER_TOPIC_BLOOM) and any(
        bloom_may_hold(block.logs_bloom, coin.bloom) for coin in STABLECOINS)


def normalize_eth_block(result: Any, source: str) -> EthBlock:
    """An ``eth_getBlockByNumber(..., true)`` result: the block's number, time and its transactions that move
    Ether (``value`` in wei, hex). Contract creations (``to`` null) keep an empty receiver."""
    if result is None:
        raise AnswerError("block not found (null result)")
    if not isinstance(result, dict):
        raise AnswerError(f"expected a block object, got {type(result).__name__}")
    block_number = hex_int(result.get("number"))
    timestamp = provider_time(hex_int(result["timestamp"])) if result.get("timestamp") is not None else None
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
            timestamp=timestamp, source=source, block_number=block_number))
    return EthBlock(block_number, timestamp, tuple(transfers), transactions=len(transactions),
                    logs_bloom=result.get("logsBloom") if _bloom(result.get("logsBloom")) else None)


def _topic_address(topic: Any) -> str | None:
    """An address indexed in a log topic: 32 bytes, the address in the last 20."""
    if not isinstance(topic, str) or len(topic) != 66 or not topic.startswith("0x"):
        return None
    digits = topic[2:].lower()
    if digits[:24] != "0" * 24 or any(c not in "0123456789abcdef" for c in digits):
        return None
    return "0x" + digits[24:]


def normalize_token_logs(result: Any, *, first: int, last: int, times: Mapping[int, float | None],
                         source: str) -> tuple[list[Transfer], int]:
    """An ``eth_getLogs`` result for the stablecoins' Transfer logs of blocks ``first``..``last``: the transfers,
    and how many logs lay outside those blocks (a node answering for other blocks is not believed). Logs of other
    contracts or events, removed (re-organised) logs and odd entries are left out."""
    if not isinstance(result, list):
        raise AnswerError(f"eth_getLogs: expected a list of logs, got {type(result).__name__}")
    transfers: list[Transfer] = []
    outside = 0
    for log in objects(result):
        coin = _BY_CONTRACT.get(str(log.get("address")).lower())
        topics = log.get("topics")
        if coin is None or log.get("removed") is True or not isinstance(topics, list) or len(topics) != 3:
            continue
        if str(topics[0]).lower() != TRANSFER_TOPIC or not isinstance(log.get("transactionHash"), str):
            continue
        try:
            number, index = hex_int(log.get("blockNumber")), hex_int(log.get("logIndex"))
            raw_amount = hex_int(log.get("data"), UINT256_MAX)
        except AnswerError:
            continue
        if not first <= number <= last:
            outside += 1
            continue
        timestamp = times.get(number)
        if timestamp is None and log.get("blockTimestamp") is not None:  # some nodes add the block's time
            try:
                timestamp = provider_time(hex_int(log["blockTimestamp"]))
            except AnswerError:
                timestamp = None
        transfers.append(Transfer(
            hash=log["transactionHash"].lower(), chain="ethereum", symbol=coin.symbol,
            amount=raw_amount / 10**coin.decimals, sender=_topic_address(topics[1]),
            receiver=_topic_address(topics[2]), timestamp=timestamp, source=source, block_number=number,
            log_index=index, contract=coin.contract))
    return transfers, outside


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


@dataclass(frozen=True)
class EthScan:
    """One run's reading of Ethereum from one node."""

    latest: int
    blocks: tuple[EthBlock, ...]  # the new blocks read (after the last run's), newest first
    skipped: int  # blocks produced since the last run but not read (more than a run reads)
    token_transfers: tuple[Transfer, ...]
    token_logs: TokenLogs | None  # None: no new block, nothing to look for
    logs_outside: int = 0  # logs the node gave for other blocks than those asked (left out)

    @property
    def transfers(self) -> list[Transfer]:
        return [t for block in self.blocks for t in block.transfers] + list(self.token_transfers)


async def scan_ethereum(node: JsonRpcNode, fetcher: Fetcher, *, after: int | None, max_blocks: int,
                        max_wait: float) -> EthScan:
    """The new blocks (see :func:`fetch_eth_blocks`) and the USDT/USDC Transfer logs of those of them whose logs
    bloom can hold one: one ``eth_getLogs`` over their range, never more blocks than were read. An error answer
    of the node (a range or result limit, a method it does not serve) is that node's failure."""
    blocks = await fetch_eth_blocks(node, fetcher, after=after, max_blocks=max_blocks, max_wait=max_wait)
    latest = blocks[0].number
    fresh = tuple(b for b in blocks if after is None or b.number > after)
    if not fresh:
        return EthScan(latest, (), 0, (), None)
    skipped = max(0, min(b.number for b in fresh) - after - 1) if after is not None else 0
    candidates = [b.number for b in fresh if may_hold_stablecoin_transfers(b)]
    if not candidates:
        return EthScan(latest, fresh, skipped, (), "not_in_bloom")
    first, last = min(candidates), max(candidates)
    query = {"fromBlock": hex(first), "toBlock": hex(last), "address": [coin.contract for coin in STABLECOINS],
             "topics": [TRANSFER_TOPIC]}
    result = await node.call(fetcher, "eth_getLogs", [query], max_wait=max_wait)
    tokens, outside = normalize_token_logs(result, first=first, last=last,
                                           times={b.number: b.timestamp for b in fresh}, source=node.id)
    return EthScan(latest, fresh, skipped, tuple(tokens), "read", outside)
