"""The hub: seq, one serialisation per update, snapshots, listeners, and isolation from slow subscribers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from models.catalog import ENDPOINTS, SERVICE_NAMES
from ws.connection import Connection, ConnectionState, InboundLimiter
from ws.hub import Hub
from ws.manager import ConnectionManager, Limits
from ws.protocol import Protocol


class Sink:
    def __init__(self, capacity: int = 1000) -> None:
        self.texts: list[str] = []
        self.capacity = capacity

    def offer(self, text: str) -> bool:
        if len(self.texts) >= self.capacity:
            return False
        self.texts.append(text)
        return True


def test_publish_numbers_each_service_and_keeps_the_latest() -> None:
    hub = Hub()
    assert hub.latest("news") is None and hub.seq("news") == 0
    hub.publish("news", {"n": 1})
    hub.publish("market_data", {"n": 1})
    update = hub.publish("news", {"n": 2})
    assert update.seq == 2 and hub.seq("market_data") == 1
    message = json.loads(update.text)
    assert message["service"] == "news" and message["type"] == "update" and message["seq"] == 2
    assert message["data"] == {"n": 2} and message["timestamp"].endswith("Z")
    assert hub.latest("news") is update and hub.latest_data("news") == {"n": 2}


def test_every_subscriber_gets_the_same_serialised_text() -> None:
    hub = Hub()
    sinks = [Sink() for _ in range(3)]
    hub.subscribe(sinks[0], ["news"])
    hub.subscribe(sinks[1], ["news", "market_data"])
    hub.subscribe(sinks[2], ["market_data"])
    update = hub.publish("news", {"x": 1})
    assert sinks[0].texts[0] is update.text and sinks[1].texts[0] is update.text  # one object, not copies
    assert sinks[2].texts == []
    assert hub.subscription_counts() == {"news": 2, "market_data": 2}
    hub.unsubscribe(sinks[1], ["news", "market_data"])
    assert hub.subscription_counts() == {"news": 1, "market_data": 1}


def test_a_full_subscriber_is_counted_and_does_not_affect_others() -> None:
    hub = Hub()
    full, fine = Sink(capacity=1), Sink()
    hub.subscribe(full, ["news"])
    hub.subscribe(fine, ["news"])
    for n in range(5):
        hub.publish("news", {"n": n})
    assert len(fine.texts) == 5 and len(full.texts) == 1
    assert hub.dropped == 4 and hub.delivered == 6


def test_listeners_see_every_update_and_a_failing_one_does_not_stop_the_stream() -> None:
    hub = Hub()
    seen: list[int] = []

    def broken(update: object) -> None:
        raise RuntimeError("listener bug")

    hub.add_listener(broken)
    hub.add_listener(lambda u: seen.append(u.seq))
    hub.publish("news", {})
    hub.publish("news", {})
    assert seen == [1, 2]


def test_restore_continues_seq_and_serves_the_snapshot() -> None:
    hub = Hub()
    hub.restore("news", 41, "2026-01-01T00:00:00.000Z", {"articles": []})
    assert hub.seq("news") == 41
    assert json.loads(hub.latest("news").text)["seq"] == 41
    assert hub.publish("news", {}).seq == 42
    hub.restore("news", 10, "2026-01-01T00:00:00.000Z", {})  # older than what we have: ignored
    assert hub.seq("news") == 42


@pytest.mark.parametrize(("sent", "expected"), [
    (20, ["ok"] * 20),
    (22, ["ok"] * 20 + ["warn", "drop"]),
    (42, ["ok"] * 20 + ["warn"] + ["drop"] * 20 + ["close"]),
])
def test_inbound_limiter_warns_then_closes(sent: int, expected: list[str]) -> None:
    limiter = InboundLimiter(20)
    assert [limiter.check(100.5) for _ in range(sent)] == expected


def test_inbound_limiter_counts_a_client_that_keeps_going_across_seconds() -> None:
    limiter = InboundLimiter(5)
    verdicts = [limiter.check(second + i / 100) for second in range(10, 20) for i in range(8)]
    assert verdicts.count("warn") == 1 and "close" in verdicts
    calm = InboundLimiter(5)
    assert "close" not in [calm.check(second + i / 10) for second in range(10, 200) for i in range(5)]


def test_an_update_that_cannot_be_serialised_uses_no_seq() -> None:
    hub = Hub()
    sink = Sink()
    hub.subscribe(sink, ["news"])
    hub.publish("news", {"n": 1})
    with pytest.raises(TypeError):
        hub.publish("news", {"n": 2**70})  # orjson writes no integer above 64 bits
    assert hub.seq("news") == 1 and hub.latest_data("news") == {"n": 1} and len(sink.texts) == 1
    assert hub.publish("news", {"n": 3}).seq == 2  # no gap for the update that never existed


# -- the protocol, without a socket ---------------------------------------------------------------------

def queued(conn: Connection) -> list[dict]:
    return [json.loads(text) for text in conn._queue]


def test_the_all_greeting_fits_the_smallest_send_queue(tmp_path: Path) -> None:
    from tests.conftest import make_settings

    with pytest.raises(ValidationError):
        make_settings(tmp_path, ws_send_queue=8)
    smallest = make_settings(tmp_path, ws_send_queue=16).ws_send_queue
    hub = Hub()
    for service in SERVICE_NAMES:
        hub.publish(service, {"n": 1})
    manager = ConnectionManager(hub, Limits(send_queue=smallest))
    endpoint = next(ep for ep in ENDPOINTS if ep.path == "/ws/all")
    conn = Connection(None, endpoint.path, smallest)  # type: ignore[arg-type]  # nothing is sent here
    manager._greet(conn, endpoint, endpoint.path, manager._protocol(endpoint, endpoint.path))
    assert conn.state is ConnectionState.OPEN
    assert [m["type"] for m in queued(conn)] == ["connection_established", "subscription_confirmed",
                                                *["update"] * len(SERVICE_NAMES)]


def test_a_bug_while_handling_a_message_is_answered_not_fatal() -> None:
    class BrokenHub(Hub):
        def subscribe(self, subscriber: object, services: object) -> None:
            raise RuntimeError("hub bug")

    protocol = Protocol(BrokenHub(), "/ws", SERVICE_NAMES, lambda: 1)
    conn = Connection(None, "/ws", 64)  # type: ignore[arg-type]
    protocol.handle_text(conn, '{"action": "subscribe", "service": "news", "id": 7}')
    [reply] = queued(conn)
    assert reply["type"] == "error" and reply["id"] == 7 and "Internal error" in reply["data"]["message"]
    assert conn.state is ConnectionState.OPEN
