"""Every provider declared once, completely; /api/providers lists them without ever showing a key."""

from __future__ import annotations

from pathlib import Path

import httpx

from app import create_app
from tests.support.server import serve
from tests.support.settings import make_settings

CATEGORIES = {"market", "explorers", "news", "sentiment", "whales", "rpc", "onchain"}


def test_every_provider_is_declared_and_listed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, etherscan_api_key="secret-etherscan-key")
    with serve(lambda: create_app(settings), settings) as server:
        body = httpx.get(server.base + "/api/providers", timeout=10).json()
    assert "secret-etherscan-key" not in str(body)
    providers = {p["id"]: p for p in body["providers"]}
    assert body["count"] == len(providers) >= 40
    assert body["endpoint_count"] >= 30
    assert set(body["categories"]) >= CATEGORIES, body["categories"]
    for p in providers.values():
        assert p["name"] and p["category"] and p["base_url"].startswith("https://") and p["endpoints"], p["id"]
        assert p["health"]["status"] in ("healthy", "unhealthy", "disabled")
    assert providers["etherscan"]["key"] == {"setting": "ETHERSCAN_API_KEY", "required": True, "configured": True}
    assert providers["whale_alert"]["key"]["configured"] is False
    assert providers["whale_alert"]["health"]["status"] == "disabled"
    assert providers["coingecko"]["key"]["required"] is False and providers["kraken"]["key"] is None
