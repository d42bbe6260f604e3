"""The one scheduler: an APScheduler ``AsyncIOScheduler`` on the server's event loop, one job per stream.

Each job runs ``service.collect()`` and hands a non-empty payload to ``publish``; polling therefore depends on
the clock, never on how many clients listen. First runs are staggered so a start-up does not hit every
provider at once. A job that raises is logged with its traceback and counted (it shows in the ``scheduler``
stream as ``last_result: error``); it never stops the others or the next run.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from config import Redactor
from models.loop_lag import LoopLagSamples, percentile
from models.messages import Unpublished, iso, now_iso, utc_now
from models.monitoring import JobView, SchedulerPayload
from sources.fetcher import run_deadline

log = logging.getLogger(__name__)

#: The share of its interval a collection run's provider calls may take; the rest is for reading and publishing.
RUN_DEADLINE_SHARE = 0.8
#: Seconds of event-loop lag samples the scheduler stream sums up.
LAG_WINDOW = 300.0

Publish = Callable[[str, Mapping[str, Any]], object]
#: The job (its stream's name) the current task runs for, None outside a job: log lines say which service.
current_job: ContextVar[str | None] = ContextVar("current_job", default=None)


class Stream(Protocol):
    """What the scheduler runs: a stream's name and its ``collect()`` (see services/base.py)."""

    @property
    def name(self) -> str: ...

    async def collect(self) -> Mapping[str, Any] | None: ...


class JobObserver(Protocol):
    """Told of every finished job run (metrics): the job's name (its stream's), its result (``published``,
    ``nothing_new``, ``done``, ``error``) and how long it took; a run cut short by a cancellation is not told."""

    def job_run(self, name: str, result: str, seconds: float) -> None: ...


#: A periodic job; it may return its result's name ("published", "nothing_new"); None means "done".
Task = Callable[[], Awaitable[str | None]]


@dataclass
class JobStats:
    interval: float
    name: str = ""
    runs: int = 0
    failures: int = 0
    running: bool = False
    last_run: float | None = None
    last_result: str | None = None
    last_duration_ms: float | None = None
    last_error: str | None = None


