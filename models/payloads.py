"""One model per service payload: the spec's keys first, then what we add.

Data payloads carry a freshness block (:class:`Freshness`) so a client can always tell live data from stale
data from no data: ``status`` is ``ok``, ``stale`` (the last good values, with their age) or ``no_data``
(every provider failed and nothing was ever fetched; the spec's collections are then empty, never zero-filled,
and ``message`` says why). ``providers`` says, per provider, how its latest attempt went and since when.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.freshness import Freshness
from models.states import DataStatus, HealthDetail, HealthStatus, PriceState


class SourcePrice(BaseModel):
    """Another provider's price of a coin, as the cross-check compared it with the primary one."""

    source: str
    price: float
    quote_currency: Literal["USD", "USDT"]
    time: str | None = None  # the provider's own time of the price; None where it gives none (Kraken, Coinbase)
    fetched_at: str | None = None
    agrees: bool  # within the threshold of the median


class PriceCheck(BaseModel):
    """A coin's price cross-checked against the other providers that priced it at the same moment."""

    state: PriceState
    median: float  # of every source's price, the primary's included
    spread_pct: float  # (highest - lowest) / median, in percent; 0 with one source
    quorum: int  # sources whose price is within the threshold of the median (the primary's included)
    sources: int  # sources that priced the coin
    others: list[SourcePrice] = Field(default_factory=list)
    #: A USD stablecoin more than 1% off $1 (either way), said by more than one thin source.
    depeg: bool = False
    note: str | None = None  # why a coin is unconfirmed or a de-peg is not flagged


class CoinInfo(BaseModel):
    id: str
    symbol: str
    name: str
    rank: int | None = None
    #: The coin's price as ``prices`` has it, with what it is counted in, who gave it and the provider's own time
    #: of it (None where the provider gives none).
    price: float | None = None
    quote_currency: Literal["USD", "USDT"] | None = None
    source: str | None = None
    time: str | None = None
    check: PriceCheck | None = None  # None until a cross-check has run


class PriceAlert(BaseModel):
    """A price the cross-check does not trust: the sources spread over the threshold, or a stablecoin de-pegged."""

    kind: Literal["spread", "depeg"]
    coin: str  # coin id
    symbol: str
    message: str
    median: float
    spread_pct: float


class CheckSource(Freshness):
    """One cross-checking provider's latest answer: its freshness, and what it priced."""

    source: str
    coins: int = 0  # coins of the table it priced
    compared: bool = False  # False when its answer is not of the moment of the prices shown (or not there)


class PriceConsensus(BaseModel):
    """The cross-check of the prices shown against other providers: each coin's verdict is in ``coins[].check``."""

    threshold_pct: float  # a spread over this (percent of the median) is an alert
    checked_at: str | None = None  # when the newest cross-check answer was fetched
    sources: list[CheckSource] = Field(default_factory=list)
    confirmed: int = 0
    disputed: int = 0
    unconfirmed: int = 0
    alerts: list[PriceAlert] = Field(default_factory=list)


class GlobalMarket(BaseModel):
    """Whole-market figures (CoinGecko or CoinPaprika ``/global``), fetched on their own, slower schedule."""

    total_market_cap_usd: float | None = None
    total_volume_usd: float | None = None
    btc_dominance: float | None = None  # percent
    eth_dominance: float | None = None
    market_cap_change_24h: float | None = None  # percent
    active_cryptocurrencies: int | None = None
    updated_at: str | None = None  # the provider's own time of the figures
    #: Set by market_data from the pool's answer; a provider's normaliser leaves them out.
    source: str | None = None
    fetched_at: str | None = None
    status: DataStatus | None = None  # ok, or stale (past max_age_seconds, or its providers failing)
    age_seconds: float | None = None
    max_age_seconds: float | None = None
    recorded_at: str | None = None  # replay only: when the answer was captured


class TrendingCoin(BaseModel):
    id: str
    symbol: str
    name: str
    market_cap_rank: int | None = None
    score: int | None = None  # position in the provider's trending list, 0 first


class MarketDataPayload(Freshness):
    prices: dict[str, float] = Field(default_factory=dict)
    volumes: dict[str, float] = Field(default_factory=dict)
    market_caps: dict[str, float] = Field(default_factory=dict)
    price_changes: dict[str, float] = Field(default_factory=dict)
    source: str | None = None
    timestamp: str
    #: ``24h`` (rolling) or ``utc_day`` (since 00:00 UTC, what Kraken's ``o`` gives)
    price_change_window: Literal["24h", "utc_day"] | None = None
    coins: list[CoinInfo] = Field(default_factory=list)
    #: What prices and volumes are counted in: ``USDT`` when they come from Binance's USDT pairs (not converted)
    quote_currency: Literal["USD", "USDT"] | None = None
    global_market: GlobalMarket | None = None
    trending: list[TrendingCoin] = Field(default_factory=list)
    trending_fetched_at: str | None = None  # trending has its own, slower schedule
    trending_status: DataStatus | None = None  # and its own maximum age
    trending_age_seconds: float | None = None
    trending_recorded_at: str | None = None  # replay only
    #: The prices cross-checked against other providers; None before the first check answered.
    consensus: PriceConsensus | None = None


