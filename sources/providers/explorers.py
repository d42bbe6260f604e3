"""Block explorers: Bitcoin network figures and Ethereum gas/block figures, normalised to the payload's own models.

Bitcoin comes from mempool.space, Blockchair or blockchain.info; Ethereum from the public JSON-RPC nodes
(:mod:`sources.providers.rpc`), Etherscan's gas oracle (keyed) or Blockchair. Each provider declares itself with
class attributes; its ``fetch_*`` makes the requests through the fetcher and hands the raw answers to pure
``normalize_*`` functions, which the tests exercise with recorded bodies. A figure a provider does not give is
left out (None), never zero: Blockchair has no fee ladder, blockchain.info no mempool, Etherscan no block time.
Every provider time is read by :func:`~sources.providers.values.provider_time`, so no 1970 date gets through.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from models.chain import BitcoinFigures, EthereumFigures, GasFigures
from models.messages import iso
from sources.errors import AnswerError, ProviderBadResponse, ProviderError
from sources.fetcher import Fetcher, Provider
from sources.limits import Rate
from sources.pools import SHAPE_ERRORS
from sources.providers.rpc import JsonRpcNode, fetch_gas, normalize_gas, rpc_result
from sources.providers.values import count, json_number, number, positive, provider_time, require_object

log = logging.getLogger(__name__)


# -- small readers shared by the normalisers ---------------------------------------------------------------

def _utc_time(text: Any) -> str | None:
    """Blockchair's ``"2023-04-03 14:04:50"`` (UTC) as an ISO-8601 time; None when it is not one (or not a time a
    provider's data can have)."""
    return iso(provider_time(text)) if isinstance(text, str) else None


# -- provider families -------------------------------------------------------------------------------------

class BitcoinExplorer(Provider):
    category = "explorers"

    async def fetch_bitcoin(self, fetcher: Fetcher, max_wait: float) -> BitcoinFigures:
        raise NotImplementedError


class EthereumExplorer(Provider):
    category = "explorers"

    async def fetch_ethereum(self, fetcher: Fetcher, max_wait: float) -> EthereumFigures:
        raise NotImplementedError


# -- mempool.space -----------------------------------------------------------------------------------------

FEE_KEYS = {"fastestFee": "fastest", "halfHourFee": "half_hour", "hourFee": "hour", "economyFee": "economy",
            "minimumFee": "minimum"}


_BLOCK_HASH = re.compile(r"[0-9a-f]{64}")


