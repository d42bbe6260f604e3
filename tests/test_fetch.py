"""The resilient fetch path: errors classified, retries, budgets, Retry-After, circuit breaker, no secrets leaked."""

from __future__ import annotations

import httpx
import pytest

from config import Redactor
from models.messages import epoch
from services.health_checker import HealthCheckerService
from sources.errors import (
    AnswerError,
    ProviderBadResponse,
    ProviderMissingKey,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from sources.fetcher import MAX_RETRY_AFTER, Fetcher, health_view
from sources.limits import BreakerState, CircuitBreaker, Rate, TokenBucket
from sources.pools import Pool
from sources.replay import RECORDED_AT
from tests.support.clock import FakeClock
from tests.support.providers import Example, Other, fetcher_for


class Keyed(Example):
    id = "keyed"
    key_setting = "etherscan_api_key"

    def auth(self) -> tuple[dict[str, str], dict[str, str]]:
        return {}, {"apikey": self.key or ""}


async def test_json_answer_is_returned_and_health_recorded() -> None:
    fetcher = fetcher_for(lambda r: httpx.Response(200, json={"ok": True}))
    provider = Example()
    assert await fetcher.get_json(provider, "/x") == {"ok": True}
    view = health_view(fetcher.runtime("example"), fetcher.now())
    assert view["status"] == "healthy" and view["detail"] == "ok" and view["response_time_ms"] is not None
    assert view["last_check"].endswith("Z") and view["requests"] == 1


async def test_timeouts_are_retried_then_reported() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadTimeout("slow", request=request)

    fetcher = fetcher_for(handler, retries=2)
    with pytest.raises(ProviderTimeout):
        await fetcher.get_json(Example(), "/x")
    assert len(calls) == 3
    h = fetcher.runtime("example").health
    assert h.consecutive_failures == 3 and h.error_kind == "timeout"
    assert fetcher.runtime("example").breaker.state is BreakerState.OPEN


async def test_a_transient_error_then_success_is_success() -> None:
    answers = iter([httpx.Response(503, text="busy"), httpx.Response(200, json=[1])])
    fetcher = fetcher_for(lambda r: next(answers), retries=2)
    pool: Pool[Example] = Pool("p", [Example()], fetcher)  # the pool's reader says the answer was read
    assert (await pool.fetch(lambda p: fetcher.get_json(p, "/x"))).value == [1]
    assert fetcher.runtime("example").health.consecutive_failures == 0


async def test_429_honours_retry_after_and_is_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(429, headers={"retry-after": "119"}, json={"status": {"error_code": 429}})

    clock = FakeClock()
    fetcher = fetcher_for(handler, clock=clock)
    with pytest.raises(ProviderRateLimited) as err:
        await fetcher.get_json(Example(), "/x")
    assert err.value.retry_after == 119 and len(calls) == 1
    assert fetcher.runtime("example").status(clock()) == ("unhealthy", "rate_limited")
    with pytest.raises(ProviderRateLimited):  # still cooling down: no call goes out
        await fetcher.get_json(Example(), "/x")
    assert len(calls) == 1
    clock.now += 120
    with pytest.raises(ProviderRateLimited):
        await fetcher.get_json(Example(), "/x")
    assert len(calls) == 2


async def test_not_json_is_a_bad_response() -> None:
    fetcher = fetcher_for(lambda r: httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(ProviderBadResponse, match="not JSON"):
        await fetcher.get_json(Example(), "/x")


@pytest.mark.parametrize("status", [401, 403, 451])
async def test_refusals_are_unavailable_and_not_retried(status: int) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status, text="Service unavailable from a restricted location")

    with pytest.raises(ProviderUnavailable, match=str(status)):
        await fetcher_for(handler).get_json(Example(), "/x")
    assert len(calls) == 1


async def test_connection_errors_are_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Name or service not known", request=request)

    with pytest.raises(ProviderUnavailable, match="ConnectError"):
        await fetcher_for(handler, retries=0).get_json(Example(), "/x")


async def test_keyed_provider_without_key_is_never_called() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={})

    fetcher = fetcher_for(handler)
    with pytest.raises(ProviderMissingKey):
        await fetcher.get_json(Keyed(None), "/x")
    assert calls == []
    assert fetcher.runtime("keyed").status(fetcher.now()) == ("disabled", "missing_api_key")


async def test_secrets_never_appear_in_errors() -> None:
    secret = "sk-very-secret-123"

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["apikey"] == secret
        return httpx.Response(400, text=f"invalid key {secret} for {request.url}")

    fetcher = fetcher_for(handler, redact=Redactor([secret]))
    with pytest.raises(ProviderBadResponse) as err:
        await fetcher.get_json(Keyed(secret), "/x")
    assert secret not in str(err.value)
    view = health_view(fetcher.runtime("keyed"), fetcher.now())
    assert secret not in str(view) and "***" in view["error"]


async def test_budget_waits_a_little_or_refuses() -> None:
    clock = FakeClock()

    class Tight(Example):
        id = "tight"
        rate = Rate(1, 10, burst=1)

    fetcher = fetcher_for(lambda r: httpx.Response(200, json={}), clock=clock)
    await fetcher.get_json(Tight(), "/x")
    with pytest.raises(ProviderRateLimited, match="budget"):
        await fetcher.get_json(Tight(), "/x", max_wait=1.0)
    clock.now += 10
    await fetcher.get_json(Tight(), "/x")


