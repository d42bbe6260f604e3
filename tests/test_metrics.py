"""GET /metrics of a real server (replay mode): every family an operator needs exists, parses, and moves."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from fastapi import FastAPI
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed

from app import create_app
from tests.support.paths import ROOT
from tests.support.server import LiveServer
from tests.support.settings import make_settings
from tests.support.wsclient import Client
from tests.test_app import raw_websocket
from ws.hub import Hub
from ws.metrics import WebSocketCollector, depth_buckets

P = "crypto_monitor_"

#: Family name -> its type, as an operator's dashboards and alerts name them.
FAMILIES = {
    P + "ws_connections": "gauge",
    P + "ws_connections_opened": "counter",
    P + "ws_subscriptions": "gauge",
    P + "updates_published": "counter",
    P + "updates_delivered": "counter",
    P + "updates_dropped": "counter",
    P + "ws_send_queue_depth": "histogram",
    P + "ws_disconnects": "counter",
    P + "ws_inbound_messages": "counter",
    P + "ws_inbound_errors": "counter",
    P + "provider_requests": "counter",
    P + "provider_request_duration_seconds": "histogram",
    P + "provider_circuit_state": "gauge",
    P + "provider_healthy": "gauge",
    P + "job_duration_seconds": "histogram",
    P + "job_last_success_timestamp_seconds": "gauge",
    P + "job_interval_seconds": "gauge",
    P + "store_batch_duration_seconds": "histogram",
    P + "store_rows_written": "counter",
    P + "store_pending": "gauge",
    P + "sentiment_texts": "counter",
    P + "sentiment_batch_duration_seconds": "histogram",
    P + "event_loop_lag_seconds": "histogram",
    "process_resident_memory_bytes": "gauge",
}


class Scrape:
    """One scrape of /metrics, parsed by prometheus-client's own parser."""

    def __init__(self, server: LiveServer) -> None:
        response = httpx.get(server.base + "/metrics", timeout=10)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        self.families: dict[str, Metric] = {f.name: f for f in text_string_to_metric_families(response.text)}

    def value(self, sample: str, **labels: str) -> float:
        """The sum of the samples named ``sample`` whose labels include ``labels`` (0 when there are none)."""
        family = self.families[_family_of(sample)]
        return sum(s.value for s in family.samples
                   if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()))

    def labels(self, sample: str, label: str) -> set[str]:
        family = self.families[_family_of(sample)]
        return {s.labels[label] for s in family.samples if s.name == sample and label in s.labels}


def _family_of(sample: str) -> str:
    for suffix in ("_total", "_count", "_sum", "_bucket"):
        if sample.endswith(suffix):
            return sample.removesuffix(suffix)
    return sample


def moved(server: LiveServer, sample: str, above: float = 0, **labels: str) -> bool:
    return Scrape(server).value(sample, **labels) > above


def test_metrics_of_a_running_server_exist_parse_and_move(live_server: LiveServer) -> None:
    server = live_server
    scheduler = server.app.state.scheduler
    server.wait_for(lambda: all(stats.runs >= 1 for stats in scheduler.stats.values()), timeout=60)
    before = Scrape(server)
    for name, kind in FAMILIES.items():
        assert name in before.families, name
        assert before.families[name].type == kind, name

    openmetrics = httpx.get(server.base + "/metrics", headers={"Accept": "application/openmetrics-text"}, timeout=10)
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")

    # Every stream has run once: its provider calls, its job run, the store's batch are all counted.
    assert before.value(P + "provider_requests_total", provider="coingecko", outcome="ok") >= 1
    assert before.value(P + "provider_request_duration_seconds_count", provider="coingecko") >= 1
    assert {"closed", "open", "half_open"} == before.labels(P + "provider_circuit_state", "state")
    assert before.value(P + "provider_circuit_state", provider="coingecko") == 1  # one state at a time
    assert before.value(P + "job_duration_seconds_count", service="market_data", result="published") >= 1
    assert before.value(P + "job_last_success_timestamp_seconds", service="market_data") > 1.7e9
    assert before.value(P + "job_interval_seconds", service="market_data") == 5 * 100  # INTERVAL_SCALE 100
    assert before.value(P + "updates_published_total", service="market_data") >= 1
    server.wait_for(lambda: moved(server, P + "store_batch_duration_seconds_count", outcome="ok"))
    server.wait_for(lambda: moved(server, P + "event_loop_lag_seconds_count"))

    # WebSocket activity: a subscriber, a bad message, an oversized one, a flood, a client that stops reading.
    with Client(server.ws, "/ws/market_data") as client:
        client.recv_type("subscription_confirmed")
        client.request("not json", "error")
        client.request({"action": "ping"}, "pong")
        during = Scrape(server)
        assert during.value(P + "ws_connections", endpoint="/ws/market_data") == 1
        assert during.value(P + "ws_subscriptions", service="market_data") == 1
        assert during.value(P + "ws_send_queue_depth_count") == 1
        assert during.value(P + "ws_send_queue_depth_bucket", le="+Inf") == 1
        server.publish("market_data", {"n": 1})
        client.recv_until(lambda m: m["type"] == "update" and m["data"] == {"n": 1})
    with Client(server.ws, "/ws") as big:
        big.recv_type("connection_established")
        big.send('{"action": "ping", "data": "' + "x" * (70 * 1024) + '"}')
        with pytest.raises(ConnectionClosed):
            big.recv_until(lambda m: False, timeout=5)
    with Client(server.ws, "/ws") as flood:
        flood.recv_type("connection_established")
        flood.flood_until_closed()
    manager = server.app.state.manager
    server.wait_for(lambda: manager.count == 0)  # the others are gone: the one connection next is the slow one
    slow = raw_websocket(server.base, "/ws/persistence")
    try:
        server.wait_for(lambda: manager.count == 1)
        for n in range(150):  # 7.5 MB: more than the client's buffers and its queue hold
            server.publish("persistence", {"n": n, "blob": "x" * 50_000})
        server.wait_for(lambda: manager.slow_consumer_disconnects == 1)
    finally:
        slow.close()
    server.wait_for(lambda: manager.count == 0)
    response = httpx.post(server.base + "/api/sentiment", json={"texts": ["Bitcoin rallies to a record high"]},
                          timeout=30)
    assert response.status_code == 200

    after = Scrape(server)
    assert after.value(P + "ws_connections_opened_total") == 4
    assert after.value(P + "ws_connections") == 0
    assert after.value(P + "ws_disconnects_total", reason="normal") == 1
    assert after.value(P + "ws_disconnects_total", reason="oversize") == 1
    assert after.value(P + "ws_disconnects_total", reason="slow_consumer") == 1
    assert after.value(P + "ws_disconnects_total", reason="rate_limit") == 1
    assert after.value(P + "ws_inbound_messages_total", endpoint="/ws/market_data") == 2
    assert after.value(P + "ws_inbound_errors_total", endpoint="/ws/market_data") == 1
    # the one update published while the client listened (its snapshot on subscribing is no fan-out)
    assert after.value(P + "updates_delivered_total", service="market_data") == 1
    assert after.value(P + "updates_published_total", service="market_data") == (
        before.value(P + "updates_published_total", service="market_data") + 1)
    assert after.value(P + "updates_dropped_total", service="persistence") >= 1
    assert after.value(P + "sentiment_texts_total") >= 1
    assert after.value(P + "sentiment_batch_duration_seconds_count") >= 1
    # The writer thread commits in batches (every flush interval): the update published above lands by then.
    server.wait_for(lambda: moved(server, P + "store_rows_written_total",
                                  above=before.value(P + "store_rows_written_total")))
    assert after.value(P + "event_loop_lag_seconds_count") > before.value(P + "event_loop_lag_seconds_count")


