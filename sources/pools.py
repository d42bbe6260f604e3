"""Provider pools: one per data category, trying the active source first and failing over down the list.

A pool call tries providers in their declared order of preference. A provider that is disabled, cooling down
after a rate limit, or behind an open circuit is passed over without a call. The first answer wins; when it came
from another provider than the active one (the last that answered), that is a failover: counted, with its reason,
and the new provider becomes active. The preferred provider is tried first again as soon as its breaker lets a
trial through, so a pool returns to its best source by itself (also counted, as a failover back).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from models.freshness import SourceState
from models.messages import epoch, iso
from models.monitoring import Failover
from models.states import Availability, SourceStatus
from sources.errors import AnswerError, ProviderBadResponse, ProviderError, ProviderMissingKey, ProviderRateLimited
from sources.fetcher import Fetcher, Provider, Runtime
from sources.limits import CURRENT_RUN, BreakerState

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Provider)
T = TypeVar("T")

#: A provider's trial under way: (answered, value, its state).
Trial = asyncio.Future[tuple[bool, T | None, SourceState]]

#: What a bad shape looks like from inside a pure ``normalize`` (a 0 divided by, a huge number made an int...).
SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError, ValidationError)


def record_unreadable(fetcher: Fetcher, provider: Provider, exc: Exception) -> ProviderBadResponse:
    """Count an answer that a ``normalize`` (or a probe) could not read as the provider's bad response."""
    shape = f"unexpected response shape ({type(exc).__name__}: {exc})"
    # An error body may quote the key it was sent with; this text goes into logs and published payloads.
    detail = fetcher.redact(str(exc) if isinstance(exc, AnswerError) else shape)
    if isinstance(exc, SHAPE_ERRORS):
        log.warning("%s answered in a shape we cannot read: %s", provider.id, detail, extra={"provider": provider.id})
    else:  # no shape error we foresaw: keep the traceback, it may be our bug
        log.error("reading the answer of %s failed: %s", provider.id, detail, exc_info=exc,
                  extra={"provider": provider.id})
    bad = ProviderBadResponse(provider.id, detail)
    fetcher.record_failure(provider, bad)
    return bad


@dataclass
class PoolResult(Generic[T]):
    value: T | None
    source: str | None
    fetched_at: float | None
    sources: dict[str, SourceState] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.source is not None

    @property
    def recorded_at(self) -> float | None:
        """Replay: when the answer shown was captured (so ages are counted from then); None for live data."""
        state = self.sources.get(self.source) if self.source else None
        return epoch(state.recorded_at) if state is not None else None


@dataclass
class GatherResult(Generic[T]):
    """Every provider's answer (by provider id, in order of preference) and each one's state."""

    values: dict[str, T]
    fetched_at: float | None
    sources: dict[str, SourceState] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.values)

    @property
    def source(self) -> str | None:
        return next(iter(self.values), None)

    @property
    def recorded_at(self) -> float | None:
        """Replay: the oldest capture time among the answers kept; None for live data."""
        times = [t for pid in self.values if (s := self.sources.get(pid)) and (t := epoch(s.recorded_at))]
        return min(times, default=None)


