"""The one resilient fetch path every provider call goes through, and what a provider is.

Per provider: a rate budget (token bucket inside its free limit), ``Retry-After`` honoured as a cool-down, a
timeout, retries with exponential backoff and jitter for transient failures, a circuit breaker, and the health
record the monitoring services report. Collectors never talk to httpx themselves. What can go wrong is the
exception tree of :mod:`sources.errors`; the budget and the breaker are in :mod:`sources.limits`.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Protocol

import httpx
import orjson

from config import Redactor
from models.messages import epoch, iso
from models.states import Availability, HealthDetail, HealthStatus
from sources.errors import (
    AnswerError,
    ProviderBadResponse,
    ProviderError,
    ProviderMissingKey,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from sources.limits import CURRENT_RUN, BreakerState, CircuitBreaker, Clock, Rate, TokenBucket
from sources.replay import RECORDED_AT

log = logging.getLogger(__name__)


# -- provider declaration -------------------------------------------------------------------------------

class Provider:
    """What a provider is, declared once as class attributes; subclasses add their fetch operations and pure
    ``normalize`` functions.

    ``key_setting`` names the :class:`config.Settings` attribute holding its key; ``key_required`` False means
    it also works without one (the key only raises its budget to ``keyed_rate``).
    """

    id: str = ""
    name: str = ""
    category: str = ""
    base_url: str = ""
    endpoints: tuple[str, ...] = ()  # the paths (JSON-RPC: methods) it is asked for, below base_url
    docs: str = ""
    rate: Rate | None = Rate(30, 60)
    keyed_rate: Rate | None = None
    key_setting: str | None = None
    key_required: bool = True
    probe_path: str = "/"
    probe_params: Mapping[str, str] = {}
    probe_interval: float = 60.0
    slow_ms: float = 2000.0
    timeout: float | None = None
    #: HTTP statuses by which this provider says "slow down" (cool-down, honouring Retry-After).
    rate_limit_statuses: tuple[int, ...] = (429, 418)
    #: The largest answer read (after decompression); a longer one is cut off and counted as a bad response.
    max_body_bytes: int = 5 * 2**20
    #: Keys the default probe's JSON answer must have (an object); empty: any non-empty object or array.
    probe_keys: tuple[str, ...] = ()

    def __init__(self, key: str | None = None) -> None:
        self.key = key

    @property
    def enabled(self) -> bool:
        return self.key_setting is None or not self.key_required or self.key is not None

    @property
    def effective_rate(self) -> Rate | None:
        return self.keyed_rate if self.key and self.keyed_rate else self.rate

    def auth(self) -> tuple[dict[str, str], dict[str, str]]:
        """Headers and query parameters that carry the key; by default none."""
        return {}, {}

    async def probe(self, fetcher: Fetcher) -> None:
        """One cheap call that tells whether the provider answers, read as JSON of the expected shape (a 200
        with an HTML page or another document is no sign of health); JSON-RPC and RSS providers override it."""
        response = await fetcher.request(self, "GET", self.probe_path, params=self.probe_params, probe=True)
        self.check_probe(fetcher.decode_json(self, response))

    def check_probe(self, raw: Any) -> None:
        """Raise :class:`AnswerError` when the probe's answer is not the document this provider sends."""
        if not isinstance(raw, dict | list) or not raw:
            raise AnswerError(f"{self.name}: the probe's answer is no JSON object or array ({str(raw)[:80]})")
        missing = [key for key in self.probe_keys if not isinstance(raw, dict) or key not in raw]
        if missing:
            raise AnswerError(f"{self.name}: the probe's answer lacks {', '.join(missing)} ({str(raw)[:80]})")


# -- health ---------------------------------------------------------------------------------------------

@dataclass
class Health:
    """What we know of one provider from its real calls and probes."""

    last_check: float | None = None
    last_success: float | None = None
    response_time_ms: float | None = None
    consecutive_failures: int = 0
    error: str | None = None
    error_kind: str | None = None
    error_since: float | None = None
    rate_limited_until: float = 0.0
    requests: int = 0
    failures: int = 0
    last_used: float = 0.0  # monotonic: when a call (real or probe) last went out
    #: Replay: when the recording of the last answer was captured (Unix seconds); None for live answers.
    recorded_at: float | None = None


