"""The twelve services of the spec and the WebSocket endpoints that serve them: one table, read by all.

Descriptions and intervals are the spec's ("Available Services" tables); ``interval`` is in seconds before
``INTERVAL_SCALE`` is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

#: The version of the WebSocket API (the spec's) this server speaks; also the REST API's version.
API_VERSION = "2.0.0"


class Group(StrEnum):
    DATA_COLLECTION = "data_collection"
    MONITORING = "monitoring"
    INTEGRATION = "integration"


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    group: Group
    description: str
    interval: float
    endpoint: str


SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo("market_data", Group.DATA_COLLECTION,
                "Real-time cryptocurrency prices, volumes, and market caps", 5, "/ws/market_data"),
    ServiceInfo("explorers", Group.DATA_COLLECTION,
                "Blockchain explorer data and network statistics", 10, "/ws/data"),
    ServiceInfo("news", Group.DATA_COLLECTION,
                "Cryptocurrency news aggregation from multiple sources", 60, "/ws/news"),
    ServiceInfo("sentiment", Group.DATA_COLLECTION,
                "Market sentiment analysis and social media trends", 30, "/ws/sentiment"),
    ServiceInfo("whale_tracking", Group.DATA_COLLECTION,
                "Large transaction monitoring and whale wallet tracking", 15, "/ws/whale_tracking"),
    ServiceInfo("rpc_nodes", Group.DATA_COLLECTION,
                "RPC node status and blockchain events", 20, "/ws/data"),
    ServiceInfo("onchain", Group.DATA_COLLECTION,
                "On-chain analytics and smart contract events", 30, "/ws/data"),
    ServiceInfo("health_checker", Group.MONITORING,
                "Provider health monitoring and status checks", 30, "/ws/health"),
    ServiceInfo("pool_manager", Group.MONITORING,
                "Source pool management and automatic failover", 20, "/ws/pool_status"),
    ServiceInfo("scheduler", Group.MONITORING,
                "Task scheduler status and job execution tracking", 15, "/ws/scheduler_status"),
    ServiceInfo("huggingface", Group.INTEGRATION,
                "HuggingFace AI model registry and sentiment analysis", 60, "/ws/huggingface"),
    ServiceInfo("persistence", Group.INTEGRATION,
                "Data persistence, exports, and backup operations", 30, "/ws/persistence"),
)

BY_NAME: dict[str, ServiceInfo] = {s.name: s for s in SERVICES}
SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)

#: Pseudo-services a client may name besides the twelve: ``system`` messages reach everyone anyway,
#: ``all`` expands to every service the endpoint serves.
SYSTEM = "system"
ALL = "all"


def scaled_intervals(scale: float) -> dict[str, float]:
    """Each service's interval in seconds once ``INTERVAL_SCALE`` is applied."""
    return {s.name: s.interval * scale for s in SERVICES}


def services_in(group: Group) -> tuple[str, ...]:
    return tuple(s.name for s in SERVICES if s.group is group)


@dataclass(frozen=True)
class Endpoint:
    path: str
    description: str
    services: tuple[str, ...]
    auto_subscribe: tuple[str, ...] = ()
    welcome: bool = False
    aliases: tuple[str, ...] = field(default=())


_ALL = SERVICE_NAMES
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("/ws", "Default endpoint: every service, manual subscription", _ALL),
    Endpoint("/ws/master", "Master endpoint: service catalogue on connect, every service", _ALL, welcome=True),
    Endpoint("/ws/all", "Auto-subscribes to every service", _ALL, auto_subscribe=_ALL),
    Endpoint("/ws/data", "Data collection services, manual subscription",
             services_in(Group.DATA_COLLECTION)),
    Endpoint("/ws/monitoring", "Monitoring services, manual subscription", services_in(Group.MONITORING)),
    Endpoint("/ws/integration", "Integration services, manual subscription", services_in(Group.INTEGRATION)),
    Endpoint("/ws/market_data", "Market data only (auto-subscribed)", _ALL, auto_subscribe=("market_data",)),
    Endpoint("/ws/whale_tracking", "Whale tracking only (auto-subscribed)", _ALL,
             auto_subscribe=("whale_tracking",)),
    Endpoint("/ws/news", "News only (auto-subscribed)", _ALL, auto_subscribe=("news",)),
    Endpoint("/ws/sentiment", "Sentiment only (auto-subscribed)", _ALL, auto_subscribe=("sentiment",)),
    Endpoint("/ws/health", "Provider health only (auto-subscribed)", _ALL, auto_subscribe=("health_checker",)),
    Endpoint("/ws/pool_status", "Pool manager only (auto-subscribed)", _ALL, auto_subscribe=("pool_manager",)),
    Endpoint("/ws/scheduler_status", "Scheduler only (auto-subscribed)", _ALL, auto_subscribe=("scheduler",)),
    Endpoint("/ws/huggingface", "HuggingFace services only (auto-subscribed)", _ALL,
             auto_subscribe=("huggingface",), aliases=("/ws/ai",)),
    Endpoint("/ws/persistence", "Persistence only (auto-subscribed)", _ALL, auto_subscribe=("persistence",)),
)


def endpoints_serving(service: str) -> list[str]:
    """The WebSocket paths that stream ``service``: the general ones and its dedicated one, aliases included.

    (Dedicated endpoints accept manual subscriptions to any service too; they are not listed for others.)
    """
    paths: list[str] = []
    for ep in ENDPOINTS:
        dedicated = 0 < len(ep.auto_subscribe) < len(SERVICE_NAMES)
        if service in ep.services and (not dedicated or service in ep.auto_subscribe):
            paths.extend((ep.path, *ep.aliases))
    return paths


def grouped() -> dict[str, list[str]]:
    """Services by group, the shape of the spec's ``welcome`` message."""
    return {g.value: list(services_in(g)) for g in Group}


def websocket_base_url(headers: Mapping[str, str], *, scheme: str = "http", host: str = "localhost:7860") -> str:
    """``ws://host`` or ``wss://host`` as a client outside sees this server, behind any chain of proxies.

    ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` win over the request's own ``scheme`` and ``Host``; a proxy chain
    makes them comma-separated lists, whose first item is what the client used."""
    def first(name: str) -> str | None:
        value = headers.get(name, "").split(",")[0].strip()
        return value or None

    proto = (first("x-forwarded-proto") or scheme).lower()
    address = first("x-forwarded-host") or first("host") or host
    return f"{'wss' if proto in ('https', 'wss') else 'ws'}://{address}"
