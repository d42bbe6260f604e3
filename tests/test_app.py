"""The server as users meet it: REST routes, the page, settings, replay and offline live runs, slow clients."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import create_app
from models.catalog import ENDPOINTS, SERVICE_NAMES
from tests.support.paths import ROOT
from tests.support.server import LiveServer, serve
from tests.support.settings import make_settings
from tests.support.wsclient import Client
from ws.uvicorn_protocol import WebSocketProtocol


def get(server: LiveServer, path: str) -> httpx.Response:
    return httpx.get(server.base + path, timeout=10)


def published(server: LiveServer, service: str) -> bool:
    return server.app.state.hub.latest(service) is not None


def latest(server: LiveServer, service: str) -> dict[str, Any]:
    """The latest update of ``service``, as clients got it (it must have published one)."""
    update = server.app.state.hub.latest(service)
    assert update is not None, f"{service} has published nothing yet"
    return json.loads(update.text)


# -- REST -----------------------------------------------------------------------------------------------

def test_services_catalogue(live_server: LiveServer) -> None:
    body = get(live_server, "/ws/services").json()
    assert body["status"] == "success"
    services = body["data"]["services"]
    assert list(services) == list(SERVICE_NAMES)
    assert services["market_data"]["update_interval"] == 5 and services["news"]["update_interval"] == 60
    assert services["huggingface"]["group"] == "integration"
    assert {"/ws/huggingface", "/ws/ai"} <= set(services["huggingface"]["endpoints"])
    assert "/ws/data" in services["explorers"]["endpoints"]
    assert services["market_data"]["description"] == "Real-time cryptocurrency prices, volumes, and market caps"


def test_endpoints_list_every_websocket_url(live_server: LiveServer) -> None:
    body = get(live_server, "/ws/endpoints").json()
    urls = {e["path"]: e["url"] for e in body["data"]["endpoints"]}
    expected = {p for ep in ENDPOINTS for p in (ep.path, *ep.aliases)}
    assert set(urls) == expected and len(expected) == 16
    assert urls["/ws/ai"].startswith("ws://127.0.0.1:") and urls["/ws/ai"].endswith("/ws/ai")
    proxied = httpx.get(live_server.base + "/ws/endpoints",
                        headers={"x-forwarded-proto": "https", "host": "me-space.hf.space"}).json()
    assert proxied["data"]["base_url"] == "wss://me-space.hf.space"


def test_latest_update_by_rest(live_server: LiveServer) -> None:
    live_server.wait_for(lambda: live_server.app.state.hub.latest("market_data") is not None)
    body = get(live_server, "/api/market_data").json()
    assert body["service"] == "market_data" and body["type"] == "update" and body["seq"] >= 1
    assert body["data"]["data_source"] == "replay"
    missing = get(live_server, "/api/bogus")
    assert missing.status_code == 404 and "Unknown service" in missing.json()["detail"]["message"]
    assert "market_data" in missing.json()["detail"]["available_services"]
    waiting = get(live_server, "/api/persistence")
    assert waiting.status_code == 503 and "No update" in waiting.json()["detail"]["message"]


def test_docs_health_and_the_page(live_server: LiveServer) -> None:
    assert get(live_server, "/docs").status_code == 200
    paths = get(live_server, "/openapi.json").json()["paths"]
    assert {"/ws/stats", "/ws/services", "/ws/endpoints", "/api/{service}"} <= paths.keys()
    assert get(live_server, "/healthz").json()["status"] == "ok"
    page = get(live_server, "/")
    assert page.status_code == 200 and "<html" in page.text.lower()


# -- settings -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "name"), [
    ({"PORT": "seventy"}, "PORT"),
    ({"PORT": "70000"}, "PORT"),
    ({"DATA_SOURCE": "mock"}, "DATA_SOURCE"),
    ({"INTERVAL_SCALE": "0"}, "INTERVAL_SCALE"),
])
def test_invalid_setting_stops_start_up_with_one_line(env: dict[str, str], name: str) -> None:
    result = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env={**os.environ, **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Invalid setting {name}")


def test_secret_settings_are_never_printed() -> None:
    from config import Settings

    settings = Settings(etherscan_api_key="abc-secret", port=7860)
    assert "abc-secret" not in repr(settings) and "abc-secret" not in str(settings.model_dump())
    assert settings.key("etherscan_api_key") == "abc-secret" and settings.key("cryptopanic_token") is None


# -- whole runs -----------------------------------------------------------------------------------------

def test_replay_run_streams_market_data_and_monitoring(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, interval_scale=0.05)
    with serve(lambda: create_app(settings), settings) as server:
        with Client(server.ws, "/ws/all") as client:
            got: dict[str, dict] = {}
            deadline = time.monotonic() + 20
            while {"market_data", "health_checker", "pool_manager", "scheduler"} - got.keys():
                assert time.monotonic() < deadline, f"missing {set(got)}"
                message = client.recv_type("update", timeout=10)
                got[message["service"]] = message
        market = got["market_data"]["data"]
        assert market["data_source"] == "replay" and market["source"] == "coingecko"
        assert len(market["prices"]) == 100  # MARKET_COINS of the 250 coins of the USD capture (issue 10)
        health = got["health_checker"]["data"]
        assert {"overall_health", "healthy_count", "unhealthy_count", "total_providers", "providers"} <= health.keys()
        assert health["providers"]["coingecko"]["status"] == "healthy"
        pools = got["pool_manager"]["data"]
        assert pools["pools"]["market_data"]["active_source"] == "coingecko"
        assert {"pools", "active_sources", "inactive_sources", "failover_count"} <= pools.keys()
        jobs = got["scheduler"]["data"]
        assert jobs["running"] is True and jobs["total_jobs"] >= 4
        job = next(j for j in jobs["jobs"] if j["id"] == "market_data_collection")
        assert job["next_run"].endswith("Z") and job["status"] in ("scheduled", "running")


def test_live_without_network_invents_nothing(tmp_path: Path) -> None:
    def offline(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution", request=request)

    settings = make_settings(tmp_path, data_source="live", interval_scale=0.05, http_retries=0)
    transport = httpx.MockTransport(offline)
    with serve(lambda: create_app(settings, transport=transport), settings) as server:
        server.wait_for(lambda: all(published(server, s) for s in ("market_data", "health_checker", "pool_manager")))
        market = latest(server, "market_data")["data"]
        assert market["status"] == "no_data" and market["prices"] == {} and market["source"] is None
        assert market["volumes"] == {} and market["market_caps"] == {} and market["price_changes"] == {}
        assert "every provider failed" in market["message"]
        # each failed, or its breaker is open, or its trial waits for our budget for it (a breaker lets a trial
        # through every two runs, and runs come every 0.25 s here: more often than a budget allows)
        assert all(s["status"] in ("error", "circuit_open", "missing_api_key", "waiting")
                   for s in market["providers"].values()), market["providers"]
        def all_checked() -> bool:
            providers = latest(server, "health_checker")["data"]["providers"]
            return len(providers) >= 3 and all(p["last_check"] for p in providers.values() if p["status"] != "disabled")

        server.wait_for(all_checked)
        health = latest(server, "health_checker")["data"]
        assert health["healthy_count"] == 0 and health["overall_health"] == "unhealthy"
        assert all((p["status"] == "unhealthy" and p["error"]) or p["detail"] == "missing_api_key"
                   for p in health["providers"].values())
        pool = latest(server, "pool_manager")["data"]["pools"]["market_data"]
        assert pool["active_source"] is None and pool["health"] == "unhealthy"
        pools = latest(server, "pool_manager")["data"]["pools"]
        assert all(p["active_source"] is None for p in pools.values()), pools

        data_services = ("explorers", "news", "sentiment", "whale_tracking", "rpc_nodes", "onchain")
        server.wait_for(lambda: all(published(server, s) for s in data_services), timeout=30)
        explorers = latest(server, "explorers")["data"]
        assert explorers["status"] == "no_data"
        bitcoin, ethereum = explorers["bitcoin"], explorers["ethereum"]
        assert bitcoin["status"] == "no_data" and bitcoin["source"] is None and bitcoin["fees"] == {}
        assert bitcoin["height"] is None and bitcoin["hashrate"] is None
        assert ethereum["status"] == "no_data" and ethereum["block_number"] is None
        assert ethereum["gas_price_gwei"] is None
        news = latest(server, "news")["data"]
        assert news["status"] == "no_data" and news["articles"] == [] and news["sources"] == []
        sentiment = latest(server, "sentiment")["data"]
        assert sentiment["sentiment_score"] is None and sentiment["overall_sentiment"] is None
        assert sentiment["social_volume"] is None and sentiment["fear_greed"] is None  # no texts: no score, no volume
        whales = latest(server, "whale_tracking")["data"]
        assert whales["large_transactions"] == [] and whales["total_volume"] is None  # not 0: nothing was seen
        rpc = latest(server, "rpc_nodes")["data"]
        assert rpc["healthy_count"] == 0 and all(not n["reachable"] and n["block_number"] is None and n["error"]
                                                 for n in rpc["nodes"].values())
        onchain = latest(server, "onchain")["data"]
        assert onchain["status"] == "no_data" and onchain["gas"] == {} and onchain["tvl"]["total_tvl"] is None
        assert set(onchain["gas_errors"]) == {"ethereum", "bsc", "polygon", "arbitrum", "base", "optimism"}


# -- one slow client does not slow the others -----------------------------------------------------------

def raw_websocket(base: str, path: str) -> socket.socket:
    """A client that completes the handshake and then never reads a byte."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b"101" in sock.recv(1024)
    return sock


