"""A provider of no kind in particular, for the fetch path's tests: ``Example`` and a second one, ``Other``, on
hosts of their own, and a fetcher whose every request the test's handler answers (httpx.MockTransport)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from sources.fetcher import Fetcher, Provider
from sources.limits import Rate


class Example(Provider):
    id = "example"
    name = "Example"
    category = "market"
    base_url = "https://api.example.test"
    rate = Rate(600, 60, burst=50)  # room for every retry and redirect hop a test makes
    probe_path = "/ping"


class Other(Example):
    id = "other"
    base_url = "https://api.other.test"


def fetcher_for(handler: Callable[[httpx.Request], Any], **kwargs: Any) -> Fetcher:
    """``handler`` answers each request (a response, or a coroutine of one); retries back off for a millisecond."""
    kwargs.setdefault("backoff", 0.001)
    return Fetcher(httpx.AsyncClient(transport=httpx.MockTransport(handler)), **kwargs)
