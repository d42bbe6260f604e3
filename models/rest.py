"""The bodies of the REST routes that describe the server (health, WebSocket statistics and catalogue, providers),
as declared in the OpenAPI document. The routes build plain dicts (no validation on the way out); these models
say their shape, and the schemathesis test checks every answer against it. Keys a newer server adds are allowed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from models.monitoring import ProviderHealthView
from models.wire import ClientData, ServiceName, Subscription, Timestamp


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Health(Open):
    status: Literal["ok"]
    data_source: Literal["live", "replay"]
    connections: int = Field(description="WebSocket clients connected now")
    role: Literal["standalone", "leader", "follower"] = Field(
        description="standalone: one process; with REDIS_URL, leader (polls providers) or follower")
    replica: str = Field(description="This process's id in a group of replicas")
    redis: dict[str, Any] | SkipJsonSchema[None] = Field(
        default=None, description="With REDIS_URL: its state (connected, unreachable), since when, the last error")
    leader_since: str | None = Field(default=None, description="Since when this replica leads, if it does")
    provider_calls: int = Field(description="HTTP requests this process made to providers since start")
    storage: dict[str, Any] | SkipJsonSchema[None] = Field(
        default=None, description="Whether the history is written: status, and when failing its kind, error, "
                                  "since when, attempts, updates pending and dropped")
    timestamp: Timestamp

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"status": "ok", "data_source": "live", "connections": 3, "role": "standalone", "replica": "space-7",
         "leader_since": None, "provider_calls": 1843,
         "storage": {"status": "ok", "pending": 0, "dropped": 0}, "timestamp": "2026-11-29T10:30:00.000Z"}]})


class WsStatsData(Open):
    total_connections: int
    clients: list[ClientData]
    subscription_counts: dict[Subscription, int]
    connections_since_start: int
    slow_consumer_disconnects: int = Field(description="Closed with 1013: the client did not read fast enough")
    rate_limit_disconnects: int = Field(description="Closed with 1008: the inbound rate limit, exceeded again")
    oversize_disconnects: int = Field(description="Closed with 1009: a message over the size limit")
    updates_published: int
    updates_delivered: int
    updates_dropped: int


class WsRuntimeData(Open):
    asyncio_tasks: int = Field(description="Tasks alive in the server's event loop")
    connections: int
    queued_messages: int = Field(description="Messages waiting in every connection's send queue")
    max_queue: int = Field(description="The longest send queue")
    turns_waiting: int = Field(description="Senders waiting for their turn (see ws/turns.py)")
    turns_waited_total: int
    loop_lag: dict[str, Any] = Field(description="How late the event loop runs a callback (ms): the worst since "
                                                 "the last read; p50, p99 and samples over the last minute")
    resume_rings: dict[str, int] = Field(
        default_factory=dict, description="The updates kept for resuming clients: updates, capacity (their "
        "bound) and text_bytes; they fill up to the bound after a start with an empty history")
    malloc: dict[str, Any] | None = Field(
        default=None, description="The C heap in bytes (glibc mallinfo2; null elsewhere): heap held from the "
        "system, of which in_use and free (kept, fragmented), and mmapped large blocks; trims: the periodic "
        "malloc_trim (runs, last_ms, last_released_bytes)")


class WsRuntime(Open):
    """``GET /ws/runtime``: what a soak watches for creeping."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "status": "success", "timestamp": "2026-11-29T10:30:00.000Z", "data": {
            "asyncio_tasks": 31, "connections": 12, "queued_messages": 0, "max_queue": 0, "turns_waiting": 0,
            "turns_waited_total": 5210,
            "loop_lag": {"max_since_last_read_ms": 9.8, "p50_ms": 0.4, "p99_ms": 3.1, "samples": 120},
            "resume_rings": {"updates": 1520, "capacity": 3600, "text_bytes": 20480000},
            "malloc": {"heap": 158347264, "in_use": 155511888, "free": 2835376, "mmapped": 5632000,
                       "trims": {"runs": 3, "last_ms": 4.2, "last_released_bytes": 12582912}}}}]})

    status: Literal["success"]
    data: WsRuntimeData
    timestamp: Timestamp