@dataclass
class Runtime:
    provider: Provider
    bucket: TokenBucket
    breaker: CircuitBreaker
    health: Health = field(default_factory=Health)

    @property
    def id(self) -> str:
        return self.provider.id

    def status(self, now_mono: float) -> tuple[HealthStatus, HealthDetail]:
        """``(status, detail)`` in the spec's vocabulary: healthy / unhealthy (/ disabled), with a detail."""
        h = self.health
        if not self.provider.enabled:
            return HealthStatus.DISABLED, HealthDetail.MISSING_API_KEY
        if self.breaker.state is BreakerState.OPEN:
            return HealthStatus.UNHEALTHY, HealthDetail.CIRCUIT_OPEN
        if h.rate_limited_until > now_mono:
            return HealthStatus.UNHEALTHY, HealthDetail.RATE_LIMITED
        if h.last_check is None:
            return HealthStatus.UNHEALTHY, HealthDetail.UNCHECKED
        if h.consecutive_failures:
            return HealthStatus.UNHEALTHY, HealthDetail.ERROR
        if h.response_time_ms is not None and h.response_time_ms > self.provider.slow_ms:
            return HealthStatus.HEALTHY, HealthDetail.SLOW
        return HealthStatus.HEALTHY, HealthDetail.OK

    def available(self, now_mono: float) -> Availability:
        """Whether a call may go out now, and if not, why not."""
        if not self.provider.enabled:
            return Availability.MISSING_API_KEY
        if self.health.rate_limited_until > now_mono:
            return Availability.RATE_LIMITED
        if not self.breaker.allow():
            return Availability.CIRCUIT_OPEN
        return Availability.AVAILABLE


#: The longest cool-down a ``Retry-After`` may impose (a day: the longest quota window of a free plan), so a
#: wrong or hostile value cannot retire a provider for good.
MAX_RETRY_AFTER = 86400.0
#: Redirect hops followed per attempt (each one charged to the provider's budget); more is a loop.
MAX_REDIRECTS = 5
#: How much of an error page (status 400 and up) is read: enough for the message in a log line.
ERROR_BODY_BYTES = 65536
#: Content types no JSON answer comes with (an error page, a captive portal, a picture).
NOT_JSON = frozenset({"text/html", "application/xhtml+xml"})
NOT_JSON_FAMILIES = ("image/", "audio/", "video/")


def _retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delay or HTTP date); None when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):  # Python 3.10+ raises on a value that is no date
            return None
        if moment.tzinfo is None:  # "-0000": UTC by RFC 5322
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


# -- the fetcher ----

#: The loop time (``loop.time()``) by which the collection run in progress must be done; None outside one.
RUN_DEADLINE: ContextVar[float | None] = ContextVar("RUN_DEADLINE", default=None)


#: The share of the time left in a collection run that a call may spend waiting for our budget for its provider:
#: enough for CoinGecko's keyless 7.5 s spacing within market_data's 5 s runs (4 s deadline), leaving a third for the
#: answer (or, at a shorter deadline, for the next provider of the pool).
BUDGET_WAIT_SHARE = 2 / 3


@contextmanager
def run_deadline(seconds: float) -> Iterator[None]:
    """Every provider call made inside (by this task and the tasks it starts) ends within ``seconds``: one cut
    off is a timeout of its provider, one not yet started is not asked. The pools then say so per provider. It is
    one collection run (:data:`~sources.limits.CURRENT_RUN`): a stalled pool trials in it what opened before it."""
    token = RUN_DEADLINE.set(asyncio.get_running_loop().time() + seconds)
    run = CURRENT_RUN.set(object())
    try:
        yield
    finally:
        CURRENT_RUN.reset(run)
        RUN_DEADLINE.reset(token)


# -- the fetcher ----------------------------------------------------------------------------------------

class RequestObserver(Protocol):
    """Told of every provider call (metrics): ``outcome`` is ``ok`` or the error's kind for an attempt that went
    out, with its ``seconds``; ``skipped_<why>`` with None for a call held back (circuit open, cooling down,
    budget spent, no key)."""

    def provider_request(self, provider: str, outcome: str, seconds: float | None) -> None: ...