class MempoolSpace(BitcoinExplorer):
    """Fees, mempool and the tip's hash on every run, and the tip block itself (``/block/:hash``: height and time)
    once per new tip, so the figures are dated by the chain's newest block at no more calls than a bare height;
    hashrate and difficulty (``/v1/mining/hashrate/3d``) at most every :attr:`MINING_REFRESH` seconds, since a
    3-day average moves slowly and every call counts against an unpublished limit."""

    id = "mempool_space"
    name = "mempool.space"
    base_url = "https://mempool.space/api"
    endpoints = ("/v1/fees/recommended", "/mempool", "/blocks/tip/hash", "/block/{hash}", "/v1/mining/hashrate/3d")
    docs = "https://mempool.space/docs/api/rest"
    # The limit is not published (a 429 says "Sign Up for Mempool Enterprise"): three calls a run every 10 s
    # is 18 a minute, so 20 a minute leaves room for the occasional mining call and a probe.
    rate = Rate(20, 60, burst=6)
    probe_path = "/v1/fees/recommended"
    probe_keys = ("fastestFee",)
    probe_interval = 120.0

    MINING_REFRESH = 600.0
    MINING_MAX_AGE = 3600.0  # older mining figures are dropped rather than shown as current

    def __init__(self, key: str | None = None) -> None:
        super().__init__(key)
        self._mining: tuple[float, tuple[float | None, float | None]] | None = None  # (fetched at, figures)
        self._mining_tried: float | None = None  # a failed refresh also waits its turn, not every run
        self._tip: tuple[str, Any] | None = None  # (hash, its /block answer): read again only for a new tip

    async def fetch_bitcoin(self, fetcher: Fetcher, max_wait: float) -> BitcoinFigures:
        fees = await fetcher.get_json(self, "/v1/fees/recommended", max_wait=max_wait)
        mempool = await fetcher.get_json(self, "/mempool", max_wait=max_wait)
        tip_hash = self.normalize_tip_hash(await fetcher.get_text(self, "/blocks/tip/hash", max_wait=max_wait))
        if self._tip is None or self._tip[0] != tip_hash:
            self._tip = (tip_hash, await fetcher.get_json(self, f"/block/{tip_hash}", max_wait=max_wait))
        stats = self.normalize(fees, mempool, self._tip[1], tip_hash)
        hashrate, difficulty = await self._mining_figures(fetcher, max_wait)
        return stats.model_copy(update={"hashrate": hashrate, "difficulty": difficulty})

    async def _mining_figures(self, fetcher: Fetcher, max_wait: float) -> tuple[float | None, float | None]:
        """The cached mining figures, refreshed when due; a failed refresh leaves the core figures alone."""
        now = time.monotonic()
        if self._mining_tried is None or now - self._mining_tried >= self.MINING_REFRESH:
            self._mining_tried = now
            try:
                raw = await fetcher.get_json(self, "/v1/mining/hashrate/3d", max_wait=max_wait)
                self._mining = (now, self.normalize_hashrate(raw))
            except ProviderError as error:
                log.info("mempool.space mining figures not refreshed: %s", error.message)
            except SHAPE_ERRORS as exc:
                log.warning("mempool.space mining figures in a shape we cannot read: %s", exc)
        if self._mining is None or now - self._mining[0] > self.MINING_MAX_AGE:
            return None, None
        return self._mining[1]

    @classmethod
    def normalize(cls, fees: Any, mempool: Any, tip_block: Any, tip_hash: str | None = None) -> BitcoinFigures:
        count, vsize = cls.normalize_mempool(mempool)
        height, block_time = cls.normalize_block(tip_block, tip_hash)
        return BitcoinFigures(height=height, fees=cls.normalize_fees(fees), mempool_count=count,
                              mempool_vsize=vsize, last_block_time=iso(block_time))

    @staticmethod
    def normalize_fees(raw: Any) -> dict[str, float]:
        """``{fastestFee, halfHourFee, hourFee, economyFee, minimumFee}`` (sat/vB); older answers have only
        the first three, and a missing key is simply left out."""
        body = require_object(raw, "mempool.space fees")
        fees = {ours: value for theirs, ours in FEE_KEYS.items() if (value := number(body.get(theirs))) is not None}
        if not fees:
            raise AnswerError(f"mempool.space fees: none of {sorted(FEE_KEYS)} in {str(raw)[:120]}")
        return fees

    @staticmethod
    def normalize_mempool(raw: Any) -> tuple[int, int | None]:
        """``/mempool``: ``count`` (transactions) and ``vsize`` (vbytes)."""
        body = require_object(raw, "mempool.space mempool")
        transactions = count(body.get("count"))
        if transactions is None:
            raise AnswerError(f"mempool.space mempool: no transaction count in {str(raw)[:120]}")
        return transactions, count(body.get("vsize"))

    @staticmethod
    def normalize_tip_hash(text: Any) -> str:
        """``/blocks/tip/hash`` answers the tip's hash as bare text (64 hex digits)."""
        tip = text.strip() if isinstance(text, str) else ""
        if not _BLOCK_HASH.fullmatch(tip):
            raise AnswerError(f"mempool.space tip hash: expected 64 hex digits, got {str(text)[:80]!r}")
        return tip

    @staticmethod
    def normalize_block(raw: Any, tip_hash: str | None = None) -> tuple[int, float | None]:
        """``/block/:hash`` (Esplora's block format): ``id``, ``height`` and ``timestamp`` (Unix seconds, the
        block's own time), among others."""
        body = require_object(raw, "mempool.space block")
        height = count(body.get("height")) if isinstance(body.get("height"), int) else None
        if height is None:
            raise AnswerError(f"mempool.space block without a height: {str(raw)[:120]}")
        if tip_hash is not None and body.get("id") not in (None, tip_hash):
            raise AnswerError(f"mempool.space block {str(body.get('id'))[:16]}... is not the tip {tip_hash[:16]}...")
        return height, provider_time(json_number(body.get("timestamp")))

    @staticmethod
    def normalize_hashrate(raw: Any) -> tuple[float | None, float | None]:
        """``/v1/mining/hashrate/3d``: ``currentHashrate`` (H/s) and ``currentDifficulty``."""
        body = require_object(raw, "mempool.space hashrate")
        hashrate, difficulty = positive(body.get("currentHashrate")), positive(body.get("currentDifficulty"))
        if hashrate is None and difficulty is None:
            raise AnswerError(f"mempool.space hashrate: no current figures in {str(raw)[:120]}")
        return hashrate, difficulty


# -- Blockchair --------------------------------------------------------------------------------------------

