"""health_checker: every provider's health, from its real calls and, when it has been idle, a cheap probe.

A provider in use by a data service is judged by those calls (probing it too would only spend its budget); one
idle for longer than its ``probe_interval`` gets a probe, inside its rate budget, never forcing past a cool-down.

Beside each provider's health, ``events`` says what the data streams found wrong in what providers said: the
prices market_data's cross-check flagged (providers disagreeing over the threshold, a stablecoin off its peg),
read from its latest update through :func:`services.ports.hub_price_alerts`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Literal

from models.messages import now_iso
from models.monitoring import HealthEvent, HealthPayload, ProviderHealthView
from models.states import HealthDetail, HealthStatus
from services.base import BuildContext, Service
from services.ports import PriceAlerts, hub_price_alerts
from sources.errors import ProviderError
from sources.fetcher import Fetcher, Runtime, health_view
from sources.pools import record_unreadable


class HealthCheckerService(Service):
    name = "health_checker"

    def __init__(self, fetcher: Fetcher, *, interval: float, data_source: Literal["live", "replay"],
                 price_alerts: Callable[[], PriceAlerts] | None = None) -> None:
        self.fetcher = fetcher
        self.interval = interval
        self.data_source = data_source
        self.price_alerts = price_alerts

    async def collect(self) -> Mapping[str, Any]:
        await self.probe_idle()
        return self.snapshot()

    def due(self) -> list[Runtime]:
        now = self.fetcher.now()
        return [rt for rt in self.fetcher.runtimes.values()
                if rt.provider.enabled and (rt.health.last_check is None
                                            or now - rt.health.last_used >= max(rt.provider.probe_interval,
                                                                                self.interval))]

    async def probe_idle(self) -> None:
        await asyncio.gather(*(self._probe(rt) for rt in self.due()))

    async def _probe(self, runtime: Runtime) -> None:
        """One provider's probe; whatever it raises stays with that provider, never stops the others' report."""
        provider = runtime.provider
        try:
            await provider.probe(self.fetcher)
        except ProviderError:
            pass  # recorded in the provider's health by the fetcher (or skipped: budget, cool-down)
        except Exception as exc:  # an answer the probe could not read (a JSON-RPC error body, a strange shape)
            record_unreadable(self.fetcher, provider, exc)
        else:
            self.fetcher.record_success(provider)  # answered and read

    def snapshot(self) -> dict[str, Any]:
        now = self.fetcher.now()
        providers = {pid: ProviderHealthView(**health_view(rt, now)) for pid, rt in self.fetcher.runtimes.items()}
        healthy = sum(p.status is HealthStatus.HEALTHY for p in providers.values())
        unhealthy = sum(p.status is HealthStatus.UNHEALTHY for p in providers.values())
        overall: Literal["healthy", "degraded", "unhealthy"] = (
            "healthy" if unhealthy == 0 and healthy else "degraded" if healthy else "unhealthy")
        return HealthPayload(
            overall_health=overall,
            healthy_count=healthy,
            unhealthy_count=unhealthy,
            total_providers=len(providers),
            providers=providers,
            timestamp=now_iso(),
            degraded_count=sum(p.detail is HealthDetail.SLOW for p in providers.values()),
            disabled_count=sum(p.status is HealthStatus.DISABLED for p in providers.values()),
            data_source=self.data_source,
            events=self.events(),
        ).model_dump(mode="json")

    def events(self) -> list[HealthEvent]:
        if self.price_alerts is None:
            return []
        latest = self.price_alerts()
        return [HealthEvent(kind="price_spread" if alert.kind == "spread" else "depeg", service="market_data",
                            subject=alert.coin, message=alert.message, at=latest.at) for alert in latest.alerts]


def build(ctx: BuildContext) -> list[Service]:
    return [HealthCheckerService(ctx.fetcher, interval=ctx.intervals["health_checker"], data_source=ctx.data_source,
                                 price_alerts=hub_price_alerts(ctx.latest))]