@pytest.mark.timing  # the fast clients' delays stay under 2 s (waiting on the slow one would take longer)
def test_a_client_that_stops_reading_is_dropped_and_others_stay_on_time(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ws_send_queue=64)
    with serve(lambda: create_app(settings), settings) as server:
        slow = raw_websocket(server.base, "/ws/persistence")
        fast = [Client(server.ws, "/ws/persistence") for _ in range(3)]
        try:
            for client in fast:
                client.recv_type("subscription_confirmed")
            manager = server.app.state.manager
            server.wait_for(lambda: manager.count == 4)
            count, blob = 300, "x" * 50_000
            delays: list[list[float]] = [[] for _ in fast]

            def read(i: int) -> None:
                for _ in range(count):
                    message = fast[i].recv_until(lambda m: m["type"] == "update" and "sent" in m["data"], 30)
                    delays[i].append(time.time() - message["data"]["sent"])

            readers = [threading.Thread(target=read, args=(i,)) for i in range(len(fast))]
            for thread in readers:
                thread.start()
            for n in range(count):  # 15 MB in 6 s: far more than the slow client's buffers hold
                server.publish("persistence", {"n": n, "sent": time.time(), "blob": blob})
                time.sleep(0.02)
            for thread in readers:
                thread.join(timeout=60)
            assert all(len(d) == count for d in delays), [len(d) for d in delays]
            assert max(max(d) for d in delays) < 2.0, "a fast client waited on the slow one"
            server.wait_for(lambda: manager.slow_consumer_disconnects == 1)
            stats = get(server, "/ws/stats").json()["data"]
            assert stats["slow_consumer_disconnects"] == 1 and stats["total_connections"] == 3
        finally:
            for client in fast:
                client.close()
            slow.close()


