"""What every stream is, how fresh what it shows is, and what it is built from.

A stream (:class:`Service`) has a ``name`` (one of the catalogue's twelve) and an async ``collect()`` that returns
the payload to publish, or None when there is nothing new to say. The scheduler calls it on the stream's interval
and hands the payload to the hub; streams know nothing of sockets, and read one another only through the ports of
:mod:`services.ports`.

Freshness (:class:`Tracker`): an answer from any provider is ``ok``. When every provider fails, the last good
value is sent again marked ``stale``, with its age and since when the failure lasts; if there never was a good
value the update says ``no_data`` and why. Nothing is ever zero-filled.

Each stream module has a ``build(ctx)`` that declares its providers and pools through the :class:`BuildContext`
and returns its streams; ``app.py`` calls them.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from config import Settings
from models.freshness import Freshness, SourceState
from models.messages import LatestUpdates, iso
from models.states import DataStatus
from sources.fetcher import Fetcher, Provider
from sources.limits import Clock
from sources.pools import GatherResult, Pool, PoolResult

if TYPE_CHECKING:
    from inference.runner import SentimentRunner
    from services.jobs import Scheduler
    from storage.dataset_backup import DatasetBackup
    from storage.history import Store

R = TypeVar("R", bound=PoolResult[Any] | GatherResult[Any])
P = TypeVar("P", bound=Provider)


class Service(ABC):
    name: str = ""

    @abstractmethod
    async def collect(self) -> Mapping[str, Any] | None:
        """The payload to publish now, or None when there is nothing new."""


def why_failed(sources: Mapping[str, SourceState]) -> str:
    """``provider: error`` for every provider of an attempt, as one line."""
    return "; ".join(f"{pid}: {s.error or s.status}" for pid, s in sources.items()) or "no providers"


class Tracker(Generic[R]):
    """Keeps a data stream's last good pool result and says how fresh what it shows is.

    Works for a failover result (``Pool.fetch``) and a fan-in one (``Pool.gather``) alike. ``clock`` is wall time
    (Unix seconds, as results' ``fetched_at``). ``data_time`` reads the provider's own time off a result (None
    where it gives none); ages count from it, so an old figure served fresh is old. Past ``max_age`` seconds the
    data shown is ``stale`` even while its provider answers. In replay, ages count from when the answer was
    captured (``recorded_at``), so a recording of 2023 is as fresh as it was then, and says when that was."""

    def __init__(self, data_source: Literal["live", "replay"], clock: Clock = time.time, *,
                 max_age: float | None = None, data_time: Callable[[R], float | None] | None = None) -> None:
        self.data_source = data_source
        self.last: R | None = None
        self.failing_since: float | None = None
        self.max_age = max_age
        self._data_time = data_time
        self._clock = clock
        self._sources: dict[str, SourceState] = {}

    def observe(self, result: R) -> tuple[R | None, Freshness]:
        """Take a new result: the result to show (this one, the last good one, or None) and its freshness."""
        now = self._clock()
        self._sources = dict(result.sources)
        if result.ok:
            self.last, self.failing_since = result, None
            return self._shown(result, now, just_fetched=True)
        if self.failing_since is None:
            self.failing_since = now
        return self.view(now)

    def view(self, now: float | None = None) -> tuple[R | None, Freshness]:
        """What to show now without asking anyone: the last result with its real age, or why there is none."""
        now = self._clock() if now is None else now
        last = self.last
        if last is None or last.fetched_at is None:
            message = f"No data: every provider failed ({why_failed(self._sources)})"
            return None, Freshness(data_source=self.data_source, providers=self._sources, status=DataStatus.NO_DATA,
                                   message=message, max_age_seconds=self.max_age)
        return self._shown(last, now, just_fetched=False)

    def _shown(self, last: R, now: float, *, just_fetched: bool) -> tuple[R, Freshness]:
        fetched_at = last.fetched_at or now
        data_time = self._data_time(last) if self._data_time is not None else None
        captured = last.recorded_at or fetched_at
        # How old the data was when it was fetched (by the provider's own clock), plus how long ago that was.
        lag = max(0.0, captured - data_time) if data_time is not None else 0.0
        age = round(lag + (0.0 if just_fetched else max(0.0, now - fetched_at)), 1)
        fields = Freshness(data_source=self.data_source, providers=self._sources, fetched_at=iso(fetched_at),
                           age_seconds=age, data_time=iso(data_time), max_age_seconds=self.max_age,
                           recorded_at=iso(last.recorded_at))
        if self.failing_since is not None:
            return last, fields.model_copy(update={
                "status": DataStatus.STALE, "stale_since": iso(self.failing_since),
                "message": f"Showing the last good data from {last.source}: every provider failed "
                           f"({why_failed(self._sources)})",
            })
        if self.max_age is not None and age > self.max_age:
            born = data_time if data_time is not None else captured
            return last, fields.model_copy(update={
                "status": DataStatus.STALE, "stale_since": iso(born + self.max_age),
                "message": f"The newest data from {last.source} is {age:.0f} s old (of {iso(born)}), over the "
                           f"{self.max_age:.0f} s such data may be",
            })
        return last, fields


def combined_status(statuses: Iterable[DataStatus | str]) -> DataStatus:
    """The overall status of a payload made of sections, each with its own freshness."""
    seen = [DataStatus(s) for s in statuses]
    if all(s is DataStatus.OK for s in seen):
        return DataStatus.OK
    if all(s is DataStatus.NO_DATA for s in seen):
        return DataStatus.NO_DATA
    return DataStatus.PARTIAL if DataStatus.NO_DATA in seen else DataStatus.STALE


@dataclass
class BuildContext:
    """What a stream module's ``build(ctx)`` gets: the settings, the fetcher, the ports and the resources the
    lifespan started. Pools it declares are kept here, for pool_manager to show."""

    settings: Settings
    fetcher: Fetcher
    intervals: dict[str, float]
    #: The hub's latest updates: the only way a stream reads another's (through services/ports.py).
    latest: LatestUpdates
    scheduler: Scheduler
    sentiment: SentimentRunner | None = None
    store: Store | None = None
    backup: DatasetBackup | None = None
    pools: dict[str, Pool[Any]] = field(default_factory=dict)

    @property
    def data_source(self) -> Literal["live", "replay"]:
        return self.settings.data_source

    def provider(self, cls: type[P]) -> P:
        """An instance of a provider class, with its key from the settings when it declares one."""
        return cls(self.settings.key(cls.key_setting) if cls.key_setting else None)

    def pool(self, name: str, providers: Sequence[P], every: float | None = None) -> Pool[P]:
        """A pool of providers in order of preference, shown by pool_manager under ``name``; ``every``: the
        interval of the stream it serves (see :class:`~sources.pools.Pool`)."""
        pool: Pool[P] = Pool(name, providers, self.fetcher, every=every)
        self.pools[name] = pool
        return pool
