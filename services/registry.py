"""Assembles the data plane from the settings: the HTTP client, every provider, their pools and the services.

Each service module has a ``build(ctx)`` that declares its providers and pools through the
:class:`BuildContext` and returns its services; this file only calls them in order (a later service may use an
earlier one, found in ``ctx.services``) and schedules the result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from config import Settings
from models.catalog import BY_NAME
from services import (
    explorers,
    huggingface,
    market_data,
    news,
    onchain,
    persistence,
    rpc_nodes,
    sentiment,
    whale_tracking,
)
from services.base import Service
from services.health_checker import HealthCheckerService
from services.jobs import Scheduler, SchedulerService
from services.pool_manager import PoolManagerService
from sources.fetcher import Fetcher, Provider
from sources.pools import Pool
from sources.replay import ReplayTransport

USER_AGENT = "crypto-api-monitor/2.0 (+https://huggingface.co/spaces; open-source crypto data monitor)"

P = TypeVar("P", bound=Provider)


def http_client(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The one HTTP client pool. Replay mode swaps in the recorded-response transport; tests pass their own."""
    if transport is None:
        transport = ReplayTransport() if settings.data_source == "replay" else httpx.AsyncHTTPTransport(retries=0)
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(settings.http_timeout, connect=min(5.0, settings.http_timeout)),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json, application/xml;q=0.9, */*;q=0.5"},
        follow_redirects=True,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
    )


def effective_intervals(settings: Settings) -> dict[str, float]:
    return {name: info.interval * settings.interval_scale for name, info in BY_NAME.items()}


@dataclass
class BuildContext:
    settings: Settings
    fetcher: Fetcher
    intervals: dict[str, float]
    pools: dict[str, Pool[Any]] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    #: The sentiment runner (inference/runner.py), started in the lifespan; None when there is none.
    sentiment: Any = None
    #: The history store and its optional Hub backup (storage/history.py, storage/dataset_backup.py).
    store: Any = None
    backup: Any = None

    def provider(self, cls: type[P]) -> P:
        """An instance of a provider class, with its key from the settings when it declares one."""
        return cls(self.settings.key(cls.key_setting) if cls.key_setting else None)

    def pool(self, name: str, providers: Sequence[Provider]) -> Pool[Any]:
        """A pool of providers in order of preference, shown by pool_manager under ``name``."""
        pool: Pool[Any] = Pool(name, providers, self.fetcher)
        self.pools[name] = pool
        return pool


#: The data services, in build order.
BUILDERS: tuple[Callable[[BuildContext], list[Service]], ...] = (
    market_data.build,
    explorers.build,
    news.build,
    sentiment.build,  # after news: it scores the headlines news collected
    huggingface.build,
    whale_tracking.build,  # after market_data: it values amounts at market_data's prices
    rpc_nodes.build,
    onchain.build,
    persistence.build,
)


@dataclass
class Backend:
    fetcher: Fetcher
    pools: dict[str, Pool[Any]]
    services: dict[str, Service] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)


def build_backend(settings: Settings, http: httpx.AsyncClient, scheduler: Scheduler,
                  intervals: dict[str, float], **resources: Any) -> Backend:
    """``resources``: what the lifespan started for the services (sentiment, store, backup)."""
    fetcher = Fetcher(http, retries=settings.http_retries, timeout=settings.http_timeout,
                      budgets=settings.data_source == "live", secrets=settings.secrets())
    ctx = BuildContext(settings, fetcher, intervals, **resources)
    data_services: list[Service] = []
    for build in BUILDERS:
        for service in build(ctx):
            ctx.services[service.name] = service
            data_services.append(service)
    monitoring: list[Service] = [
        HealthCheckerService(fetcher, interval=intervals["health_checker"], data_source=settings.data_source),
        PoolManagerService(list(ctx.pools.values()), fetcher),
        SchedulerService(scheduler),
    ]
    # Staggered first runs, so a start-up does not hit every provider at once; monitoring once answers are in.
    for i, service in enumerate(data_services):
        scheduler.add(service, intervals[service.name], first_run_in=0.2 + i * 0.8)
    start = 0.5 + len(data_services) * 0.8
    for i, service in enumerate(monitoring):
        scheduler.add(service, intervals[service.name], first_run_in=start + i * 0.5)
    return Backend(fetcher, ctx.pools, {s.name: s for s in (*data_services, *monitoring)}, intervals)
