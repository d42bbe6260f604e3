"""pool_manager: each provider pool's active source, members and health, and the failovers that happened."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from models.messages import now_iso
from models.monitoring import PoolPayload, PoolView
from models.states import HealthStatus
from services.base import BuildContext, Service
from sources.fetcher import Fetcher
from sources.pools import Pool


class PoolManagerService(Service):
    name = "pool_manager"

    def __init__(self, pools: Sequence[Pool[Any]], fetcher: Fetcher) -> None:
        self.pools = pools
        self.fetcher = fetcher

    async def collect(self) -> Mapping[str, Any]:
        now = self.fetcher.now()
        views: dict[str, PoolView] = {}
        active: set[str] = set()
        inactive: set[str] = set()
        for pool in self.pools:
            statuses = {p.id: self.fetcher.runtime(p.id).status(now)[0] for p in pool.providers}
            healthy = [pid for pid, status in statuses.items() if status is HealthStatus.HEALTHY]
            enabled = [pid for pid, status in statuses.items() if status is not HealthStatus.DISABLED]
            health: Literal["healthy", "degraded", "unhealthy", "missing_api_key"] = (
                "missing_api_key" if not enabled  # every member needs a key nobody set: nothing failed
                else "healthy" if healthy and len(healthy) == len(enabled) else "degraded" if healthy else "unhealthy")
            current = pool.active if pool.last_ok else None
            views[pool.name] = PoolView(
                active_source=current,
                available_sources=enabled,
                health=health,
                sources=statuses,
                failover_count=pool.failover_count,
                last_failover=pool.failovers[-1] if pool.failovers else None,
            )
            if current:
                active.add(current)
            inactive.update(pid for pid, status in statuses.items() if status is not HealthStatus.HEALTHY)
        recent = sorted((f for pool in self.pools for f in pool.failovers), key=lambda f: f.at)[-20:]
        return PoolPayload(
            pools=views,
            active_sources=sorted(active),
            inactive_sources=sorted(inactive - active),
            failover_count=sum(pool.failover_count for pool in self.pools),
            timestamp=now_iso(),
            recent_failovers=recent,
        ).model_dump(mode="json")


def build(ctx: BuildContext) -> list[Service]:
    """Built last: it shows every pool the other streams declared."""
    return [PoolManagerService(list(ctx.pools.values()), ctx.fetcher)]
