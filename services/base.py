"""What every service is, and the freshness rules every data service follows.

A service has a ``name`` (one of the catalogue's twelve) and an async ``collect()`` that returns the payload
to publish, or None when there is nothing new to say. The scheduler calls it on the service's interval and
hands the payload to the hub; services know nothing of sockets.

Freshness (:class:`Tracker`): an answer from any provider is ``ok``. When every provider fails, the last good
value is sent again marked ``stale``, with its age and since when the failure lasts; if there never was a good
value the update says ``no_data`` and why. Nothing is ever zero-filled.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Generic, Literal, TypeVar

from models.messages import iso
from models.payloads import DataStatus
from sources.pools import GatherResult, PoolResult

R = TypeVar("R", bound=PoolResult[Any] | GatherResult[Any])


class Service(ABC):
    name: str = ""

    @abstractmethod
    async def collect(self) -> Mapping[str, Any] | None:
        """The payload to publish now, or None when there is nothing new."""


class Tracker(Generic[R]):
    """Keeps a data service's last good pool result and says how fresh what it shows is."""

    def __init__(self, data_source: Literal["live", "replay"]) -> None:
        self.data_source = data_source
        self.last: R | None = None
        self.failing_since: float | None = None

    def observe(self, result: R) -> tuple[R | None, dict[str, Any]]:
        """The result to show (this one, the last good one, or None) and the payload's freshness fields.

        Works for a failover result (``Pool.fetch``) and a fan-in one (``Pool.gather``) alike."""
        now = time.time()
        fields: dict[str, Any] = {"data_source": self.data_source,
                                  "providers": {k: v.model_dump() for k, v in result.sources.items()}}
        if result.ok:
            self.last, self.failing_since = result, None
            return result, {**fields, "status": "ok", "fetched_at": iso(result.fetched_at), "age_seconds": 0.0}
        if self.failing_since is None:
            self.failing_since = now
        why = "; ".join(f"{pid}: {s.error or s.status}" for pid, s in result.sources.items()) or "no providers"
        if self.last is None or self.last.fetched_at is None:
            return None, {**fields, "status": "no_data", "message": f"No data: every provider failed ({why})"}
        return self.last, {
            **fields,
            "status": "stale",
            "fetched_at": iso(self.last.fetched_at),
            "age_seconds": round(now - self.last.fetched_at, 1),
            "stale_since": iso(self.failing_since),
            "message": f"Showing the last good data from {self.last.source}: every provider failed ({why})",
        }


def combined_status(statuses: list[str]) -> DataStatus:
    """The overall status of a payload made of sections, each with its own freshness."""
    if all(s == "ok" for s in statuses):
        return "ok"
    if all(s == "no_data" for s in statuses):
        return "no_data"
    return "partial" if "no_data" in statuses else "stale"
