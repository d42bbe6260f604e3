"""``GET /metrics``: the server's figures in the Prometheus text format, from prometheus-client.

Each app has a registry of its own (tests build several apps in one process; the global default registry would
mix them). Two kinds of figures, so that none costs anything on the fan-out path:

- read at scrape time from state the parts keep anyway: the WebSocket side (ws/metrics.py, registered by
  app.py), each provider's circuit breaker and health, the store's counts and queue, the process;
- recorded as they happen only where events are slow already (a provider call, a job run, a store batch, a
  sentiment batch): :class:`Metrics` is the observer the fetcher, the scheduler, the store and the sentiment
  runner tell (their ``observer`` attribute; each declares the Protocol it needs, so the data side never
  imports this module).

Plus the event loop's lag: every sample of the server's one sampler (models/loop_lag.py), as a histogram.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from inference.runner import SentimentRunner
from models.loop_lag import PERIOD, LoopLagSamples
from models.states import HealthStatus
from sources.fetcher import Fetcher
from sources.limits import BreakerState
from storage.history import Store

PREFIX = "crypto_monitor_"
#: Seconds: provider calls (a timeout is 10 s by default), job runs, store batches, sentiment batches, loop lag.
CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class DataCollector(Collector):
    """Providers' circuit breakers and health, and the store's counts, read at scrape time."""

    def __init__(self, fetcher: Fetcher, store: Store) -> None:
        self.fetcher = fetcher
        self.store = store

    def collect(self) -> Iterator[Metric]:
        yield from self._providers()
        yield from self._store()

    def _providers(self) -> Iterator[Metric]:
        circuit = GaugeMetricFamily(PREFIX + "provider_circuit_state",
                                    "Each provider's circuit breaker: 1 for the state it is in (closed: calls go "
                                    "out; open: none, after repeated failures; half_open: one trial call)",
                                    labels=["provider", "state"])
        healthy = GaugeMetricFamily(PREFIX + "provider_healthy",
                                    "1 when the provider answered its last call (slow included), 0 when it "
                                    "failed, is rate limited, has its circuit open or was never checked; "
                                    "providers disabled for want of a key are left out", labels=["provider"])
        now = self.fetcher.now()
        for provider_id, runtime in sorted(self.fetcher.runtimes.items()):
            for state in BreakerState:
                circuit.add_metric([provider_id, state.value], 1.0 if runtime.breaker.state is state else 0.0)
            status, _ = runtime.status(now)
            if status is not HealthStatus.DISABLED:
                healthy.add_metric([provider_id], 1.0 if status is HealthStatus.HEALTHY else 0.0)
        yield circuit
        yield healthy

    def _store(self) -> Iterator[Metric]:
        stats = self.store.stats
        yield CounterMetricFamily(PREFIX + "store_rows_written", "Updates written to the history database "
                                  "since start", value=stats.written)
        yield CounterMetricFamily(PREFIX + "store_dropped", "Updates not stored because the writer thread was "
                                  "gone", value=stats.dropped)
        yield GaugeMetricFamily(PREFIX + "store_pending", "Updates waiting for the writer thread",
                                value=self.store.pending)
        yield GaugeMetricFamily(PREFIX + "store_size_bytes", "Size of the history database with its WAL",
                                value=stats.size_bytes())
        if stats.last_save is not None:
            yield GaugeMetricFamily(PREFIX + "store_last_save_timestamp_seconds",
                                    "When the writer last committed a batch (Unix time)", value=stats.last_save)


class Metrics:
    """One server's registry, the observer of its slow events, and a reader of the event loop's lag."""

    def __init__(self, fetcher: Fetcher, store: Store, runner: SentimentRunner,
                 intervals: Mapping[str, float], loop_lag: LoopLagSamples) -> None:
        """``intervals``: each service's job interval in seconds (after INTERVAL_SCALE), for staleness alerts;
        ``loop_lag``: the server's event-loop lag sampler, whose every sample the lag histogram counts."""
        self.registry = registry = CollectorRegistry()
        # The process (CPU, RSS, open files), Python's GC and version: what any Python exporter shows.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)
        registry.register(DataCollector(fetcher, store))
        self._requests = Counter(
            PREFIX + "provider_requests", "Provider calls by outcome: ok or the error's kind (timeout, "
            "unavailable, rate_limited, bad_response) for a call that went out; skipped_<why> for one held back "
            "(circuit_open, rate_limited: cooling down, budget: our own budget spent, missing_api_key)",
            ["provider", "outcome"], registry=registry)
        self._request_seconds = Histogram(
            PREFIX + "provider_request_duration_seconds", "Time a provider took to answer (or fail), per attempt",
            ["provider"], buckets=CALL_BUCKETS, registry=registry)
        self._job_seconds = Histogram(
            PREFIX + "job_duration_seconds", "Duration of each scheduled job run, by service and result "
            "(published, nothing_new, done, error)", ["service", "result"], buckets=JOB_BUCKETS, registry=registry)
        interval = Gauge(PREFIX + "job_interval_seconds", "Each service's collection interval (after "
                         "INTERVAL_SCALE): compare the last success's age with it", ["service"], registry=registry)
        for service, seconds in intervals.items():
            interval.labels(service).set(seconds)
        self._job_success = Gauge(
            PREFIX + "job_last_success_timestamp_seconds", "When each service's job last ran without an error "
            "(Unix time)", ["service"], registry=registry)
        self._store_seconds = Histogram(
            PREFIX + "store_batch_duration_seconds", "Time to write one batch of updates to the history database, "
            "by outcome (ok, error)", ["outcome"], buckets=FAST_BUCKETS, registry=registry)
        self._inference_texts = Counter(
            PREFIX + "sentiment_texts", "Texts scored by the sentiment runner (cache hits not counted), by the "
            "backend that answered (a model id, or vader)", ["backend"], registry=registry)
        self._inference_seconds = Histogram(
            PREFIX + "sentiment_batch_duration_seconds", "Time to score one batch of texts, by backend",
            ["backend"], buckets=FAST_BUCKETS, registry=registry)
        loop_lag_seconds = Histogram(
            PREFIX + "event_loop_lag_seconds", f"How late the event loop ran a callback due every {PERIOD} s: "
            "time the loop spent on other work without yielding", buckets=FAST_BUCKETS,
            registry=registry)
        loop_lag.watch(loop_lag_seconds.observe)
        fetcher.observer = store.observer = runner.observer = self

    # -- the observers' side (sources.fetcher.RequestObserver, services.jobs.JobObserver, ...) ------------
    def provider_request(self, provider: str, outcome: str, seconds: float | None) -> None:
        self._requests.labels(provider, outcome).inc()
        if seconds is not None:
            self._request_seconds.labels(provider).observe(seconds)

    def job_run(self, name: str, result: str, seconds: float) -> None:
        self._job_seconds.labels(name, result).observe(seconds)
        if result != "error":
            self._job_success.labels(name).set(time.time())

    def store_batch(self, rows: int, seconds: float, ok: bool) -> None:
        self._store_seconds.labels("ok" if ok else "error").observe(seconds)

    def inference(self, backend: str, texts: int, seconds: float) -> None:
        self._inference_texts.labels(backend).inc(texts)
        self._inference_seconds.labels(backend).observe(seconds)


def build_metrics_router(registry: CollectorRegistry) -> APIRouter:
    router = APIRouter()

    # Left out of the OpenAPI document: it is for Prometheus, not for API clients. Answered on the event loop,
    # never in a thread: the collectors read dicts the loop changes.
    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        encode, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(registry), media_type=content_type)

    return router
