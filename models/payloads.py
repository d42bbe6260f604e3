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
from models.states import DataStatus, HealthDetail, HealthStatus


class CoinInfo(BaseModel):
    id: str
    symbol: str
    name: str
    rank: int | None = None


class GlobalMarket(BaseModel):
    """Whole-market figures (CoinGecko or CoinPaprika ``/global``), fetched on their own, slower schedule."""

    total_market_cap_usd: float | None = None
    total_volume_usd: float | None = None
    btc_dominance: float | None = None  # percent
    eth_dominance: float | None = None
    market_cap_change_24h: float | None = None  # percent
    active_cryptocurrencies: int | None = None
    #: Set by market_data from the pool's answer; a provider's normaliser leaves them out.
    source: str | None = None
    fetched_at: str | None = None


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


class Failover(BaseModel):
    pool: str
    from_source: str | None
    to_source: str | None
    reason: str
    at: str


class PoolView(BaseModel):
    active_source: str | None
    available_sources: list[str]
    health: Literal["healthy", "degraded", "unhealthy"]
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
    """Bitcoin from a block explorer, as its normaliser reads it. Fees in sat/vB; hashrate in H/s."""

    height: int | None = None
    fees: dict[str, float] = Field(default_factory=dict)  # fastest, half_hour, hour, economy, minimum
    mempool_count: int | None = None
    mempool_vsize: int | None = None
    hashrate: float | None = None
    difficulty: float | None = None
    last_block_time: str | None = None


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


class SentimentPayload(Freshness):
    overall_sentiment: Literal["bullish", "neutral", "bearish"] | None = None
    sentiment_score: float | None = None  # -1 .. 1, None without texts
    social_volume: int = 0  # texts scored
    trending_topics: list[str] = Field(default_factory=list)
    sentiment_by_source: dict[str, float] = Field(default_factory=dict)
    timestamp: str
    fear_greed: FearGreed | None = None
    label_counts: dict[str, int] = Field(default_factory=dict)
    model: str | None = None  # model id or backend that scored the texts
    backend: str | None = None


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


class WhaleWallet(BaseModel):
    address: str
    chain: str
    volume_usd: float
    transactions: int


class WhaleTrackingPayload(Freshness):
    large_transactions: list[WhaleTransaction] = Field(default_factory=list)
    whale_wallets: list[WhaleWallet] = Field(default_factory=list)
    total_volume: float | None = None  # USD; None (not 0) when nothing could be fetched
    alert_threshold: float
    timestamp: str
    window_seconds: float | None = None
    prices_used: dict[str, float] = Field(default_factory=dict)  # symbol -> USD used for valuation


# -- RPC nodes ------------------------------------------------------------------------------------------

class RpcNode(BaseModel):
    chain: str
    url: str
    reachable: bool
    latency_ms: float | None = None
    block_number: int | None = None
    lag_blocks: int | None = None  # behind the best node of its chain
    chain_id: int | None = None
    chain_id_ok: bool | None = None
    error: str | None = None
    last_check: str | None = None


class RpcChain(BaseModel):
    chain_id: int
    best_block: int | None
    nodes: int
    healthy_nodes: int


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
    circulating_usd: float
    peg_type: str | None = None


class TvlSection(Freshness):
    source: str | None = None
    total_tvl: float | None = None
    chains: list[ChainTvl] = Field(default_factory=list)


class ProtocolsSection(Freshness):
    source: str | None = None
    top: list[DefiProtocol] = Field(default_factory=list)


class StablecoinsSection(Freshness):
    source: str | None = None
    total_circulating_usd: float | None = None
    top: list[Stablecoin] = Field(default_factory=list)


class GasFigures(BaseModel):
    """One chain's gas, read from one of its public nodes, in gwei (wei precision kept: a Base or Optimism base fee
    is a few hundred wei)."""

    gas_price_gwei: float
    base_fee_gwei: float | None = None  # None on a chain (or block) without EIP-1559
    block_number: int | None = None
    block_time: str | None = None  # the block's own time
    #: Set by the stream from the pool's answer; a node's normaliser leaves them out.
    source: str | None = None  # the node that answered
    fetched_at: str | None = None


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
