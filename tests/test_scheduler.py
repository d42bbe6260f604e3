"""The scheduler's bookkeeping: results, failures and their texts as the ``scheduler`` stream shows them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from config import Redactor
from models.messages import Unpublished
from services.jobs import Scheduler


async def ran_once(scheduler: Scheduler, *job_ids: str, timeout: float = 10.0) -> None:
    """Wait until every job has finished a run (polling; a bound, not a pace)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not all(scheduler.stats[job_id].runs for job_id in job_ids):
        assert loop.time() < deadline, "the jobs did not run in time"
        await asyncio.sleep(0.01)


async def test_a_failing_job_is_counted_and_its_error_never_shows_a_secret() -> None:
    published: list[tuple[str, Any]] = []
    scheduler = Scheduler(lambda service, data: published.append((service, data)), redact=Redactor(["s3cr3t-key"]))

    async def failing() -> str | None:
        raise RuntimeError("provider said: bad key s3cr3t-key")

    async def fine() -> str | None:
        return None

    # Both due at once, then not for a minute: started, the scheduler runs each exactly once.
    scheduler.add_task("failing", failing, 60, first_run_in=0)
    scheduler.add_task("fine", fine, 60, first_run_in=0)
    scheduler.start()
    try:
        await ran_once(scheduler, "failing", "fine")
    finally:
        scheduler.shutdown()
    failed, done = scheduler.stats["failing"], scheduler.stats["fine"]
    assert (failed.runs, failed.failures, failed.last_result) == (1, 1, "error")
    assert failed.last_error == "RuntimeError: provider said: bad key ***"
    assert (done.last_result, done.last_error, done.failures) == ("done", None, 0)
    assert done.last_duration_ms is not None and not published


async def test_a_run_cut_short_by_the_shutdown_logs_no_error(caplog: pytest.LogCaptureFixture) -> None:
    scheduler = Scheduler(lambda service, data: None)
    started = asyncio.Event()

    async def retrying() -> str | None:  # a provider call in its backoff sleep
        started.set()
        await asyncio.sleep(3600)
        return None

    scheduler.add_task("market_data_collection", retrying, 60, first_run_in=0)
    with caplog.at_level(logging.INFO):
        scheduler.start()
        await asyncio.wait_for(started.wait(), 10)
        scheduler.shutdown()
        await ran_once(scheduler, "market_data_collection")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "stopped by the shutdown" in caplog.text
    assert scheduler.stats["market_data_collection"].failures == 0


async def test_an_update_redis_could_not_take_is_a_warning_not_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """With replicas, publishing goes through Redis: Redis away (or the lease lost) is not the stream's fault."""

    async def publish(service: str, data: Any) -> None:
        raise Unpublished("Redis unreachable: ConnectionError: Connection refused")

    class Stream:
        name = "market_data"

        async def collect(self) -> dict[str, Any] | None:
            return {"coins": []}

    scheduler = Scheduler(publish)
    scheduler.add(Stream(), 60, first_run_in=0)
    scheduler.start()
    try:
        with caplog.at_level(logging.INFO):
            await ran_once(scheduler, "market_data_collection")
    finally:
        scheduler.shutdown()
    stats = scheduler.stats["market_data_collection"]
    assert (stats.last_result, stats.failures) == ("unpublished", 0)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert any("not published" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