class Scheduler:
    def __init__(self, publish: Publish, redact: Redactor | None = None,
                 loop_lag: LoopLagSamples | None = None) -> None:
        self._publish = publish
        self._redact = redact or Redactor()  # scrubs the errors the scheduler stream publishes
        self._scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": 30})
        self.stats: dict[str, JobStats] = {}
        self._running: set[asyncio.Task[Any]] = set()  # runs in flight, cancelled by shutdown
        self._cancelled: set[asyncio.Task[Any]] = set()  # runs we cancelled ourselves (shutdown, a lost lease)
        self._stopping = False
        self.observer: JobObserver | None = None
        #: How late the event loop wakes up (the server's sampler; shown in the scheduler stream).
        self.loop_lag = loop_lag

    def add(self, service: Stream, interval: float, first_run_in: float) -> str:
        """The collection job of a service: collect, and publish what it returns, on its interval whatever
        providers do: every provider call of a run ends by :data:`RUN_DEADLINE_SHARE` of the interval (see
        :func:`sources.fetcher.run_deadline`), so the run publishes what it has (stale, or no_data, with each
        provider's reason) instead of waiting out timeouts and retries one after another."""
        return self.add_task(f"{service.name}_collection",
                             functools.partial(self._collect, service, interval * RUN_DEADLINE_SHARE), interval,
                             first_run_in, name=service.name)

    def add_task(self, job_id: str, task: Task, interval: float, first_run_in: float,
                 name: str | None = None) -> str:
        """Any other periodic job (backups, retention): shown in the ``scheduler`` stream like the others."""
        # A job added again (a new lease) keeps its figures.
        self.stats.setdefault(job_id, JobStats(interval, name=name or job_id))
        self._scheduler.add_job(self._run, IntervalTrigger(seconds=interval), args=(job_id, task), id=job_id,
                                name=name or job_id, next_run_time=utc_now() + timedelta(seconds=first_run_in))
        return job_id

    async def _collect(self, service: Stream, deadline: float) -> str:
        with run_deadline(deadline):
            payload = await service.collect()
        if payload is None:
            return "nothing_new"
        published = self._publish(service.name, payload)
        if inspect.isawaitable(published):  # a group of replicas: the update goes through Redis first
            try:
                await published
            except Unpublished as exc:  # Redis away or the lease lost: said once per run, without a traceback
                log.warning("job %s: update not published: %s", service.name, exc)
                return "unpublished"
        return "published"

    async def _run(self, job_id: str, task: Task) -> None:
        stats = self.stats[job_id]
        stats.running, stats.last_run = True, time.time()
        started = time.perf_counter()
        current = asyncio.current_task()
        job = current_job.set(stats.name)
        if current is not None:
            self._running.add(current)
        result: str | None = None  # stays None for a run cut short by a cancellation
        try:
            result = stats.last_result = await task() or "done"
            stats.last_error = None
        except asyncio.CancelledError:
            if not self._stopping and current not in self._cancelled:
                raise
            # Stopped by our own shutdown (a provider call retrying, say): normal, and nothing for the log's
            # ERROR level, where APScheduler would put a re-raised cancellation with its traceback.
            log.info("job %s stopped by the shutdown", job_id)
        except Exception as exc:  # logged and counted, never swallowed silently
            log.exception("job %s failed", job_id)
            stats.failures += 1
            result = stats.last_result = "error"
            stats.last_error = self._redact(f"{type(exc).__name__}: {exc}")
        finally:
            if current is not None:
                self._running.discard(current)
                self._cancelled.discard(current)
            stats.runs += 1
            stats.running = False
            elapsed = time.perf_counter() - started
            stats.last_duration_ms = round(elapsed * 1000, 1)
            log.debug("job %s: %s in %.1f ms", job_id, result or "cancelled", stats.last_duration_ms)
            if result is not None and self.observer is not None:
                self.observer.job_run(stats.name, result, elapsed)
            current_job.reset(job)

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        """No new runs, and the runs in flight are cancelled: none outlives the HTTP client it uses."""
        self._stopping = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        for run in tuple(self._running):
            run.cancel()

    def stop_jobs(self) -> None:
        """Stop polling at once (a replica that lost the leader lease): every job removed, the runs in flight
        cancelled. The scheduler itself keeps running; jobs added again (a new lease) start afresh."""
        self._scheduler.remove_all_jobs()
        for run in tuple(self._running):
            self._cancelled.add(run)
            run.cancel()

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def snapshot(self) -> dict[str, Any]:
        jobs = []
        for job in self._scheduler.get_jobs():
            stats = self.stats.get(job.id)
            paused = job.next_run_time is None
            jobs.append(JobView(
                id=job.id,
                next_run=iso(job.next_run_time) if job.next_run_time else None,
                status="running" if stats and stats.running else "paused" if paused else "scheduled",
                interval_seconds=stats.interval if stats else None,
                last_run=iso(stats.last_run) if stats else None,
                last_result=stats.last_result if stats else None,
                last_duration_ms=stats.last_duration_ms if stats else None,
                last_error=stats.last_error if stats else None,
                runs=stats.runs if stats else 0,
                failures=stats.failures if stats else 0,
            ))
        return SchedulerPayload(
            running=self.running,
            total_jobs=len(jobs),
            active_jobs=sum(job.status == "running" for job in jobs),
            jobs=jobs,
            timestamp=now_iso(),
            loop_lag_ms=lag_summary(self.loop_lag),
        ).model_dump(mode="json")


def lag_summary(samples: LoopLagSamples | None, seconds: float = LAG_WINDOW) -> dict[str, float] | None:
    """``p50``, ``p99`` and ``max`` lag in milliseconds over the last ``seconds``, and how many samples they come
    from; None without any."""
    ordered = sorted(samples.recent(seconds)) if samples is not None else []
    if not ordered:
        return None
    return {"p50": round(percentile(ordered, 0.5) * 1000, 2), "p99": round(percentile(ordered, 0.99) * 1000, 2),
            "max": round(ordered[-1] * 1000, 2), "samples": float(len(ordered))}