class Blockchair(BitcoinExplorer, EthereumExplorer):
    """``/bitcoin/stats`` and ``/ethereum/stats``: one call each gives most figures. Errors arrive as a
    non-200 ``context.code`` with ``context.error`` (402 and 430 when over the keyless limit)."""

    id = "blockchair"
    name = "Blockchair"
    base_url = "https://api.blockchair.com"
    endpoints = ("/bitcoin/stats", "/ethereum/stats")
    docs = "https://blockchair.com/api/docs#link_001"
    # Keyless: 30 requests a minute and 1,440 a day; the daily cap binds, so one a minute on average (shared
    # by the Bitcoin and Ethereum sections, which only reach Blockchair when their preferred sources fail).
    rate = Rate(1440, 86400, burst=3)
    rate_limit_statuses = (429, 402, 430)  # 402: over the keyless limit; 430: temporarily blacklisted
    probe_path = "/bitcoin/stats"
    probe_keys = ("data",)
    probe_interval = 900.0

    async def fetch_bitcoin(self, fetcher: Fetcher, max_wait: float) -> BitcoinFigures:
        return self.normalize_bitcoin(await fetcher.get_json(self, "/bitcoin/stats", max_wait=max_wait))

    async def fetch_ethereum(self, fetcher: Fetcher, max_wait: float) -> EthereumFigures:
        return self.normalize_ethereum(await fetcher.get_json(self, "/ethereum/stats", max_wait=max_wait))

    @staticmethod
    def _data(raw: Any) -> dict[str, Any]:
        body = require_object(raw, "blockchair")
        context = body.get("context")
        if not isinstance(context, dict):
            context = {}  # absent from some recorded bodies; errors always carry one
        code = context.get("code")
        if (code is not None and code != 200) or not isinstance(body.get("data"), dict):
            raise AnswerError(f"blockchair error {code}: {context.get('error') or str(raw)[:120]}")
        data: dict[str, Any] = body["data"]
        return data

    @classmethod
    def normalize_bitcoin(cls, raw: Any) -> BitcoinFigures:
        """``mempool_size`` is in bytes, not vbytes, so it is not reported as ``mempool_vsize``; likewise the
        suggested fee is per byte (``suggested_transaction_fee_per_byte_sat``), not per vbyte, so it is not one of
        the sat/vB ``fees``."""
        data = cls._data(raw)
        height = count(data.get("best_block_height"))
        if height is None:
            raise AnswerError("blockchair bitcoin stats without best_block_height")
        return BitcoinFigures(
            height=height,
            suggested_fee_sat_per_byte=number(data.get("suggested_transaction_fee_per_byte_sat")),
            mempool_count=count(data.get("mempool_transactions")),
            hashrate=positive(data.get("hashrate_24h")),
            difficulty=positive(data.get("difficulty")),
            last_block_time=_utc_time(data.get("best_block_time")))

    @classmethod
    def normalize_ethereum(cls, raw: Any) -> EthereumFigures:
        data = cls._data(raw)
        block = count(data.get("best_block_height"))
        if block is None:
            raise AnswerError("blockchair ethereum stats without best_block_height")
        options = data.get("suggested_transaction_fee_gwei_options")
        oracle = {str(k): v for k, raw_v in options.items() if (v := number(raw_v)) is not None} \
            if isinstance(options, dict) else {}
        return EthereumFigures(block_number=block, gas_oracle=oracle,
                             last_block_time=_utc_time(data.get("best_block_time")))


# -- blockchain.info ---------------------------------------------------------------------------------------

class BlockchainInfo(BitcoinExplorer):
    """``api.blockchain.info/stats``: chain-wide figures only (no fees, no mempool, no block time)."""

    id = "blockchain_info"
    name = "blockchain.info"
    base_url = "https://api.blockchain.info"
    endpoints = ("/stats",)
    docs = "https://www.blockchain.com/explorer/api/blockchain_api"
    rate = Rate(6, 60, burst=1)  # its API notes ask for at most one query every 10 seconds
    probe_path = "/stats"
    probe_keys = ("n_blocks_total",)
    probe_interval = 300.0

    async def fetch_bitcoin(self, fetcher: Fetcher, max_wait: float) -> BitcoinFigures:
        return self.normalize_stats(await fetcher.get_json(self, "/stats", max_wait=max_wait))

    @staticmethod
    def normalize_stats(raw: Any) -> BitcoinFigures:
        """``n_blocks_total`` is the tip height (as Bitcoin Core's ``getblockcount``); ``hash_rate`` is in
        GH/s; ``timestamp`` (milliseconds) is when the figures were computed."""
        body = require_object(raw, "blockchain.info stats")
        height = count(body.get("n_blocks_total"))
        if height is None:
            raise AnswerError(f"blockchain.info stats without n_blocks_total: {str(raw)[:120]}")
        hashrate = positive(body.get("hash_rate"))
        millis = json_number(body.get("timestamp"))
        return BitcoinFigures(height=height, hashrate=hashrate * 1e9 if hashrate is not None else None,
                              difficulty=positive(body.get("difficulty")),
                              stats_time=iso(provider_time(millis / 1000)) if millis is not None else None)


