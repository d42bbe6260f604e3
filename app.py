"""Crypto API Monitor: FastAPI (WebSocket + REST) with the Gradio dashboard mounted at ``/``, on one port.

The one composition root: settings -> HTTP client, fetcher, streams (each module's ``build``), scheduler -> hub ->
connections, REST and UI. Every resource is opened and closed by the lifespan.
"""

from __future__ import annotations

import os

# Before gradio / huggingface_hub are imported: no usage analytics from a monitoring server.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import asyncio
import functools
import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import gradio as gr
import httpx
import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

import logs
from api.contracts import build_contracts_router
from api.health import build_health_router
from api.history import build_history_router
from api.latest import build_latest_router
from api.limits import BodyLimit
from api.methods import MethodNotAllowed
from api.metrics import Metrics, build_metrics_router
from api.providers import build_providers_router
from api.sentiment import build_sentiment_router
from config import Settings, describe_error
from inference.runner import SentimentRunner
from models.catalog import API_VERSION, SERVICE_NAMES, scaled_intervals
from services import (
    explorers,
    health_checker,
    huggingface,
    market_data,
    news,
    onchain,
    persistence,
    pool_manager,
    rpc_nodes,
    scheduler,
    sentiment,
    whale_tracking,
)
from services.base import BuildContext, Service
from services.jobs import Scheduler, current_job
from sources.fetcher import Fetcher
from sources.http import http_client
from storage.dataset_backup import DatasetBackup
from storage.dataset_backup import from_settings as dataset_backup_from_settings
from storage.history import Store
from ui.dashboard import CSS, HEAD, THEME, build_ui
from ws.fanout import Fanout, MemoryFanout
from ws.hub import Hub
from ws.loop_lag import LoopLag
from ws.manager import ConnectionManager, Limits
from ws.memory import trimming, tune_allocator
from ws.metrics import WebSocketCollector
from ws.redis_fanout import RedisFanout
from ws.routes import WebSocketFastPath, build_router, websocket_handlers
from ws.uvicorn_protocol import HttpProtocol, WebSocketProtocol

log = logging.getLogger("app")
GRACEFUL_SHUTDOWN_SECONDS = 5
#: The cyclic collector's thresholds while serving (CPython's default: 700, 10, 10). A full pass stops the loop for
#: as long as it takes to scan every object, ~100 per connection: 0.1-0.6 s at 5,000. By default, young passes come
#: every 700 allocations and a full one every 100 of them (and once the heap grew by a quarter), so a reconnect storm
#: ran 20-30 full passes, and /healthz (asked every 50 ms) met them at p99. With young passes every 50,000
#: allocations (a few ms each) a storm meets one or two full passes; a full pass still comes every 10 million
#: allocations at the latest, so cyclic garbage does not pile up.
GC_THRESHOLDS = (50_000, 20, 10)
#: How often the C heap's free pages are handed back to the system (ws/memory.py).
MALLOC_TRIM_SECONDS = 60.0

#: The data streams in order of their first runs, then the monitoring streams (pool_manager last: it shows
#: every pool the others declared).
DATA_STREAMS: tuple[Callable[[BuildContext], list[Service]], ...] = (
    market_data.build, explorers.build, news.build, sentiment.build, huggingface.build, whale_tracking.build,
    rpc_nodes.build, onchain.build, persistence.build)
MONITORING_STREAMS: tuple[Callable[[BuildContext], list[Service]], ...] = (
    health_checker.build, scheduler.build, pool_manager.build)


def build_streams(ctx: BuildContext) -> tuple[list[Service], list[Service]]:
    """Every stream, from the settings and resources in ``ctx``: the data streams and the monitoring ones."""
    data = [stream for build in DATA_STREAMS for stream in build(ctx)]
    monitoring = [stream for build in MONITORING_STREAMS for stream in build(ctx)]
    return data, monitoring


def schedule(jobs: Scheduler, data: list[Service], monitoring: list[Service], intervals: dict[str, float]) -> None:
    """Staggered first runs, so a start-up does not hit every provider at once; monitoring once answers are in."""
    for i, stream in enumerate(data):
        jobs.add(stream, intervals[stream.name], first_run_in=0.2 + i * 0.8)
    start = 0.5 + len(data) * 0.8
    for i, stream in enumerate(monitoring):
        jobs.add(stream, intervals[stream.name], first_run_in=start + i * 0.5)