class Pool(Generic[P]):
    def __init__(self, name: str, providers: Sequence[P], fetcher: Fetcher, history: int = 50,
                 every: float | None = None) -> None:
        """``every``: the seconds between the calls of the stream it serves. A breaker of its providers then
        lets a trial through at least every two of them, however long the outage was (its cool-down doubles up
        to 10 min otherwise): a pool answered by a fallback is back on its preferred source within two runs of
        its return, as a monitor's user expects, and a dead provider costs one request every two runs at most,
        inside its budget (the budget gates every trial)."""
        self.name = name
        self.providers = list(providers)
        self.fetcher = fetcher
        for provider in self.providers:
            runtime = fetcher.register(provider)
            if every is not None and every > 0:
                runtime.breaker.cap(2 * every)
        self.active: str | None = None  # the provider that answered last
        self.last_ok = False  # whether the latest call got an answer at all
        self.failover_count = 0
        self.failovers: deque[Failover] = deque(maxlen=history)
        self._stalled_calls = 0  # calls in a row that found no provider to ask
        self._leftovers: set[asyncio.Future[Any]] = set()  # trials cut off, until they have ended

    async def fetch(self, call: Callable[[P], Awaitable[T]]) -> PoolResult[T]:
        """Run ``call`` against the providers in order until one answers (failover).

        ``call`` does the provider's requests through the fetcher and returns its normalised value; any
        exception a pure ``normalize`` raises on a strange shape is counted as that provider's bad response.
        """
        forced = self._trial_if_stalled()
        sources: dict[str, SourceState] = {}
        reasons: list[str] = []
        # Several trials at once: each is one request, and one provider hanging until the run's deadline no longer
        # keeps the trial of the one after it (back already) from being made in that run.
        trials: dict[str, Trial[T]] = {rt.id: asyncio.ensure_future(self._try(self._by_id(rt.id), call))
                                       for rt in forced} if len(forced) > 1 else {}
        try:
            return await self._first_answer(call, sources, reasons, trials)
        finally:
            self._settle(trials, sources)
            self._withdraw_unused(forced, sources)

    def _by_id(self, provider_id: str) -> P:
        return next(p for p in self.providers if p.id == provider_id)

    def _settle(self, trials: Mapping[str, Trial[Any]], sources: dict[str, SourceState]) -> None:
        """Trials no longer needed (a provider before them answered): each one already over says how it went (an
        answer closed its breaker: good to know); the others are cut off, not waited for (closing a connection
        may take its time, and the run's update is due), and their breakers open again."""
        for provider_id, trial in trials.items():
            if trial.done() and not trial.cancelled() and trial.exception() is None:
                sources[provider_id] = trial.result()[2]
            elif not trial.done():
                trial.cancel()
                self._leftovers.add(trial)
                trial.add_done_callback(self._leftovers.discard)

    async def _first_answer(self, call: Callable[[P], Awaitable[T]], sources: dict[str, SourceState],
                            reasons: list[str], trials: dict[str, Trial[T]]) -> PoolResult[T]:
        for provider in self.providers:
            trial = trials.pop(provider.id, None)
            ok, value, state = await trial if trial is not None else await self._try(provider, call)
            sources[provider.id] = state
            if not ok:
                reasons.append(f"{provider.id}: {state.error or state.status}")
                continue
            self.last_ok = True
            self._switch_to(provider.id, "; ".join(reasons))
            for rest in self.providers:
                sources.setdefault(rest.id, self._state(rest, SourceStatus.NOT_TRIED, None))
            return PoolResult(value, provider.id, time.time(), sources)
        self.last_ok = False
        return PoolResult(None, None, None, sources)

    async def gather(self, call: Callable[[P], Awaitable[T]]) -> GatherResult[T]:
        """Run ``call`` against every available provider at once and keep every answer (fan-in: news feeds,
        RPC nodes). The most preferred provider that answered counts as the active source."""
        forced = self._trial_if_stalled()
        try:
            outcomes = await asyncio.gather(*(self._try(p, call) for p in self.providers))
        finally:
            for rt in forced:  # each was asked (or its call cancelled): one left half-open goes back to open
                rt.breaker.withdraw_trial()
        values: dict[str, T] = {}
        sources: dict[str, SourceState] = {}
        for provider, (ok, value, state) in zip(self.providers, outcomes, strict=True):
            sources[provider.id] = state
            if ok:
                values[provider.id] = value  # type: ignore[assignment]
        self.last_ok = bool(values)
        if values:
            first = next(iter(values))
            reasons = [f"{pid}: {s.error or s.status}" for pid, s in sources.items() if pid not in values]
            self._switch_to(first, "; ".join(reasons))
        return GatherResult(values, time.time() if values else None, sources)

    async def _try(self, provider: P, call: Callable[[P], Awaitable[T]]) -> tuple[bool, T | None, SourceState]:
        runtime = self.fetcher.runtime(provider.id)
        availability = runtime.available(self.fetcher.now())
        if availability is not Availability.AVAILABLE:
            return False, None, self._state(provider, SourceStatus(availability.value), runtime.health.error)
        try:
            value = await call(provider)
        except ProviderError as error:
            return False, None, self._state(provider, self._status_of(error), error.message)
        except Exception as exc:  # whatever reading a strange answer raises is that provider's failure, not ours
            bad = record_unreadable(self.fetcher, provider, exc)
            return False, None, self._state(provider, SourceStatus.ERROR, bad.message)
        self.fetcher.record_success(provider)  # read as well as answered: only now does the provider work
        return True, value, self._state(provider, SourceStatus.OK, None)

    def _trial_if_stalled(self) -> list[Runtime]:
        """When no provider can be asked now (each disabled, cooling down, behind an open circuit, or with our
        budget for it spent), a collection run gives every circuit that opened in an earlier run its trial now
        (those whose budget allows, and not in a cool-down they asked for with a 429), all at once (one request
        each; the most preferred that answers is shown, so one hanging until the run's deadline does not keep the
        next from its trial): a stream never waits out a breaker's cool-down (up to 10 min) with nothing to show
        while a provider may be back, and is ``ok`` again in its first run after the provider's return however many
        others are still down; a dead provider costs one request a run, what it costs when it works, inside its
        budget. Outside a run (:data:`~sources.limits.CURRENT_RUN` unset) every other stalled call does so, the
        first waiting (its breakers may have opened in the call before). Returns the breakers opened for a trial
        (to close again if unused)."""
        now = self.fetcher.now()
        runtimes = [self.fetcher.runtime(p.id) for p in self.providers]
        if any(rt.available(now) is Availability.AVAILABLE and not rt.bucket.wait_time() for rt in runtimes):
            self._stalled_calls = 0
            return []
        self._stalled_calls += 1
        in_run = CURRENT_RUN.get() is not None
        if not in_run and self._stalled_calls % 2:
            return []
        tripped = [rt for rt in runtimes if rt.breaker.state is BreakerState.OPEN and rt.provider.enabled
                   and (rt.breaker.opened_in_an_earlier_run() or not in_run)
                   and rt.health.rate_limited_until <= now and not rt.bucket.wait_time()]
        for rt in tripped:
            rt.breaker.force_trial()
        return tripped

    @staticmethod
    def _withdraw_unused(forced: list[Runtime], sources: dict[str, SourceState]) -> None:
        for rt in forced:
            if sources.get(rt.id) is None or sources[rt.id].status is SourceStatus.NOT_TRIED:
                rt.breaker.withdraw_trial()

    def _switch_to(self, provider_id: str, reason: str) -> None:
        if self.active is not None and provider_id != self.active:
            self.failover_count += 1
            event = Failover(pool=self.name, from_source=self.active, to_source=provider_id,
                             reason=reason or "preferred source available again", at=iso(time.time()) or "")
            self.failovers.append(event)
            log.info("pool %s: %s -> %s (%s)", self.name, self.active, provider_id, event.reason,
                     extra={"provider": provider_id})
        self.active = provider_id

    def _state(self, provider: Provider, status: SourceStatus, error: str | None) -> SourceState:
        h = self.fetcher.runtime(provider.id).health
        failing = status not in (SourceStatus.OK, SourceStatus.NOT_TRIED)
        return SourceState(status=status,
                           error=error if failing else None,
                           since=iso(h.error_since) if failing else None,
                           last_success=iso(h.last_success),
                           recorded_at=iso(h.recorded_at) if status is SourceStatus.OK else None)

    @staticmethod
    def _status_of(error: ProviderError) -> SourceStatus:
        if isinstance(error, ProviderRateLimited) and error.ours:
            return SourceStatus.WAITING  # not due yet under our own budget: not a failure of the provider
        if isinstance(error, ProviderRateLimited):
            return SourceStatus.RATE_LIMITED
        if isinstance(error, ProviderMissingKey):
            return SourceStatus.MISSING_API_KEY
        return SourceStatus.ERROR