def test_each_app_has_a_registry_of_its_own(tmp_path: Path) -> None:
    async def build_two() -> tuple[FastAPI, FastAPI]:  # in a running loop, as uvicorn builds them: Gradio's
        return create_app(make_settings(tmp_path / "a")), create_app(make_settings(tmp_path / "b"))

    first, second = asyncio.run(build_two())  # the global registry would refuse the second's names
    assert first.state.metrics.registry is not second.state.metrics.registry
    assert "/metrics" not in first.openapi()["paths"]  # for Prometheus, not API clients


class FakeConnection:
    def __init__(self, queued: int) -> None:
        self.queued, self.endpoint, self.received = queued, "/ws", 0


def test_send_queue_depth_is_a_histogram_of_the_queues_at_scrape_time() -> None:
    assert depth_buckets(64) == [0, 1, 2, 4, 8, 16, 32, 64]
    assert depth_buckets(20) == [0, 1, 2, 4, 8, 16, 20]
    manager: Any = SimpleNamespace(
        hub=Hub(), limits=SimpleNamespace(send_queue=64), total_connected=4,
        connections={str(i): FakeConnection(q) for i, q in enumerate((0, 0, 3, 64))},
        disconnects=lambda: {}, inbound=lambda: {})
    histogram = next(f for f in WebSocketCollector(manager).collect() if f.name == P + "ws_send_queue_depth")
    buckets = {s.labels["le"]: s.value for s in histogram.samples if s.name.endswith("_bucket")}
    assert buckets == {"0.0": 2, "1.0": 2, "2.0": 2, "4.0": 3, "8.0": 3, "16.0": 3, "32.0": 3, "64.0": 4, "+Inf": 4}
    assert next(s.value for s in histogram.samples if s.name.endswith("_sum")) == 67


# -- the README's operations section agrees with the server -------------------------------------------------

def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else len(text)]


def exposed_families(tmp_path: Path) -> set[str]:
    """Every family a fresh app exposes (labelled ones too, before their first sample)."""
    async def build() -> FastAPI:
        return create_app(make_settings(tmp_path))

    app = asyncio.run(build())
    text = generate_latest(app.state.metrics.registry).decode()
    return {f.name for f in text_string_to_metric_families(text)
            if f.name.startswith(P) and not f.name.endswith("_created")}  # the text format's creation times


def test_the_readme_lists_every_metric_and_its_alerts_parse_and_name_real_ones(tmp_path: Path) -> None:
    section = readme_section("Operations")
    families = exposed_families(tmp_path)
    documented = set(re.findall(r"`(crypto_monitor_[a-z_]+)`", section))
    documented = {_family_of(name) for name in documented}
    assert families <= documented, f"not in the README's table: {families - documented}"
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    scrape, rules = (yaml.safe_load(block) for block in blocks[:2])
    assert scrape["scrape_configs"][0]["metrics_path"] == "/metrics"
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(exprs) >= 10
    for expr in exprs:
        promql_parser.parse(expr)  # raises on a syntax error
        for name in re.findall(r"crypto_monitor_[a-z_]+", expr):
            assert _family_of(name) in families, f"{name} in an alert is not exposed"