def test_token_bucket_refills_at_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(Rate(6, 60, burst=2), clock)
    assert bucket.try_take() and bucket.try_take() and not bucket.try_take()
    assert bucket.wait_time() == pytest.approx(10)
    clock.now += 10
    assert bucket.try_take()
    assert TokenBucket(None, clock).try_take()  # no budget: replay mode


def test_breaker_opens_half_opens_and_backs_off() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, cooldown=30, max_cooldown=100, clock=clock)
    for n in (1, 2):
        breaker.on_failure(n)
        assert breaker.allow()
    breaker.on_failure(3)
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now += 30
    assert breaker.allow() and breaker.state is BreakerState.HALF_OPEN
    breaker.on_failure(4)
    assert breaker.state is BreakerState.OPEN and breaker.cooldown == 60
    clock.now += 60
    assert breaker.allow()
    breaker.on_success()
    assert breaker.state is BreakerState.CLOSED and breaker.cooldown == 30


@pytest.mark.parametrize(("header", "cooldown"), [
    ("soon", Fetcher.DEFAULT_COOLDOWN),  # no number, no date: Python's date parser raises on it
    ("inf", Fetcher.DEFAULT_COOLDOWN),
    ("1e12", MAX_RETRY_AFTER),
    ("Wed, 21 Oct 2015 07:28:00 -0000", 0),  # a date in the past, in RFC 5322's "-0000" (UTC)
])
async def test_a_strange_retry_after_still_means_rate_limited(header: str, cooldown: float) -> None:
    clock = FakeClock()
    fetcher = fetcher_for(lambda r: httpx.Response(429, headers={"retry-after": header}), clock=clock)
    with pytest.raises(ProviderRateLimited) as err:
        await fetcher.get_json(Example(), "/x")
    assert err.value.retry_after == cooldown
    assert fetcher.runtime("example").health.rate_limited_until == clock.now + cooldown


class Node(Example):
    id = "node"
    probe_path = "/rpc"

    async def probe(self, fetcher: Fetcher) -> None:
        raw = fetcher.decode_json(self, await fetcher.request(self, "POST", self.probe_path, probe=True))
        if raw.get("error"):  # what a JSON-RPC node's normaliser does with an error body
            raise AnswerError(f"JSON-RPC error: {raw['error']['message']}")


async def test_a_probe_that_cannot_read_its_answer_does_not_stop_the_health_report() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/rpc":
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "limit"}})
        return httpx.Response(200, json={"ok": True})

    fetcher = fetcher_for(handler)
    for provider in (Node(), Other()):
        fetcher.register(provider)
    payload = await HealthCheckerService(fetcher, interval=30, data_source="live").collect()
    node, other = payload["providers"]["node"], payload["providers"]["other"]
    assert node["status"] == "unhealthy" and "JSON-RPC error: limit" in node["error"]
    assert other["status"] == "healthy" and payload["healthy_count"] == 1


async def test_a_normaliser_failing_in_an_unforeseen_way_fails_over() -> None:
    fetcher = fetcher_for(lambda r: httpx.Response(200, json={"price": 0}))
    pool: Pool[Example] = Pool("market", [Example(), Other()], fetcher)

    async def read(provider: Example) -> float:
        raw = await fetcher.get_json(provider, "/x")
        if provider.id == "example":
            raise RuntimeError("a bug in a normaliser")
        return 1 / raw["price"] if raw["price"] else 1.0

    result = await pool.fetch(read)
    assert result.source == "other" and result.value == 1.0
    assert result.sources["example"].status == "error" and "RuntimeError" in (result.sources["example"].error or "")
    assert fetcher.runtime("example").health.error_kind == "bad_response"

    async def divide(provider: Example) -> float:
        return 1 / (await fetcher.get_json(provider, "/x"))["price"]

    nothing = await pool.fetch(divide)  # ZeroDivisionError from every provider: no data, and no exception
    assert not nothing.ok and all(s.status == "error" for s in nothing.sources.values())


async def test_an_error_body_quoting_the_key_is_published_without_it() -> None:
    secret = "sk-very-secret-456"
    fetcher = fetcher_for(lambda r: httpx.Response(200, json={"status": "0", "result": f"Invalid API Key {secret}"}),
                          redact=Redactor([secret]))
    pool: Pool[Keyed] = Pool("explorers", [Keyed(secret)], fetcher)

    async def read(provider: Keyed) -> None:
        raw = await fetcher.get_json(provider, "/x")
        raise AnswerError(f"keyed error: {raw['result']}")  # as normalisers quote error bodies

    result = await pool.fetch(read)
    error = result.sources["keyed"].error or ""
    assert secret not in error and "***" in error
    assert secret not in str(health_view(fetcher.runtime("keyed"), fetcher.now()))


@pytest.mark.parametrize("replay", [False, True], ids=["live", "replay"])
async def test_only_replay_takes_a_capture_time_from_the_answer(replay: bool) -> None:
    """The replay transport's capture-time header dates an answer in replay mode only: live, a provider or a proxy
    sending it must not make fresh data look two years old (nor old data fresh)."""
    answer = httpx.Response(200, json={"ok": True}, headers={RECORDED_AT: "2024-05-01T12:00:00Z"})
    fetcher = fetcher_for(lambda r: answer, replay=replay)
    assert await fetcher.get_json(Example(), "/x") == {"ok": True}
    recorded_at = fetcher.runtime("example").health.recorded_at
    assert recorded_at == (epoch("2024-05-01T12:00:00Z") if replay else None)
