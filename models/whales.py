"""whale_tracking's payload: large transfers, wallets, and what was scanned to find them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.freshness import Freshness


class WhaleTransaction(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    hash: str
    value: float  # USD at the price of the moment
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    timestamp: str | None
    chain: str
    symbol: str
    amount: float  # in the chain's own unit (BTC, ETH, USDT, ...)
    source: str
    explorer_url: str | None = None
    #: What ``amount`` (and ``value``) is: ``transferred`` is what went to others (Bitcoin: outputs back to an
    #: input address, the change, left out); ``total_output`` is every output of the transaction, change
    #: included, where the source gives no addresses to tell change apart (mempool.space's recent list).
    amount_kind: Literal["transferred", "total_output"] = "transferred"
    total_output: float | None = None  # Bitcoin: every output, change included, in BTC, where known
    block_number: int | None = None  # Ethereum
    log_index: int | None = None  # an ERC-20 transfer: its Transfer log's index in the block
    token_contract: str | None = None  # an ERC-20 transfer: the token's contract
    price_usd: float | None = None  # the price ``value`` was computed at (None: the source valued it)
    price_source: str | None = None  # "market_data/<provider>", "usd_peg" (a USD stablecoin at $1) or the source


class WhaleWallet(BaseModel):
    address: str
    chain: str
    volume_usd: float  # each transfer counted once, however many of the wallet's addresses it touched
    transactions: int
    #: The wallet's other addresses: Bitcoin addresses spent together in one transaction are one owner's.
    addresses: list[str] = Field(default_factory=list)


class WhaleCoverage(BaseModel):
    """What one source of ``whale_tracking`` looked at in the latest run, whatever the size of what it saw."""

    status: Literal["ok", "failed", "not_asked"] = "ok"
    source: str | None = None  # the provider that answered
    transactions_seen: int | None = None  # every transaction read, large or small; None when none was read
    amount_kind: Literal["transferred", "total_output"] | None = None  # Bitcoin: what its amounts are
    blocks_scanned: int | None = None  # Ethereum: new blocks read
    first_block: int | None = None
    last_block: int | None = None
    blocks_skipped: int | None = None  # produced since the last run but beyond the blocks read per run
    #: Ethereum: USDT/USDC Transfer logs ``read`` with eth_getLogs over the blocks scanned, or not asked for
    #: because no scanned block's logs bloom can hold one (``not_in_bloom``).
    token_logs: Literal["read", "not_in_bloom"] | None = None
    token_transfers_seen: int | None = None
    note: str | None = None  # why a source was not asked, or failed


class WhalePrice(BaseModel):
    """A price ``whale_tracking`` valued transfers at: where it came from and how old it is."""

    usd: float
    source: str  # "market_data/<provider>", or "usd_peg": a USD stablecoin counted at $1 for want of a price
    quote_currency: str | None = None  # what market_data's prices are counted in (USD, or USDT taken as USD)
    fetched_at: str | None = None  # when market_data fetched it
    data_time: str | None = None  # the market provider's own time of its prices, where it gives one
    recorded_at: str | None = None  # replay only: when market_data's recording was captured


class WhaleTrackingPayload(Freshness):
    large_transactions: list[WhaleTransaction] = Field(default_factory=list)
    whale_wallets: list[WhaleWallet] = Field(default_factory=list)
    total_volume: float | None = None  # USD; None (not 0) when nothing could be fetched
    alert_threshold: float
    timestamp: str
    window_seconds: float | None = None
    prices_used: dict[str, float] = Field(default_factory=dict)  # symbol -> USD used for valuation
    prices_detail: dict[str, WhalePrice] = Field(default_factory=dict)  # the same prices: source and time
    #: Per source (``bitcoin``, ``ethereum``, ``whale_alert``): what the latest run looked at.
    coverage: dict[str, WhaleCoverage] = Field(default_factory=dict)