class ProviderHealthView(BaseModel):
    status: HealthStatus
    detail: HealthDetail
    response_time_ms: float | None
    last_check: str | None
    name: str
    category: str
    last_success: str | None = None
    consecutive_failures: int = 0
    error: str | None = None
    error_since: str | None = None
    requests: int = 0
    failures: int = 0


class HealthEvent(BaseModel):
    kind: Literal["price_spread", "depeg"]
    service: str  # the stream that found it
    subject: str  # e.g. a coin id
    message: str
    at: str | None = None  # the time of the update that found it


class HealthPayload(BaseModel):
    overall_health: Literal["healthy", "degraded", "unhealthy"]
    healthy_count: int
    unhealthy_count: int
    total_providers: int
    providers: dict[str, ProviderHealthView]
    timestamp: str
    degraded_count: int = 0
    disabled_count: int = 0
    data_source: Literal["live", "replay"] = "live"
    #: What the data streams found wrong in what providers said (a price the providers disagree on, a de-peg).
    events: list[HealthEvent] = Field(default_factory=list)


class Failover(BaseModel):
    pool: str
    from_source: str | None
    to_source: str | None
    reason: str
    at: str


class PoolView(BaseModel):
    active_source: str | None
    available_sources: list[str]
    health: Literal["healthy", "degraded", "unhealthy", "missing_api_key"]
    sources: dict[str, HealthStatus] = Field(default_factory=dict)
    failover_count: int = 0
    last_failover: Failover | None = None


class PoolPayload(BaseModel):
    pools: dict[str, PoolView]
    active_sources: list[str]
    inactive_sources: list[str]
    failover_count: int
    timestamp: str
    recent_failovers: list[Failover] = Field(default_factory=list)


class JobView(BaseModel):
    id: str
    next_run: str | None
    status: Literal["scheduled", "running", "paused"]
    interval_seconds: float | None = None
    last_run: str | None = None
    last_result: Literal["published", "nothing_new", "done", "error"] | None = None
    last_duration_ms: float | None = None
    last_error: str | None = None
    runs: int = 0
    failures: int = 0


class SchedulerPayload(BaseModel):
    running: bool
    total_jobs: int
    active_jobs: int
    jobs: list[JobView]
    timestamp: str


# -- explorers ------------------------------------------------------------------------------------------

class BitcoinFigures(BaseModel):
    """Bitcoin from a block explorer, as its normaliser reads it. ``fees`` are always in sat/vB; a fee a source
    gives per byte (Blockchair) is not one of them and has its own key. Hashrate in H/s."""

    height: int | None = None
    fees: dict[str, float] = Field(default_factory=dict)  # sat/vB: fastest, half_hour, hour, economy, minimum
    mempool_count: int | None = None
    mempool_vsize: int | None = None
    hashrate: float | None = None
    difficulty: float | None = None
    last_block_time: str | None = None  # the tip block's own time
    #: Blockchair's suggested fee, in sat per byte of the whole transaction (not per vbyte: for a SegWit
    #: transaction a byte rate is lower than the vbyte rate of the same fee).
    suggested_fee_sat_per_byte: float | None = None
    #: When the source computed its figures (blockchain.info's ``timestamp``), where it says so.
    stats_time: str | None = None


class BitcoinNetwork(Freshness, BitcoinFigures):
    source: str | None = None


class EthereumFigures(BaseModel):
    """Ethereum from an explorer or a public node, as its normaliser reads it. Gas figures in gwei; ``gas_oracle``
    keys are the source's own: safe/propose/fast (Etherscan) or sloth/slow/normal/fast/cheetah (Blockchair)."""

    block_number: int | None = None
    gas_price_gwei: float | None = None
    base_fee_gwei: float | None = None
    gas_oracle: dict[str, float] = Field(default_factory=dict)
    last_block_time: str | None = None
    gas_price_error: str | None = None  # why ``gas_price_gwei`` is absent while the block was read


class EthereumNetwork(Freshness, EthereumFigures):
    source: str | None = None


class ExplorersPayload(BaseModel):
    bitcoin: BitcoinNetwork
    ethereum: EthereumNetwork
    status: DataStatus
    data_source: Literal["live", "replay"] = "live"
    timestamp: str


