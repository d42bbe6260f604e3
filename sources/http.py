"""The one HTTP client pool every provider call goes through, over the transport of the data source in use."""

from __future__ import annotations

import httpx

from config import Settings
from sources.replay import ReplayTransport

USER_AGENT = "crypto-api-monitor/2.0 (+https://huggingface.co/spaces; open-source crypto data monitor)"


def http_client(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """Replay mode swaps in the recorded-response transport; tests pass their own.

    Live, the client builds its own transports (no retries: the fetcher retries) so that it honours the
    environment as any HTTP tool does: ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``/``NO_PROXY`` and a corporate
    CA in ``SSL_CERT_FILE``/``SSL_CERT_DIR``. (An explicit transport would make httpx ignore all of them.)"""
    if transport is None and settings.data_source == "replay":
        transport = ReplayTransport()
    return httpx.AsyncClient(
        transport=transport,
        trust_env=True,
        timeout=httpx.Timeout(settings.http_timeout, connect=min(5.0, settings.http_timeout)),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json, application/xml;q=0.9, */*;q=0.5"},
        follow_redirects=False,  # the fetcher follows redirects itself, charging every hop to the budget
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
    )
