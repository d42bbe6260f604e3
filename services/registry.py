"""Assembles the data plane from the settings: the HTTP client, every provider, their pools and the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from config import Settings
from models.catalog import BY_NAME
from services.base import Service
from services.fetch import Fetcher, Provider
from services.health_checker import HealthCheckerService
from services.market_data import MarketDataService
from services.pool_manager import PoolManagerService
from services.pools import Pool
from services.providers.market import CoinGecko, CoinPaprika, Kraken, MarketProvider
from services.replay import ReplayTransport
from services.scheduler import Scheduler, SchedulerService

USER_AGENT = "crypto-api-monitor/2.0 (+https://huggingface.co/spaces; open-source crypto data monitor)"


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


def _keyed(cls: type[Provider], settings: Settings) -> Any:
    return cls(settings.key(cls.key_setting) if cls.key_setting else None)


@dataclass
class Backend:
    fetcher: Fetcher
    pools: dict[str, Pool[Any]]
    services: dict[str, Service] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)


def build_backend(settings: Settings, http: httpx.AsyncClient, scheduler: Scheduler,
                  intervals: dict[str, float]) -> Backend:
    fetcher = Fetcher(http, retries=settings.http_retries, timeout=settings.http_timeout,
                      budgets=settings.data_source == "live", secrets=settings.secrets())
    market: list[MarketProvider] = [_keyed(CoinGecko, settings), CoinPaprika(), Kraken()]
    pools: dict[str, Pool[Any]] = {"market_data": Pool("market_data", market, fetcher)}
    backend = Backend(fetcher, pools, intervals=intervals)

    data_services: list[Service] = [
        MarketDataService(pools["market_data"], fetcher, limit=settings.market_coins,
                          interval=intervals["market_data"], data_source=settings.data_source),
    ]
    monitoring: list[Service] = [
        HealthCheckerService(fetcher, interval=intervals["health_checker"], data_source=settings.data_source),
        PoolManagerService(list(pools.values()), fetcher),
        SchedulerService(scheduler),
    ]
    # Staggered first runs: data services one after another, monitoring once the first answers are in.
    for i, service in enumerate(data_services):
        scheduler.add(service, intervals[service.name], first_run_in=0.2 + i * 0.8)
    start = 0.5 + len(data_services) * 0.8
    for i, service in enumerate(monitoring):
        scheduler.add(service, intervals[service.name], first_run_in=start + i * 0.5)
    backend.services = {s.name: s for s in (*data_services, *monitoring)}
    return backend


def effective_intervals(settings: Settings) -> dict[str, float]:
    return {name: info.interval * settings.interval_scale for name, info in BY_NAME.items()}
