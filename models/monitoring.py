"""The monitoring streams' payloads (health_checker, pool_manager, scheduler) and persistence's."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from models.states import HealthDetail, HealthStatus


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
    #: How late the server's event loop woke up over the last five minutes (p50, p99, max in ms, and samples).
    loop_lag_ms: dict[str, float] | None = None




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
    #: Whether updates are being stored: ``status`` ok / failing; while failing what fails (``kind``: disk_full,
    #: read_only, io_error, damaged, ...; ``error``), ``since`` when and ``attempts``; the updates waiting in
    #: memory (``pending``), those dropped when the wait outgrew its bound (``dropped``: count, by service, and the
    #: span of time they covered), the ``last_outage``, and files ``set_aside`` because they were damaged.
    writes: dict[str, Any] = Field(default_factory=dict)