# -- Etherscan (keyed) -------------------------------------------------------------------------------------

class Etherscan(EthereumExplorer):
    """The V2 gas oracle. Without ``ETHERSCAN_API_KEY`` it is disabled and never called; its errors are HTTP
    200 bodies with ``status: "0"`` and the reason in ``result``."""

    id = "etherscan"
    name = "Etherscan"
    base_url = "https://api.etherscan.io/v2/api"
    endpoints = ("?chainid=1&module=gastracker&action=gasoracle",)
    docs = "https://docs.etherscan.io/api-reference/endpoint/gasoracle"
    key_setting = "etherscan_api_key"
    key_required = True
    # Free V2 keys: 3 calls a second and 100,000 a day; one a second at most stays under both.
    rate = Rate(1, 1, burst=3)
    probe_interval = 600.0

    PARAMS: Mapping[str, str] = {"chainid": "1", "module": "gastracker", "action": "gasoracle"}

    def auth(self) -> tuple[dict[str, str], dict[str, str]]:
        return ({}, {"apikey": self.key}) if self.key else ({}, {})

    async def fetch_ethereum(self, fetcher: Fetcher, max_wait: float) -> EthereumFigures:
        return self.normalize_gas_oracle(await fetcher.get_json(self, "", self.PARAMS, max_wait=max_wait))

    async def probe(self, fetcher: Fetcher) -> None:
        # A "NOTOK" body is HTTP 200: only reading it tells whether the key and the quota are fine.
        raw = fetcher.decode_json(self, await fetcher.request(self, "GET", "", params=self.PARAMS, probe=True))
        try:
            self.normalize_gas_oracle(raw)
        except SHAPE_ERRORS as exc:
            fetcher.record_failure(self, ProviderBadResponse(self.id, str(exc)))

    @staticmethod
    def normalize_gas_oracle(raw: Any) -> EthereumFigures:
        """``result.{LastBlock, SafeGasPrice, ProposeGasPrice, FastGasPrice, suggestBaseFee}``, all strings."""
        body = require_object(raw, "etherscan")
        result = body.get("result")
        if str(body.get("status")) != "1" or not isinstance(result, dict):
            raise AnswerError(f"etherscan error: {body.get('message')}: {str(result)[:160]}")
        block = count(result.get("LastBlock"))
        if block is None:
            raise AnswerError(f"etherscan gas oracle without LastBlock: {str(result)[:120]}")
        oracle = {ours: value for theirs, ours in (("SafeGasPrice", "safe"), ("ProposeGasPrice", "propose"),
                                                     ("FastGasPrice", "fast"))
                  if (value := number(result.get(theirs))) is not None}
        return EthereumFigures(block_number=block, base_fee_gwei=number(result.get("suggestBaseFee")),
                             gas_oracle=oracle)


# -- public JSON-RPC nodes as an Ethereum source -----------------------------------------------------------

def normalize_node_block(block_raw: Any, gas_price_raw: Any) -> EthereumFigures:
    """Whole JSON-RPC answers to ``eth_getBlockByNumber("latest", false)`` and ``eth_gasPrice``, read by
    :func:`~sources.providers.rpc.normalize_gas`."""
    return _from_gas(normalize_gas(rpc_result(gas_price_raw), rpc_result(block_raw)))


def _from_gas(reading: GasFigures) -> EthereumFigures:
    if reading.block_number is None:
        raise AnswerError("eth_getBlockByNumber: a block without its number")
    return EthereumFigures(block_number=reading.block_number, gas_price_gwei=reading.gas_price_gwei,
                           base_fee_gwei=reading.base_fee_gwei, last_block_time=reading.block_time,
                           gas_price_error=reading.gas_price_error)


async def ethereum_from_node(node: JsonRpcNode, fetcher: Fetcher, max_wait: float) -> EthereumFigures:
    return _from_gas(await fetch_gas(node, fetcher, max_wait))


async def fetch_ethereum(provider: Provider, fetcher: Fetcher, max_wait: float) -> EthereumFigures:
    """One Ethereum reading from any member of the Ethereum pool: a JSON-RPC node or an explorer."""
    if isinstance(provider, JsonRpcNode):
        return await ethereum_from_node(provider, fetcher, max_wait)
    if isinstance(provider, EthereumExplorer):
        return await provider.fetch_ethereum(fetcher, max_wait)
    raise TypeError(f"{provider.id!r} is not an Ethereum source")
