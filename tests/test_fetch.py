"""The resilient fetch path: errors classified, retries, budgets, Retry-After, circuit breaker, no secrets leaked."""

from __future__ import annotations

import httpx
import pytest

from services.fetch import (
    BreakerState,
    CircuitBreaker,
    Fetcher,
    Provider,
    ProviderBadResponse,
    ProviderMissingKey,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    Rate,
    TokenBucket,
    health_view,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Example(Provider):
    id = "example"
    name = "Example"
    category = "market"
    base_url = "https://api.example.test"
    rate = Rate(60, 60, burst=5)
    probe_path = "/ping"


class Keyed(Example):
    id = "keyed"
    key_setting = "etherscan_api_key"

    def auth(self) -> tuple[dict[str, str], dict[str, str]]:
        return {}, {"apikey": self.key or ""}


def fetcher_for(handler, **kwargs) -> Fetcher:
    kwargs.setdefault("backoff", 0.001)
    return Fetcher(httpx.AsyncClient(transport=httpx.MockTransport(handler)), **kwargs)


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
    assert await fetcher.get_json(Example(), "/x") == [1]
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
    calls = []
    fetcher = fetcher_for(lambda r: calls.append(r) or httpx.Response(200, json={}))
    with pytest.raises(ProviderMissingKey):
        await fetcher.get_json(Keyed(None), "/x")
    assert calls == []
    assert fetcher.runtime("keyed").status(fetcher.now()) == ("disabled", "missing_api_key")


async def test_secrets_never_appear_in_errors() -> None:
    secret = "sk-very-secret-123"

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["apikey"] == secret
        return httpx.Response(400, text=f"invalid key {secret} for {request.url}")

    fetcher = fetcher_for(handler, secrets=[secret])
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