@pytest.mark.timing  # shutdown under 10 s: within serve()'s first join, i.e. with no forced exit
def test_a_dropped_slow_client_neither_keeps_its_socket_nor_holds_up_shutdown(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    blob = "x" * 50_000

    def drop_a_slow_client(server: LiveServer) -> socket.socket:
        manager = server.app.state.manager
        dropped = manager.slow_consumer_disconnects
        slow = raw_websocket(server.base, "/ws/persistence")
        server.wait_for(lambda: manager.count == 1)
        for n in range(150):  # 7.5 MB: far more than the client's buffers and its queue hold
            server.publish("persistence", {"n": n, "blob": blob})
        server.wait_for(lambda: manager.slow_consumer_disconnects == dropped + 1)
        return slow

    with serve(lambda: create_app(settings), settings) as server:
        connections = server.server.server_state.connections  # uvicorn's own: the sockets it holds
        first = drop_a_slow_client(server)
        # uvicorn closes a socket only once its write buffer drains, which a client that never reads never does
        server.wait_for(lambda: not connections, timeout=WebSocketProtocol.linger + 5)
        second = drop_a_slow_client(server)
        store = server.app.state.store
        started = time.monotonic()
    # the server stopped with the second client's socket still held: its lifespan ended all the same
    assert not store.writing, "the lifespan's end (store flush and close) never ran"
    assert time.monotonic() - started < 10
    first.close()
    second.close()


def test_data_dir_is_the_spaces_persistent_storage_when_mounted(tmp_path: Path) -> None:
    from config import default_data_dir

    assert default_data_dir(tmp_path / "not-mounted") == Path("data")
    mounted = tmp_path / "data"
    mounted.mkdir()
    assert default_data_dir(mounted) == mounted
    mounted.chmod(0o500)
    try:
        expected = mounted if os.access(mounted, os.W_OK) else Path("data")  # root writes anywhere
        assert default_data_dir(mounted) == expected
    finally:
        mounted.chmod(0o700)