def build_fanout(settings: Settings, hub: Hub) -> Fanout:
    """In memory (one process) unless REDIS_URL names a Redis for a group of replicas."""
    if settings.redis_url is None:
        return MemoryFanout(hub, settings.replica_id)
    return RedisFanout(hub, settings.redis_url.get_secret_value(), SERVICE_NAMES, prefix=settings.redis_prefix,
                       lease_ttl=settings.leader_ttl, maxlen=settings.stream_maxlen, replica=settings.replica_id)


def create_app(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """The whole server. ``transport`` replaces the network (tests); otherwise DATA_SOURCE decides."""
    hub = Hub(ring=settings.resume_max_updates)
    # The one event-loop lag sampler (started by the lifespan), read by the scheduler stream, /ws/runtime, /metrics.
    loop_lag = LoopLag()
    fanout = build_fanout(settings, hub)
    manager = ConnectionManager(hub, Limits(
        max_message_bytes=settings.ws_max_message_bytes,
        max_messages_per_second=settings.ws_max_messages_per_second,
        send_queue=settings.ws_send_queue,
        resume_max=settings.resume_max_updates,
    ), replica=fanout.replica, loop_lag=loop_lag)
    intervals = scaled_intervals(settings.interval_scale)
    # Each mode its own history file: replayed updates never enter the live history (nor its Hub backup).
    store = Store.for_mode(settings.data_dir, settings.data_source, retention_days=settings.retention_days,
                           retention_per_service=settings.retention_per_service)
    # None unless HF_TOKEN and HF_BACKUP_REPO are set, and in replay mode: only live history is backed up.
    backup = dataset_backup_from_settings(settings, store.path)
    runner = SentimentRunner(settings)  # nothing loads until the lifespan enters it
    http = http_client(settings, transport)  # opened and closed by the lifespan
    fetcher = Fetcher(http, retries=settings.http_retries, timeout=settings.http_timeout,
                      budgets=settings.data_source == "live", redact=settings.redactor(),
                      cooldown_scale=min(1.0, settings.interval_scale), replay=settings.data_source == "replay")
    jobs = Scheduler(fanout.publish, redact=settings.redactor(), loop_lag=loop_lag)
    ctx = BuildContext(settings, fetcher, intervals, latest=hub, scheduler=jobs, sentiment=runner, store=store,
                       backup=backup)
    data_streams, monitoring_streams = build_streams(ctx)
    # /metrics: its own registry per app; observes the fetcher, store and runner (and the scheduler, below).
    metrics = Metrics(fetcher, store, runner, intervals, loop_lag)
    jobs.observer = metrics
    metrics.registry.register(WebSocketCollector(manager))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if backup is not None:
                # Before the store opens the file: a Space without persistent storage gets its history back.
                await backup.restore_if_needed()
                # Registered before the store, so it runs after the store has flushed and closed.
                stack.push_async_callback(final_backup, backup)
            await stack.enter_async_context(store)
            # Before any poll or client: the numbering's epoch is the history's (a lost history, a new one), the
            # last updates stored go back into the resume ring, each service's last stored update becomes its
            # snapshot, and seq continues.
            hub.epoch = await asyncio.to_thread(store.epoch)
            hub.backfill(await asyncio.to_thread(store.recent, settings.resume_max_updates, hub.epoch))
            for message in await asyncio.to_thread(store.latest_per_service):
                hub.restore(message["service"], message["seq"], message["timestamp"], message["data"])
            for service, seq in (await asyncio.to_thread(store.max_seq_per_service)).items():
                hub.continue_from(service, seq)  # even where the newest row could not be read back
            hub.add_listener(store.append)
            stack.callback(hub.remove_listener, store.append)
            # The model loads in the background; VADER answers meanwhile. Entered before the scheduler, so it
            # closes after it.
            await stack.enter_async_context(runner)
            await stack.enter_async_context(http)
            stack.enter_context(loop_lag)
            jobs.start()
            stack.callback(jobs.shutdown)

            def lead() -> None:  # this process polls: alone, or as the group's leader
                schedule(jobs, data_streams, monitoring_streams, intervals)
                if backup is not None:
                    jobs.add_task("hf_backup", backup.upload, backup.interval, first_run_in=min(backup.interval, 600))

            fanout.on_role(lead, jobs.stop_jobs)
            await stack.enter_async_context(fanout)  # a follower never polls; a leader stops when its lease ends
            # Everything built so far (Gradio, models, ...) lives as long as the process: keep it out of the
            # cyclic collector's full passes, which otherwise stall every client now and then.
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
            await stack.enter_async_context(trimming(MALLOC_TRIM_SECONDS))  # see ws/memory.py
            # The model loader imports transformers and torch in the background: freeze what that brings too.
            refreeze = asyncio.create_task(freeze_after(runner.loaded))
            stack.push_async_callback(cancel_and_wait, refreeze)
            log.info("serving %s data on %s:%d", settings.data_source, settings.host, settings.port)
            yield

    app = WebSocketFastPath(title="Crypto API Monitor", version=API_VERSION, lifespan=lifespan,
                            openapi_url=None, docs_url=None, redoc_url=None,  # served by api/contracts.py, off the loop
                            description="Live crypto data from free public providers over WebSocket and REST. "
                                        "WebSocket endpoints are listed at /ws/endpoints, and described (AsyncAPI) at "
                                        "/asyncapi.json and /asyncapi.")
    app.state.settings = settings
    app.state.hub = hub
    app.state.manager = manager
    app.state.store = store
    app.state.sentiment = runner
    app.state.scheduler = jobs
    app.state.metrics = metrics
    app.state.fanout = fanout

    # Every text at its longest in UTF-8, plus room for the JSON around them.
    app.add_middleware(BodyLimit, max_bytes=settings.sentiment_max_texts * settings.sentiment_max_chars * 4 + 65536)
    app.include_router(build_health_router(settings.data_source, lambda: manager.count,
                                           lambda: {**fanout.describe(), "provider_calls": fetcher.calls},
                                           store.write_brief))
    app.include_router(build_metrics_router(metrics.registry))
    app.include_router(build_history_router(store))
    app.include_router(build_providers_router(fetcher))
    app.include_router(build_sentiment_router(runner, settings))
    app.websocket_paths = websocket_handlers(manager)  # one handler per path, for the router and the fast path
    app.include_router(build_router(manager, intervals, app.websocket_paths))
    app.include_router(build_latest_router(hub))
    app.include_router(build_contracts_router(app.openapi, app.title))
    app.router.routes.append(MethodNotAllowed(lambda: app.routes))  # 405 for a documented path, not Gradio's 404
    # Gradio last: it is mounted at "/", and Starlette matches routes in order.
    gr.mount_gradio_app(app, build_ui(hub, manager.summary, store=store, runner=runner), path="/",
                        footer_links=["api"], theme=THEME, css=CSS, head=HEAD)
    return app


async def freeze_after(event: asyncio.Event) -> None:
    """Once ``event`` is set, keep what exists then out of the collector's full passes too.

    Without this, the ~180,000 objects of the modules the model loader imports after start-up were scanned by
    every full pass (0.4-0.7 s each on the 2-core machine, with the loop stopped): a reconnect storm, which makes
    such passes frequent, took twice as long as on a bare server and ``/healthz`` answered in up to 0.9 s."""
    await event.wait()
    gc.collect()
    gc.freeze()


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def final_backup(backup: DatasetBackup) -> None:
    """One last upload at shutdown, so a restart loses nothing; bounded, as the platform will not wait long."""
    try:
        await asyncio.wait_for(backup.upload(), 20)
    except Exception as error:  # already scrubbed of the token; shutdown goes on
        log.warning("final Hub backup failed: %s", error)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        print(describe_error(error), file=sys.stderr)
        raise SystemExit(2) from None


def main() -> None:
    tune_allocator()  # see ws/memory.py
    settings = load_settings()
    # Every logger (uvicorn's too: log_config=None below) through one handler, text or JSON, scrubbed of secrets.
    logs.configure(settings.log_level, settings.log_format, settings.redactor(),
                   context=lambda: {"service": current_job.get()})
    uvicorn.run(
        functools.partial(create_app, settings),
        factory=True,  # built inside the server's event loop
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # logs.configure did it
        ws_max_size=settings.ws_max_message_bytes,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        ws_ping_interval=settings.ws_ping_interval,
        ws_ping_timeout=settings.ws_ping_interval,
        proxy_headers=True,
        forwarded_allow_ips="*",
        ws=WebSocketProtocol,  # drops the sockets of peers that stopped reading; see ws/uvicorn_protocol.py
        http=HttpProtocol,  # WebSocket handshakes in turns, so that a storm of them leaves room for the rest
        # Connections still open after this long no longer hold up the lifespan's end (store flush, backup).
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


if __name__ == "__main__":
    main()