# -- news -----------------------------------------------------------------------------------------------

class ArticleSentiment(BaseModel):
    label: Literal["bullish", "neutral", "bearish"]
    score: float  # -1 (bearish) .. 1 (bullish)
    model: str  # the model id or backend that really produced it


class Article(BaseModel):
    id: str  # stable hash of the normalised URL (or title), for de-duplication
    title: str
    source: str  # publisher name, e.g. "CoinDesk"
    url: str
    published_at: str | None
    categories: list[str] = Field(default_factory=list)
    summary: str | None = None
    feed: str | None = None  # provider id it came from
    sentiment: ArticleSentiment | None = None


class NewsPayload(Freshness):
    articles: list[Article] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    timestamp: str


# -- sentiment ------------------------------------------------------------------------------------------

class FearGreed(BaseModel):
    value: int  # 0 (extreme fear) .. 100 (extreme greed)
    classification: str
    timestamp: str | None
    source: str


class BackendSentiment(BaseModel):
    """The texts one sentiment backend scored. Backends score on different scales (VADER's compound score is not a
    model's probability margin), so their scores are never averaged together."""

    mean: float  # -1 .. 1
    overall: Literal["bullish", "neutral", "bearish"]
    count: int  # texts this backend scored
    model: str  # the model id, or "vader"
    by_source: dict[str, float] = Field(default_factory=dict)
    label_counts: dict[str, int] = Field(default_factory=dict)


class SentimentPayload(Freshness):
    """``sentiment_score``, ``overall_sentiment``, ``sentiment_by_source``, ``label_counts`` and ``model`` are one
    backend's (``backend``: the model's when it scored any text, else the lexicon's); ``sentiment_by_backend``
    holds each backend's own. ``fetched_at`` is when the texts were fetched (the oldest of ``texts_fetched_at``),
    not when they were scored."""

    overall_sentiment: Literal["bullish", "neutral", "bearish"] | None = None
    sentiment_score: float | None = None  # -1 .. 1, None without texts
    social_volume: int | None = None  # texts scored, by any backend; None (not 0) when none were
    trending_topics: list[str] = Field(default_factory=list)
    sentiment_by_source: dict[str, float] = Field(default_factory=dict)
    timestamp: str
    fear_greed: FearGreed | None = None
    label_counts: dict[str, int] = Field(default_factory=dict)
    model: str | None = None  # the model that made the score: a model id, or "vader"
    backend: Literal["transformers", "lexicon"] | None = None  # the backend that made the score
    sentiment_by_backend: dict[str, BackendSentiment] = Field(default_factory=dict)
    texts_fetched_at: dict[str, str] = Field(default_factory=dict)  # "news" / "reddit" -> when fetched


# -- whale tracking -------------------------------------------------------------------------------------

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


# -- RPC nodes ------------------------------------------------------------------------------------------

class RpcNode(BaseModel):
    chain: str
    url: str
    reachable: bool
    latency_ms: float | None = None
    block_number: int | None = None
    lag_blocks: int | None = None  # behind the best node of its chain
    chain_id: int | None = None
    chain_id_ok: bool | None = None  # None: the node did not say (``error`` says why)
    error: str | None = None
    last_check: str | None = None
    block_time: str | None = None  # the head block's own time
    #: How old the head block was when it was read (in replay: when its answer was captured), by its own time.
    head_age_seconds: float | None = None
    head_stale: bool | None = None  # older than its chain's ``head_max_age_seconds``: a stuck node, whatever its lag
    healthy: bool = False  # reachable, on the right chain, not behind, and its head fresh
    recorded_at: str | None = None  # replay only: when the head's answer was captured


class RpcChain(BaseModel):
    chain_id: int
    best_block: int | None
    nodes: int
    healthy_nodes: int
    best_block_time: str | None = None
    head_max_age_seconds: float | None = None  # a head older than this (by its block time) is stale


class RpcNodesPayload(BaseModel):
    nodes: dict[str, RpcNode]
    chains: dict[str, RpcChain]
    healthy_count: int
    total_nodes: int
    timestamp: str
    data_source: Literal["live", "replay"] = "live"


# -- on-chain -------------------------------------------------------------------------------------------

class ChainTvl(BaseModel):
    name: str
    tvl: float
    token_symbol: str | None = None


class DefiProtocol(BaseModel):
    name: str
    category: str | None = None
    tvl: float
    change_1d: float | None = None  # percent
    change_7d: float | None = None
    chains: list[str] = Field(default_factory=list)


