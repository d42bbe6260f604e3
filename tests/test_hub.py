"""The hub: seq, one serialisation per update, snapshots, listeners, and isolation from slow subscribers."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from models.catalog import ENDPOINTS, SERVICE_NAMES
from models.states import LimiterVerdict
from ws.connection import Connection, ConnectionState, InboundLimiter
from ws.hub import Hub
from ws.manager import ConnectionManager, Limits
from ws.protocol import CONFIRMATIONS_KEPT, Protocol


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
    update = hub.latest("news")
    assert update is not None and json.loads(update.text)["seq"] == 41
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
    assert verdicts.count(LimiterVerdict.WARN) == 1 and "close" in verdicts
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

class FakeSocket:
    """Stands in for starlette's WebSocket: records what is sent; ``receive`` waits for :meth:`hang_up`."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.gone = asyncio.Event()

    async def accept(self) -> None:
        pass

    async def send_text(self, text: str) -> None:
        self.sent.append(text)

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "websocket.disconnect"}

    async def close(self, code: int, reason: str) -> None:
        pass

    def hang_up(self) -> None:
        self.gone.set()

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.sent]


async def until_sent(conn: Connection) -> None:
    """Let the connection's sender write what is queued (or the connection close): yields, no sleeps."""
    for _ in range(10_000):
        if not conn.queued or conn.state is not ConnectionState.OPEN:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{conn.queued} messages still queued")


async def sent_by(conn: Connection, socket: FakeSocket) -> list[dict[str, Any]]:
    """Run the connection's sender until its queue is empty: the messages it wrote to the socket."""
    sender = asyncio.create_task(conn.run_sender())
    await until_sent(conn)
    sender.cancel()
    await asyncio.gather(sender, return_exceptions=True)
    return socket.messages()


async def test_the_all_greeting_fits_the_smallest_send_queue(tmp_path: Path) -> None:
    from tests.support.settings import make_settings

    with pytest.raises(ValidationError):
        make_settings(tmp_path, ws_send_queue=8)
    smallest = make_settings(tmp_path, ws_send_queue=16).ws_send_queue
    hub = Hub()
    for service in SERVICE_NAMES:
        hub.publish(service, {"n": 1})
    manager = ConnectionManager(hub, Limits(send_queue=smallest))
    endpoint = next(ep for ep in ENDPOINTS if ep.path == "/ws/all")
    socket = FakeSocket()
    serving = asyncio.create_task(manager.serve(socket, endpoint, endpoint.path))  # type: ignore[arg-type]  # a stand-in
    for _ in range(10_000):  # serve() greets before it first waits (for the client's messages)
        if manager.connections:
            break
        await asyncio.sleep(0)
    [conn] = manager.connections.values()
    await until_sent(conn)
    assert conn.state is ConnectionState.OPEN
    assert [m["type"] for m in socket.messages()] == ["connection_established", "subscription_confirmed",
                                                      *["update"] * len(SERVICE_NAMES)]
    socket.hang_up()
    await serving


async def test_a_bug_while_handling_a_message_is_answered_not_fatal() -> None:
    class BrokenHub(Hub):
        def subscribe(self, subscriber: object, services: object) -> None:
            raise RuntimeError("hub bug")

    protocol = Protocol(BrokenHub(), "/ws", SERVICE_NAMES, lambda: 1)
    socket = FakeSocket()
    conn = Connection(socket, "/ws", 64)  # type: ignore[arg-type]  # a stand-in for starlette's WebSocket
    protocol.handle_text(conn, '{"action": "subscribe", "service": "news", "id": 7}')
    [reply] = await sent_by(conn, socket)
    assert reply["type"] == "error" and reply["id"] == 7 and "Internal error" in reply["data"]["message"]
    assert conn.state is ConnectionState.OPEN


async def test_confirmations_are_serialised_once_yet_each_is_right_and_timely() -> None:
    """A reconnect storm subscribes thousands of fresh clients alike: the confirmation is a template (CONFIRMATIONS_KEPT
    per endpoint), with its own time each; a request id or another resulting set gets its own text."""
    protocol = Protocol(Hub(), "/ws", SERVICE_NAMES, lambda: 1)
    replies = []
    for request in ('{"action": "subscribe", "service": "news"}', '{"action": "subscribe", "service": "news"}',
                    '{"action": "subscribe", "service": "news", "id": "a"}'):
        socket = FakeSocket()
        conn = Connection(socket, "/ws", 64)  # type: ignore[arg-type]
        protocol.handle_text(conn, request)
        [reply] = await sent_by(conn, socket)
        replies.append(reply)
    socket = FakeSocket()
    conn = Connection(socket, "/ws", 64)  # type: ignore[arg-type]
    protocol.handle_text(conn, '{"action": "subscribe", "service": "market_data"}')
    protocol.handle_text(conn, '{"action": "subscribe", "service": "news"}')
    *_, both = await sent_by(conn, socket)
    for reply in replies:
        assert reply["type"] == "subscription_confirmed" and reply["data"]["subscriptions"] == ["news"]
        assert "\u2063" not in json.dumps(reply) and reply["timestamp"].endswith("Z")
    assert "id" not in replies[0] and replies[2]["id"] == "a"
    assert both["data"]["subscriptions"] == ["market_data", "news"] and both["data"]["service"] == "news"
    sets = list(itertools.combinations(sorted(SERVICE_NAMES), 2))[:CONFIRMATIONS_KEPT + 10]
    assert len(sets) > CONFIRMATIONS_KEPT
    for names in sets:  # the templates kept are bounded, however many sets clients make
        protocol._confirmation(names[0], (names[0],), None, list(names))
    assert len(protocol._confirmations) == CONFIRMATIONS_KEPT


def test_the_resume_rings_fill_up_to_their_bound_and_say_how_much_they_hold() -> None:
    hub = Hub(ring=5)
    assert hub.rings() == {"updates": 0, "capacity": 0, "text_bytes": 0}
    for i in range(3):
        hub.publish("market_data", {"price": i, "pad": "x" * 1000})
    partly = hub.rings()
    assert partly["updates"] == 3 and partly["capacity"] == 5 and 3000 < partly["text_bytes"] < 4000
    for i in range(50):  # far more than a ring holds: it stays at its bound
        hub.publish("market_data", {"price": i, "pad": "x" * 1000})
        hub.publish("news", {"n": i})
    full = hub.rings()
    assert full["updates"] == 10 and full["capacity"] == 10
    assert full["text_bytes"] < 5 * 1200 + 5 * 400
