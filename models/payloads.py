"""One model per service payload: the spec's keys first, then what we add.

Data payloads carry a freshness block (:class:`Freshness`) so a client can always tell live data from stale
data from no data: ``status`` is ``ok``, ``stale`` (the last good values, with their age) or ``no_data``
(every provider failed and nothing was ever fetched; the spec's collections are then empty, never zero-filled,
and ``message`` says why). ``sources`` says, per provider, how its latest attempt went and since when.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

DataStatus = Literal["ok", "stale", "no_data"]
SourceStatus = Literal["ok", "error", "rate_limited", "circuit_open", "missing_api_key", "not_tried"]


class SourceState(BaseModel):
    status: SourceStatus
    error: str | None = None
    since: str | None = None
    last_success: str | None = None


class Freshness(BaseModel):
    status: DataStatus = "ok"
    data_source: Literal["live", "replay"] = "live"
    fetched_at: str | None = None
    age_seconds: float | None = None
    stale_since: str | None = None
    message: str | None = None
    sources: dict[str, SourceState] = Field(default_factory=dict)


class CoinInfo(BaseModel):
    id: str
    symbol: str
    name: str
    rank: int | None = None


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


HealthStatus = Literal["healthy", "unhealthy", "disabled"]
HealthDetail = Literal["ok", "slow", "error", "rate_limited", "circuit_open", "missing_api_key", "unchecked"]


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
    last_result: Literal["published", "nothing_new", "error"] | None = None
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