class Stablecoin(BaseModel):
    name: str
    symbol: str
    #: Supply valued at the coin's own price; None when DefiLlama gave no price (``circulating`` is then all we know).
    circulating_usd: float | None
    peg_type: str | None = None
    circulating: float | None = None  # supply in units of the peg (DefiLlama's ``circulating.peggedUSD``)
    price_usd: float | None = None  # DefiLlama's price of the coin


class TvlSection(Freshness):
    source: str | None = None
    total_tvl: float | None = None
    chains: list[ChainTvl] = Field(default_factory=list)


class ProtocolsSection(Freshness):
    source: str | None = None
    top: list[DefiProtocol] = Field(default_factory=list)


class StablecoinsSection(Freshness):
    source: str | None = None
    #: The USD value of the USD-pegged coins DefiLlama priced, each at its own price.
    total_circulating_usd: float | None = None
    top: list[Stablecoin] = Field(default_factory=list)
    #: Coins without a price: not in ``total_circulating_usd``; their supply (in units of the peg) is counted here.
    unpriced_count: int | None = None
    unpriced_circulating: float | None = None


class GasFigures(BaseModel):
    """One chain's gas, read from one of its public nodes, in gwei (wei precision kept: a Base or Optimism base fee
    is a few hundred wei), at the block it names. Gas read at a block older than the chain's tolerance is
    ``stale``: a stuck node's gas is not today's."""

    gas_price_gwei: float | None = None  # None when the node gave none (``gas_price_error``)
    base_fee_gwei: float | None = None  # None on a chain (or block) without EIP-1559
    block_number: int | None = None
    block_time: str | None = None  # the block's own time
    gas_price_error: str | None = None
    #: Set by the stream from the pool's answer; a node's normaliser leaves them out.
    source: str | None = None  # the node that answered
    fetched_at: str | None = None
    status: DataStatus | None = None  # ok, or stale when the block is older than ``max_age_seconds``
    age_seconds: float | None = None  # the block's age when read (in replay: when captured)
    max_age_seconds: float | None = None
    recorded_at: str | None = None  # replay only: when the answer was captured
    message: str | None = None


class OnchainPayload(BaseModel):
    tvl: TvlSection
    protocols: ProtocolsSection
    stablecoins: StablecoinsSection
    gas: dict[str, GasFigures] = Field(default_factory=dict)  # chain -> figures; a chain no node answered for is absent
    gas_errors: dict[str, str] = Field(default_factory=dict)  # chain -> why it is absent
    status: DataStatus
    data_source: Literal["live", "replay"] = "live"
    timestamp: str


# -- huggingface ----------------------------------------------------------------------------------------

class HfRepoItem(BaseModel):
    id: str
    downloads: int | None = None
    likes: int | None = None
    pipeline_tag: str | None = None
    last_modified: str | None = None
    gated: bool | None = None


class ModelState(BaseModel):
    id: str  # what SENTIMENT_MODEL names
    backend: str  # what answers now: "transformers" or "lexicon"
    state: Literal["loading", "ready", "failed"]
    error: str | None = None
    loaded_at: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)  # model label -> bullish/neutral/bearish


class InferenceStats(BaseModel):
    texts_scored: int = 0
    batches: int = 0
    cache_hits: int = 0
    mean_latency_ms: float | None = None  # per text
    p95_batch_ms: float | None = None


class HuggingfacePayload(BaseModel):
    total_models: int | None
    total_datasets: int | None
    available_models: list[str] = Field(default_factory=list)
    available_datasets: list[str] = Field(default_factory=list)
    last_refresh: str | None
    timestamp: str
    registry_status: DataStatus = DataStatus.OK
    registry_age_seconds: float | None = None
    message: str | None = None  # why the registry list is stale or missing
    data_source: Literal["live", "replay"] = "live"
    models: list[HfRepoItem] = Field(default_factory=list)
    datasets: list[HfRepoItem] = Field(default_factory=list)
    sentiment_model: ModelState | None = None
    inference: InferenceStats = Field(default_factory=InferenceStats)


# -- persistence ----------------------------------------------------------------------------------------

class PersistencePayload(BaseModel):
    storage_location: str
    total_records: int
    storage_size: str  # human-readable, e.g. "2.5 MB"
    last_save: str | None
    active_writers: int
    timestamp: str
    storage_bytes: int = 0
    records_by_service: dict[str, int] = Field(default_factory=dict)
    oldest_record: str | None = None
    retention: dict[str, int | float | None] = Field(default_factory=dict)
    backup: dict[str, str | bool | None] = Field(default_factory=dict)
    #: The mode whose history this is: live and replayed updates are kept in separate files, never mixed.
    data_source: Literal["live", "replay"] | None = None
    history_file: str | None = None  # the file's name in storage_location