class Fetcher:
    """Owns every provider's runtime state and makes their calls over one shared ``httpx.AsyncClient``.

    ``budgets=False`` (replay mode) lifts the rate budgets: a recorded response costs no provider anything.
    ``replay=True`` (replay mode only) takes an answer's capture time from the replay transport's
    :data:`~sources.replay.RECORDED_AT` header; live, that header is ignored: a provider or a proxy could send it,
    and it must not make live data look as old (or as fresh) as it says.
    """

    DEFAULT_COOLDOWN = 60.0  # a 429 without Retry-After

    def __init__(self, http: httpx.AsyncClient, *, retries: int = 2, timeout: float = 10.0,
                 budgets: bool = True, redact: Redactor | None = None, clock: Clock = time.monotonic,
                 backoff: float = 0.5, cooldown_scale: float = 1.0, replay: bool = False) -> None:
        self.http = http
        self.replay = replay
        #: INTERVAL_SCALE: a faster world (tests, demos) also waits out a 429 without Retry-After faster.
        self.default_cooldown = self.DEFAULT_COOLDOWN * cooldown_scale
        self.retries = retries
        self.timeout = timeout
        self.budgets = budgets
        self.backoff = backoff
        #: Scrubs keys out of error texts, which go into logs and published payloads.
        self.redact = redact or Redactor()
        self._clock = clock
        self.runtimes: dict[str, Runtime] = {}
        self.observer: RequestObserver | None = None
        #: HTTP requests made to providers since start (replayed ones too: they take the same path).
        self.calls = 0

    def register(self, provider: Provider) -> Runtime:
        if provider.id in self.runtimes:
            return self.runtimes[provider.id]
        rate = provider.effective_rate if self.budgets else None
        runtime = Runtime(provider, TokenBucket(rate, self._clock), CircuitBreaker(clock=self._clock))
        self.runtimes[provider.id] = runtime
        return runtime

    def runtime(self, provider_id: str) -> Runtime:
        return self.runtimes[provider_id]

    def now(self) -> float:
        return self._clock()

    # -- calls ----------------------------------------------------------------------------------------
    async def get_json(self, provider: Provider, path: str, params: Mapping[str, Any] | None = None,
                       *, max_wait: float = 0.0) -> Any:
        response = await self.request(provider, "GET", path, params=params, max_wait=max_wait)
        return self.decode_json(provider, response)

    async def get_text(self, provider: Provider, path: str, params: Mapping[str, Any] | None = None,
                       *, max_wait: float = 0.0) -> str:
        response = await self.request(provider, "GET", path, params=params, max_wait=max_wait)
        return response.text

    def decode_json(self, provider: Provider, response: httpx.Response) -> Any:
        """The JSON body; an answer declared as a page, a picture or a sound is a bad response whatever it holds."""
        media = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if media in NOT_JSON or media.startswith(NOT_JSON_FAMILIES):
            error = ProviderBadResponse(provider.id, f"response is {media}, not JSON")
            self.record_failure(provider, error)
            raise error
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            error = ProviderBadResponse(provider.id, f"response is not JSON ({exc})")
            self.record_failure(provider, error)
            raise error from None

    async def request(self, provider: Provider, method: str, path: str, *,
                      params: Mapping[str, Any] | None = None, json: Any = None, max_wait: float = 0.0,
                      probe: bool = False) -> httpx.Response:
        """One logical call: budget, breaker, then up to ``1 + retries`` attempts (a probe and a trial through a
        half-open breaker make one), all of it within the deadline of the collection run it belongs to
        (:func:`run_deadline`), if any; waiting for the budget takes at most two thirds of the time the run has left."""
        deadline = RUN_DEADLINE.get()
        if deadline is None:
            return await self._call(provider, method, path, params, json, max_wait, probe)
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise ProviderTimeout(provider.id, "not asked: the collection run's deadline had passed")
        # Waiting for our own budget never eats the run: a wait the deadline would cut off is no failure of the
        # provider (it was never asked), and the next provider of the pool still needs time to answer.
        max_wait = min(max_wait, left * BUDGET_WAIT_SHARE)
        try:
            async with asyncio.timeout_at(deadline) as scope:
                return await self._call(provider, method, path, params, json, max_wait, probe)
        except TimeoutError:
            if not scope.expired():
                raise
            error = ProviderTimeout(provider.id, "no answer before the collection run's deadline")
            self.record_failure(provider, error)
            raise error from None

    async def _call(self, provider: Provider, method: str, path: str, params: Mapping[str, Any] | None,
                    json: Any, max_wait: float, probe: bool) -> httpx.Response:
        runtime = self.register(provider)
        blocked = runtime.available(self._clock())
        if blocked is not Availability.AVAILABLE:
            self._observe(provider, f"skipped_{blocked.value}")
        if blocked is Availability.MISSING_API_KEY:
            raise ProviderMissingKey(provider.id, "no API key configured")
        if blocked is Availability.RATE_LIMITED:
            wait = runtime.health.rate_limited_until - self._clock()
            raise ProviderRateLimited(provider.id, f"cooling down for {wait:.0f} s after a rate limit", wait)
        if blocked is Availability.CIRCUIT_OPEN:
            raise ProviderUnavailable(provider.id,
                                      f"circuit open after {runtime.health.consecutive_failures} failures; "
                                      f"next try in {runtime.breaker.retry_in():.0f} s")
        attempts = 1 if probe else 1 + self.retries
        for attempt in range(attempts):
            if not await runtime.bucket.take(max_wait if attempt == 0 else 0.0):
                self._observe(provider, "skipped_budget")
                raise ProviderRateLimited(provider.id, "our rate budget for this provider is spent for now",
                                          runtime.bucket.wait_time(), ours=True)
            started = time.perf_counter()
            try:
                response = await self._attempt(runtime, method, path, params, json)
            except ProviderError as error:
                self._observe(provider, error.kind, started)
                self.record_failure(provider, error)
                # A failure that opened the breaker (a failed trial, or the last of the threshold) ends the call:
                # a trial costs one request of the budget and one timeout, not three.
                if not error.retryable or attempt + 1 >= attempts or runtime.breaker.state is BreakerState.OPEN:
                    raise
                # exponential backoff with jitter, so retries of many clients do not align
                await asyncio.sleep(self.backoff * 2 ** attempt + random.uniform(0, self.backoff))
            else:
                self._observe(provider, "ok", started)
                return response
        raise AssertionError("unreachable")

    def _observe(self, provider: Provider, outcome: str, started: float | None = None) -> None:
        if self.observer is not None:
            seconds = None if started is None else time.perf_counter() - started
            self.observer.provider_request(provider.id, outcome, seconds)

    async def _attempt(self, runtime: Runtime, method: str, path: str, params: Mapping[str, Any] | None,
                       body: Any) -> httpx.Response:
        """One attempt: every redirect hop charged to the budget, the whole answer (hops, headers, body) within
        the provider's timeout (httpx's is per read: a body dripping a byte a second would never end), the body
        read up to the provider's ``max_body_bytes``. A 2xx is only an answer here: it counts as a success once
        it has been read (:meth:`record_success`, by the pool or the probe)."""
        provider = runtime.provider
        auth_headers, auth_params = provider.auth()
        url = path if path.startswith(("http://", "https://")) else provider.base_url + path
        limit = provider.timeout or self.timeout
        request = self.http.build_request(method, url, params={**(params or {}), **auth_params} or None, json=body,
                                          headers=auth_headers or None, timeout=limit)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                response = await self._send(runtime, request)
        except (TimeoutError, httpx.TimeoutException):
            raise ProviderTimeout(provider.id, f"no complete answer within {limit:.0f} s") from None
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(provider.id, self.redact(f"{type(exc).__name__}: {exc}")) from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        status = response.status_code
        if status in provider.rate_limit_statuses:
            retry_after = _retry_after(response)
            cooldown = retry_after if retry_after is not None else self.default_cooldown
            runtime.health.rate_limited_until = self._clock() + cooldown
            raise ProviderRateLimited(provider.id, f"HTTP {status}: rate limited for {cooldown:.0f} s", cooldown)
        if status in (401, 403, 451):
            raise ProviderUnavailable(provider.id, f"HTTP {status}: access refused ({self._snippet(response)})",
                                      retryable=False)
        if status >= 400:
            raise ProviderBadResponse(provider.id, f"HTTP {status}: {self._snippet(response)}",
                                      retryable=status >= 500, status=status)
        if status >= 300:  # a redirect without a usable Location
            raise ProviderBadResponse(provider.id, f"HTTP {status} without a redirect we can follow")
        runtime.health.recorded_at = epoch(response.headers.get(RECORDED_AT)) if self.replay else None
        self.record_answer(provider, elapsed_ms)
        return response

    async def _send(self, runtime: Runtime, request: httpx.Request) -> httpx.Response:
        """Send ``request``, following up to :data:`MAX_REDIRECTS` redirects ourselves: each hop is a request
        to the provider, counted and charged to its budget like the first (taken by :meth:`request`)."""
        provider = runtime.provider
        for hop in range(MAX_REDIRECTS + 1):
            if hop and not runtime.bucket.try_take():
                raise ProviderRateLimited(provider.id, f"our rate budget is spent after {hop} redirects",
                                          runtime.bucket.wait_time(), ours=True)
            runtime.health.last_used = self._clock()
            runtime.health.requests += 1
            self.calls += 1
            response = await self.http.send(request, stream=True, follow_redirects=False)
            try:
                if response.next_request is not None:
                    request = response.next_request
                    continue
                content = await self._read_body(provider, response)
            finally:
                await response.aclose()
            headers = response.headers.copy()
            for name in ("content-encoding", "content-length", "transfer-encoding"):  # the content is decoded
                headers.pop(name, None)
            return httpx.Response(response.status_code, headers=headers, content=content, request=request)
        raise ProviderBadResponse(provider.id, f"more than {MAX_REDIRECTS} redirects (a loop?)", retryable=False)

    @staticmethod
    async def _read_body(provider: Provider, response: httpx.Response) -> bytes:
        """The decoded body up to the provider's limit; an error page is only read for its first lines."""
        limit = provider.max_body_bytes if response.status_code < 400 else ERROR_BODY_BYTES
        declared = response.headers.get("content-length", "")
        if response.status_code < 400 and declared.isdigit() and int(declared) > limit:
            raise ProviderBadResponse(provider.id, f"answer of {int(declared)} bytes, over our limit of {limit}",
                                      retryable=False)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                if response.status_code >= 400:
                    chunks.append(chunk[:limit - size + len(chunk)])
                    break
                raise ProviderBadResponse(provider.id, f"answer over our limit of {limit} bytes: not read further",
                                          retryable=False)
            chunks.append(chunk)
        return b"".join(chunks)

    # -- health bookkeeping ---------------------------------------------------------------------------
    def record_answer(self, provider: Provider, elapsed_ms: float) -> None:
        """A 2xx came back (not yet read: only its reader can tell whether it is what we asked for)."""
        h = self.register(provider).health
        h.last_check = time.time()
        h.response_time_ms = round(elapsed_ms, 1)

    def record_success(self, provider: Provider, elapsed_ms: float | None = None) -> None:
        """The answer was read: the provider works (resets its failure count and closes its breaker)."""
        runtime = self.register(provider)
        h = runtime.health
        h.last_check = h.last_success = time.time()
        if elapsed_ms is not None:
            h.response_time_ms = round(elapsed_ms, 1)
        h.consecutive_failures = 0
        h.error = h.error_kind = None
        h.error_since = None
        runtime.breaker.on_success()

    def record_failure(self, provider: Provider, error: ProviderError) -> None:
        """Count a failure: from a call, or from a ``normalize`` that could not read the answer."""
        runtime = self.register(provider)
        h = runtime.health
        now = time.time()
        h.last_check = now
        h.failures += 1
        if h.consecutive_failures == 0:
            h.error_since = now
        h.consecutive_failures += 1
        h.error = self.redact(error.message)
        h.error_kind = error.kind
        if not isinstance(error, ProviderRateLimited):
            runtime.breaker.on_failure(h.consecutive_failures)

    def _snippet(self, response: httpx.Response) -> str:
        text = response.text[:160].replace("\n", " ").strip()
        return self.redact(text) or response.reason_phrase


def health_view(runtime: Runtime, now_mono: float) -> dict[str, Any]:
    status, detail = runtime.status(now_mono)
    h = runtime.health
    return {
        "status": status,
        "detail": detail,
        "response_time_ms": h.response_time_ms,
        "last_check": iso(h.last_check),
        "name": runtime.provider.name,
        "category": runtime.provider.category,
        "last_success": iso(h.last_success),
        "consecutive_failures": h.consecutive_failures,
        "error": h.error,
        "error_since": iso(h.error_since),
        "requests": h.requests,
        "failures": h.failures,
    }
