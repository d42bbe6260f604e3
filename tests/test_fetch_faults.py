"""Providers misbehaving (issue 13): an unreadable 2xx is a failure, every redirect hop is charged, an answer is
bounded in size and in total time, and a collection run ends at its deadline with each provider's reason."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from services.health_checker import HealthCheckerService
from services.jobs import Scheduler
from sources.errors import ProviderBadResponse, ProviderRateLimited, ProviderTimeout
from sources.fetcher import MAX_REDIRECTS, Fetcher, Provider, run_deadline
from sources.limits import BreakerState, Rate
from sources.pools import Pool
from tests.support.providers import Example, Other, fetcher_for

SHAPE = {"items": [{"value": 4242.4242}]}  # valid JSON, but not what the provider sends


async def read_price(fetcher: Fetcher, provider: Provider) -> float:
    raw = await fetcher.get_json(provider, "/price")
    return float(raw["price"])


UNREADABLE = {
    "html": lambda: httpx.Response(200, text="<html><body>Just a moment...</body></html>",
                                   headers={"content-type": "text/html"}),
    "truncated": lambda: httpx.Response(200, content=b'{"price": 123.', headers={"content-type": "application/json"}),
    "other_shape": lambda: httpx.Response(200, json=SHAPE),
    "wrong_type": lambda: httpx.Response(200, content=b'{"price": 1}', headers={"content-type": "text/html"}),
}


@pytest.mark.parametrize("fault", sorted(UNREADABLE))
async def test_an_unreadable_2xx_counts_as_a_failure_and_opens_the_breaker(fault: str) -> None:
    fetcher = fetcher_for(lambda r: UNREADABLE[fault](), retries=0)
    pool: Pool[Example] = Pool("market", [Example()], fetcher)
    for _ in range(3):  # the breaker's threshold
        result = await pool.fetch(lambda p: read_price(fetcher, p))
        assert not result.ok and result.sources["example"].status == "error"
    runtime = fetcher.runtime("example")
    assert runtime.health.consecutive_failures == 3 and runtime.health.last_success is None
    assert runtime.breaker.state is BreakerState.OPEN


async def test_a_readable_answer_after_failures_closes_the_breaker_again() -> None:
    answers = iter([UNREADABLE["html"]()] * 3 + [httpx.Response(200, json={"price": 1.5})])
    fetcher = fetcher_for(lambda r: next(answers), retries=0)
    pool: Pool[Example] = Pool("market", [Example()], fetcher)
    for _ in range(3):
        await pool.fetch(lambda p: read_price(fetcher, p))
    runtime = fetcher.runtime("example")
    assert runtime.breaker.state is BreakerState.OPEN
    runtime.breaker.opened_at -= runtime.breaker.cooldown  # its cool-down is over: one trial goes through
    result = await pool.fetch(lambda p: read_price(fetcher, p))
    assert result.value == 1.5 and runtime.breaker.state is BreakerState.CLOSED
    assert runtime.health.consecutive_failures == 0


@pytest.mark.parametrize("fault", sorted(UNREADABLE))
async def test_the_default_probe_reads_its_answer(fault: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return UNREADABLE[fault]() if request.url.host == "api.example.test" else httpx.Response(200, json={"price": 2})

    class Priced(Example):  # its probe's answer must carry a price
        probe_keys = ("price",)

    fetcher = fetcher_for(handler)
    for provider in (Priced(), Other()):
        fetcher.register(provider)
    payload = await HealthCheckerService(fetcher, interval=30, data_source="live").collect()
    assert payload["providers"]["example"]["status"] == "unhealthy"
    assert payload["providers"]["example"]["error"]
    assert payload["providers"]["other"]["status"] == "healthy"


async def test_every_redirect_hop_is_a_request_charged_to_the_budget() -> None:
    seen: list[str] = []

    def loop(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        back = "/price" if "again" in str(request.url) else "/price?again=1"
        return httpx.Response(302, headers={"location": back})

    fetcher = fetcher_for(loop, retries=0)
    provider = Example()
    runtime = fetcher.register(provider)
    before = runtime.bucket.tokens
    with pytest.raises(ProviderBadResponse, match="redirects"):
        await fetcher.get_json(provider, "/price")
    assert len(seen) == 1 + MAX_REDIRECTS == runtime.health.requests
    assert before - runtime.bucket.tokens == pytest.approx(len(seen), abs=0.5)  # each hop took a token


async def test_a_redirect_past_the_budget_is_not_followed() -> None:
    seen: list[str] = []

    def redirect(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(301, headers={"location": f"/hop{len(seen)}"})

    class Tight(Example):
        rate = Rate(1, 3600, burst=2)

    fetcher = fetcher_for(redirect, retries=0)
    with pytest.raises(ProviderRateLimited) as caught:
        await fetcher.get_json(Tight(), "/price")
    assert caught.value.ours and len(seen) == 2  # the first request and one hop: two tokens


async def test_a_redirect_to_an_answer_is_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/old":
            return httpx.Response(308, headers={"location": "https://api.example.test/new"})
        return httpx.Response(200, json={"price": 3})

    fetcher = fetcher_for(handler)
    provider = Example()
    assert (await fetcher.get_json(provider, "/old")) == {"price": 3}


class Endless(httpx.AsyncByteStream):
    """A body that never ends: ``chunk`` bytes every ``pause`` seconds; counts what it sent."""

    def __init__(self, chunk: bytes, pause: float = 0.0) -> None:
        self.chunk = chunk
        self.pause = pause
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            if self.pause:
                await asyncio.sleep(self.pause)
            self.sent += len(self.chunk)
            yield self.chunk


async def test_a_huge_body_is_read_only_up_to_the_limit() -> None:
    stream = Endless(b"[" + b"1," * 32767)  # 64 KiB a chunk, for ever (a 20 MB answer and more)
    fetcher = fetcher_for(lambda r: httpx.Response(200, stream=stream, headers={"content-type": "application/json"}),
                          retries=0)
    with pytest.raises(ProviderBadResponse, match="limit"):
        await fetcher.get_json(Example(), "/price")
    assert Example.max_body_bytes < stream.sent <= Example.max_body_bytes + 2 * 65536


async def test_a_declared_huge_body_is_not_read_at_all() -> None:
    stream = Endless(b" " * 65536)
    fetcher = fetcher_for(lambda r: httpx.Response(200, stream=stream, headers={"content-length": str(20 * 2**20)}),
                          retries=0)
    with pytest.raises(ProviderBadResponse, match="over our limit"):
        await fetcher.get_json(Example(), "/price")
    assert stream.sent == 0


async def test_a_dripping_body_is_cut_off_by_the_total_timeout() -> None:
    class Quick(Example):
        timeout = 0.3  # per attempt, for the whole answer; each read is far quicker than that

    stream = Endless(b" ", pause=0.01)
    fetcher = fetcher_for(lambda r: httpx.Response(200, stream=stream), retries=0)
    with pytest.raises(ProviderTimeout, match="no complete answer"):
        await asyncio.wait_for(fetcher.get_json(Quick(), "/price"), 30)
    assert fetcher.runtime("example").health.error_kind == "timeout"


@pytest.mark.parametrize(("headers", "cooldown"), [({"retry-after": "7"}, 7.0), ({}, Fetcher.DEFAULT_COOLDOWN)])
async def test_429_with_or_without_retry_after_cools_the_provider_down(headers: dict[str, str],
                                                                       cooldown: float) -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(429, headers=headers)

    fetcher = fetcher_for(handler, retries=2)
    with pytest.raises(ProviderRateLimited) as caught:
        await fetcher.get_json(Example(), "/price")
    assert caught.value.retry_after == cooldown and len(calls) == 1  # not retried
    with pytest.raises(ProviderRateLimited, match="cooling down"):
        await fetcher.get_json(Example(), "/price")
    assert len(calls) == 1  # nor asked again during the cool-down


async def hang(request: httpx.Request) -> httpx.Response:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def test_a_collection_run_ends_at_its_deadline_with_each_providers_reason() -> None:
    fetcher = fetcher_for(hang, retries=2, timeout=60)
    pool: Pool[Example] = Pool("market", [Example(), Other()], fetcher)

    async def run() -> Any:
        with run_deadline(0.3):
            return await pool.fetch(lambda p: read_price(fetcher, p))

    result = await asyncio.wait_for(run(), 30)  # not 2 providers x 3 attempts x 60 s
    assert not result.ok
    assert "deadline" in (result.sources["example"].error or "")
    assert "not asked" in (result.sources["other"].error or "")
    assert fetcher.runtime("example").health.error_kind == "timeout"  # cut off: a failure of that provider
    assert fetcher.runtime("other").health.requests == 0


async def test_the_scheduler_gives_each_run_a_deadline_within_its_interval() -> None:
    published: list[tuple[str, Any]] = []
    fetcher = fetcher_for(hang, timeout=60)
    pool: Pool[Example] = Pool("market", [Example()], fetcher)

    class Stream:
        name = "market_data"

        async def collect(self) -> dict[str, Any]:
            result = await pool.fetch(lambda p: read_price(fetcher, p))
            return {"status": "ok" if result.ok else "no_data", "why": result.sources["example"].error}

    jobs = Scheduler(lambda service, data: published.append((service, data)))
    await asyncio.wait_for(jobs._collect(Stream(), 0.3), 30)
    assert published == [("market_data", {"status": "no_data",
                                          "why": "no answer before the collection run's deadline"})]


class Frugal(Example):
    """A provider with a budget of one call a minute (as Blockchair's keyless one)."""

    id = "frugal"
    base_url = "https://api.frugal.test"
    rate = Rate(1, 60, burst=1)


async def test_a_stalled_pool_trials_its_open_circuits_and_is_back_within_two_runs() -> None:
    """Every provider behind an open circuit, and the only other one with our budget for it spent: every other
    run, the pool gives each open circuit a trial, in its order, so the one that is back answers by the second run
    even when one before it is still down. Nobody waits out a breaker's cool-down."""
    clock = [1000.0]
    back: set[str] = set()

    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == "api.frugal.test" or host.removeprefix("api.").removesuffix(".test") in back:
            return httpx.Response(200, json={"price": 7.0})
        return httpx.Response(503, text="down")

    fetcher = fetcher_for(handler, retries=0, clock=lambda: clock[0])
    pool: Pool[Provider] = Pool("market", [Example(), Other(), Frugal()], fetcher)
    # the other two fail once, then "frugal" makes its one call this minute
    assert (await pool.fetch(lambda p: read_price(fetcher, p))).source == "frugal"
    for _ in range(2):  # two more failures each: their circuits open (the threshold is 3)
        result = await pool.fetch(lambda p: read_price(fetcher, p))
        assert result.sources["frugal"].status == "waiting"
    assert {fetcher.runtime(p).breaker.state for p in ("example", "other")} == {BreakerState.OPEN}
    assert not (await pool.fetch(lambda p: read_price(fetcher, p))).ok  # stalled: the breakers just opened
    back.add("other")  # "example" (the soonest due: it opened first) is still down
    clock[0] += 1
    result = await pool.fetch(lambda p: read_price(fetcher, p))
    assert result.source == "other" and fetcher.runtime("other").breaker.state is BreakerState.CLOSED
    assert result.sources["example"].status == "error"  # tried first, and still down: open again
    assert fetcher.runtime("example").breaker.state is BreakerState.OPEN


def always_down(calls: list[str]) -> Callable[[httpx.Request], httpx.Response]:
    """A provider that answers every request with a 503, each request's path noted in ``calls``."""

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(503, text="down")

    return handler


async def test_a_lone_dead_provider_is_trialled_every_other_run() -> None:
    calls: list[str] = []
    handler = always_down(calls)
    clock = [1000.0]
    fetcher = fetcher_for(handler, retries=0, clock=lambda: clock[0])
    pool: Pool[Example] = Pool("market", [Example()], fetcher)
    for _ in range(3):
        await pool.fetch(lambda p: read_price(fetcher, p))
    assert fetcher.runtime("example").breaker.state is BreakerState.OPEN and len(calls) == 3
    for _ in range(6):
        clock[0] += 1
        await pool.fetch(lambda p: read_price(fetcher, p))
    assert len(calls) == 3 + 3


async def test_in_collection_runs_a_stalled_pool_trials_each_circuit_in_the_run_after_it_opened() -> None:
    """In collection runs (the scheduler's) a stalled pool gives every open circuit its trial in the first run
    after the one it opened in, whatever its cool-down: a stream is ``ok`` again in its first run after its
    provider's return (within two intervals of the faults' end, however the runs fell), and a dead provider costs
    one request a run, what it costs when it works. A second call in the same run makes no second trial."""
    calls: list[str] = []
    down = True

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        return httpx.Response(503, text="down") if down else httpx.Response(200, json={"price": 4.0})

    fetcher = fetcher_for(handler, retries=0, clock=lambda: 1000.0)  # no cool-down ever ends
    pool: Pool[Provider] = Pool("market", [Example(), Other()], fetcher, every=5.0)

    async def run(calls_in_run: int = 1) -> Any:
        with run_deadline(4.0):
            results = [await pool.fetch(lambda p: read_price(fetcher, p)) for _ in range(calls_in_run)]
        return results[0]

    for _ in range(3):  # three failures each: both circuits open
        assert not (await run()).ok
    assert {fetcher.runtime(p.id).breaker.state for p in pool.providers} == {BreakerState.OPEN}
    assert len(calls) == 6
    assert not (await run(calls_in_run=2)).ok  # both trialled once (at once), both still down
    assert len(calls) == 8
    down = False
    result = await run()
    assert result.source == "example" and fetcher.runtime("example").breaker.state is BreakerState.CLOSED


async def test_a_trial_not_used_leaves_its_breaker_open() -> None:
    down = True
    clock = [1000.0]
    fetcher = fetcher_for(lambda r: httpx.Response(503) if down else httpx.Response(200, json={"price": 3.0}),
                          retries=0, clock=lambda: clock[0])
    pool: Pool[Provider] = Pool("market", [Example(), Other()], fetcher)
    for _ in range(4):  # three failures each, then the first stalled call (which waits)
        await pool.fetch(lambda p: read_price(fetcher, p))
    down = False
    result = await pool.fetch(lambda p: read_price(fetcher, p))  # both get a trial: the first one's answer is shown
    assert result.source == "example"
    # the other's trial went out at the same time: it says how it went, or it was cut off and its breaker is open
    # again; never left half-open (which would let every call through)
    other = (result.sources["other"].status, fetcher.runtime("other").breaker.state)
    assert other in {("ok", BreakerState.CLOSED), ("not_tried", BreakerState.OPEN)}


async def test_a_wait_for_our_budget_ends_in_time_for_the_next_provider_and_is_no_failure() -> None:
    """At the real pace CoinGecko's keyless budget (a call every 7.5 s) is slower than market_data's 5 s runs. A
    run that waited for it past the run's deadline was cut off there: counted as a timeout of CoinGecko (on the way
    to opening its breaker), with nobody else asked. The wait now ends in time for the next provider to answer."""
    clock = [1000.0]
    fetcher = fetcher_for(lambda r: httpx.Response(200, json={"price": 2.0}), clock=lambda: clock[0])
    pool: Pool[Provider] = Pool("market", [Frugal(), Other()], fetcher)

    async def price_waiting(provider: Provider) -> float:
        return float((await fetcher.get_json(provider, "/price", max_wait=60.0))["price"])

    assert (await pool.fetch(price_waiting)).source == "frugal"  # its one call this minute

    async def run() -> Any:
        with run_deadline(0.5):
            return await pool.fetch(price_waiting)

    result = await asyncio.wait_for(run(), 30)
    assert result.source == "other" and result.sources["frugal"].status == "waiting"
    frugal = fetcher.runtime("frugal").health
    assert frugal.consecutive_failures == 0 and frugal.error_kind is None and frugal.requests == 1


async def test_a_failed_trial_costs_one_request_and_the_failure_that_opens_the_breaker_ends_its_call() -> None:
    """Retries are for a provider that works: once a failure opens the breaker, its call stops there, and a trial
    through the half-open breaker is one request (one timeout at most), not one plus the retries, so a dead
    provider does not spend the budget it will need once it is back."""
    calls: list[str] = []
    handler = always_down(calls)
    clock = [1000.0]
    fetcher = fetcher_for(handler, retries=4, clock=lambda: clock[0])
    breaker = fetcher.register(Example()).breaker
    with pytest.raises(ProviderBadResponse):
        await fetcher.get_json(Example(), "/price")
    assert len(calls) == 3 and breaker.state is BreakerState.OPEN  # the threshold, not 1 + 4 attempts
    clock[0] += breaker.cooldown
    with pytest.raises(ProviderBadResponse):
        await fetcher.get_json(Example(), "/price")
    assert len(calls) == 4 and breaker.state is BreakerState.OPEN  # the trial: one request


async def test_a_hanging_dead_provider_does_not_keep_the_one_after_it_from_its_trial() -> None:
    """A stalled pool's trials go out at once: the preferred provider hanging until the run's deadline (a timeout
    fault) no longer uses up the run before the next one, back already, is asked; the hanging trial is cut off at
    the deadline (a failure: its breaker opens again), and the one that answered is shown."""
    clock = [1000.0]

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.example.test":
            await asyncio.Event().wait()
        return httpx.Response(200, json={"price": 5.0})

    fetcher = fetcher_for(handler, retries=0, clock=lambda: clock[0], timeout=60)
    pool: Pool[Provider] = Pool("market", [Example(), Other()], fetcher)
    for provider in pool.providers:  # both were down: their breakers are open
        for _ in range(3):
            fetcher.record_failure(provider, ProviderBadResponse(provider.id, "HTTP 503"))

    async def run() -> Any:
        with run_deadline(0.3):
            return await pool.fetch(lambda p: read_price(fetcher, p))

    result = await asyncio.wait_for(run(), 30)  # the circuits opened before this run: both trialled at once
    assert result.source == "other" and fetcher.runtime("other").breaker.state is BreakerState.CLOSED
    assert fetcher.runtime("example").breaker.state is BreakerState.OPEN
    assert fetcher.runtime("example").health.requests == 1  # its trial, cut off at the deadline


async def test_a_pool_answered_by_its_fallback_is_back_on_its_preferred_source_within_two_runs() -> None:
    """However long the outage (each failed trial doubles the cool-down, up to 10 min without a cap), a breaker of
    a stream's pool lets a trial through every two of its intervals: a dead preferred provider costs one request
    every two runs, and once back it is the source again within two runs."""
    clock = [1000.0]
    down = True
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        if request.url.host == "api.example.test" and down:
            return httpx.Response(503, text="down")
        return httpx.Response(200, json={"price": 1.0})

    fetcher = fetcher_for(handler, retries=0, clock=lambda: clock[0])
    pool: Pool[Provider] = Pool("market", [Example(), Other()], fetcher, every=5.0)
    for _ in range(120):  # ten minutes of 5 s runs, "example" down throughout: "other" answers
        assert (await pool.fetch(lambda p: read_price(fetcher, p))).source == "other"
        clock[0] += 5
    assert fetcher.runtime("example").breaker.cooldown == 10.0
    assert 3 + 55 <= calls.count("api.example.test") <= 3 + 60  # its trials: one every two runs
    down = False
    sources = []
    for _ in range(2):
        sources.append((await pool.fetch(lambda p: read_price(fetcher, p))).source)
        clock[0] += 5
    assert "example" in sources