class WsStats(Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "status": "success", "timestamp": "2026-11-29T10:30:00.000Z", "data": {
            "total_connections": 1, "clients": [{
                "client_id": "client_1_1795940000", "connected_at": "2026-11-29T10:30:00.000Z",
                "last_activity": "2026-11-29T10:30:00.000Z",
                "subscriptions": ["market_data"], "endpoint": "/ws/market_data", "messages_sent": 4,
                "messages_received": 0, "queued": 0}],
            "subscription_counts": {"market_data": 1}, "connections_since_start": 1, "slow_consumer_disconnects": 0,
            "rate_limit_disconnects": 0, "oversize_disconnects": 0, "updates_published": 12,
            "updates_delivered": 3, "updates_dropped": 0}}]})

    status: Literal["success"]
    data: WsStatsData
    timestamp: Timestamp


class ServiceView(Open):
    name: ServiceName
    group: Literal["data_collection", "monitoring", "integration"]
    description: str
    update_interval: float = Field(description="Seconds, as the spec has it")
    effective_interval: float = Field(description="Seconds, once INTERVAL_SCALE is applied")
    endpoints: list[str] = Field(description="The WebSocket paths that stream it")
    has_data: bool = Field(description="Whether it has published an update yet")


class WsServicesData(Open):
    services: dict[ServiceName, ServiceView]
    groups: dict[Literal["data_collection", "monitoring", "integration"], list[ServiceName]]
    special: dict[Literal["system", "all"], str]


class WsServices(Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "status": "success", "timestamp": "2026-11-29T10:30:00.000Z", "data": {
            "services": {"news": {
                "name": "news", "group": "data_collection",
                "description": "Cryptocurrency news aggregation from multiple sources", "update_interval": 60,
                "effective_interval": 60, "endpoints": ["/ws", "/ws/master", "/ws/all", "/ws/data", "/ws/news"],
                "has_data": True}},
            "groups": {"data_collection": ["news"]},
            "special": {"system": "System messages and connection management",
                        "all": "Subscribe to all services at once"}}}]})

    status: Literal["success"]
    data: WsServicesData
    timestamp: Timestamp


class EndpointView(Open):
    path: str
    url: str = Field(description="ws:// or wss:// as the client reached this server")
    description: str
    services: list[ServiceName]
    auto_subscribe: list[ServiceName]
    alias_of: str | None


class WsEndpointsData(Open):
    base_url: str
    endpoints: list[EndpointView]


class WsEndpoints(Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "status": "success", "timestamp": "2026-11-29T10:30:00.000Z", "data": {
            "base_url": "ws://localhost:7860", "endpoints": [{
                "path": "/ws/ai", "url": "ws://localhost:7860/ws/ai",
                "description": "HuggingFace services only (auto-subscribed)", "services": ["huggingface"],
                "auto_subscribe": ["huggingface"], "alias_of": "/ws/huggingface"}]}}]})

    status: Literal["success"]
    data: WsEndpointsData
    timestamp: Timestamp


class ProviderKey(Open):
    setting: str = Field(description="The environment variable that holds it (never its value)")
    required: bool
    configured: bool


class ProviderBudget(Open):
    calls: float
    per_seconds: float
    burst: float


class ProviderView(Open):
    id: str
    name: str
    category: str
    base_url: str
    endpoints: list[str]
    docs: str | None
    key: ProviderKey | None
    budget: ProviderBudget | None
    health: ProviderHealthView


class Providers(Open):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "status": "success", "count": 1, "endpoint_count": 1, "categories": {"market": 1},
        "timestamp": "2026-11-29T10:30:00.000Z",
        "providers": [{
            "id": "kraken", "name": "Kraken", "category": "market", "base_url": "https://api.kraken.com/0/public",
            "endpoints": ["/Ticker"], "docs": "https://docs.kraken.com/api/", "key": None,
            "budget": {"calls": 1, "per_seconds": 1, "burst": 1},
            "health": {"status": "healthy", "detail": "ok", "response_time_ms": 120.5,
                       "last_check": "2026-11-29T10:30:00.000Z", "name": "Kraken", "category": "market",
                       "last_success": "2026-11-29T10:30:00.000Z"}}]}]})

    status: Literal["success"]
    count: int
    endpoint_count: int
    categories: dict[str, int]
    providers: list[ProviderView]
    timestamp: Timestamp
