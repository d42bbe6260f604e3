"""The spec's WebSocket protocol, on every endpoint, against a real uvicorn server."""

from __future__ import annotations

import re

import pytest
from websockets.exceptions import ConnectionClosed

from models.catalog import ENDPOINTS, SERVICE_NAMES, Endpoint, Group, grouped, services_in
from tests.support.server import LiveServer
from tests.support.wsclient import Client

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ALL_PATHS = [(ep, path) for ep in ENDPOINTS for path in (ep.path, *ep.aliases)]


def assert_envelope(message: dict) -> None:
    assert {"service", "type", "data", "timestamp"} <= message.keys()
    assert ISO_Z.match(message["timestamp"]), message["timestamp"]


@pytest.mark.parametrize(("endpoint", "path"), ALL_PATHS, ids=[p for _, p in ALL_PATHS])
def test_every_endpoint_greets_and_auto_subscribes(live_server: LiveServer, endpoint: Endpoint, path: str) -> None:
    with Client(live_server.ws, path) as client:
        hello = client.recv()
        assert_envelope(hello)
        assert hello["type"] == "connection_established" and hello["service"] == "system"
        assert re.match(r"^client_\d+_\d+$", hello["data"]["client_id"])
        assert hello["client_id"] == hello["data"]["client_id"]  # where the origin's clients read it
        assert hello["data"]["endpoint"] == path
        assert hello["data"]["services"] == list(endpoint.services)
        if endpoint.welcome:
            welcome = client.recv()
            assert welcome["type"] == "welcome" and welcome["service"] == "system"
            assert welcome["data"]["message"] == "Connected to master WebSocket endpoint"
            assert welcome["data"]["available_services"] == grouped()
            assert set(welcome["data"]["usage"]) == {"subscribe", "unsubscribe", "get_status", "ping"}
            assert welcome["data"]["usage"]["subscribe"] == {"action": "subscribe", "service": "service_name"}
        if endpoint.auto_subscribe:
            confirmed = client.recv_type("subscription_confirmed")
            assert set(endpoint.auto_subscribe) <= set(confirmed["data"]["subscriptions"])
        status = client.request({"action": "get_status"}, "status")
        assert sorted(status["data"]["subscriptions"]) == sorted(endpoint.auto_subscribe)


def test_dedicated_endpoint_sends_snapshot_after_confirmation(live_server: LiveServer) -> None:
    live_server.wait_for(lambda: live_server.app.state.hub.latest("market_data") is not None)
    with Client(live_server.ws, "/ws/market_data") as client:
        client.recv_type("connection_established")
        confirmed = client.recv()
        assert confirmed["type"] == "subscription_confirmed"
        assert confirmed["data"]["service"] == "market_data"
        snapshot = client.recv()
        assert snapshot["type"] == "update" and snapshot["service"] == "market_data"
        assert snapshot["seq"] == live_server.app.state.hub.seq("market_data")
        assert {"prices", "volumes", "market_caps", "price_changes", "source", "timestamp"} <= snapshot["data"].keys()


def test_subscribe_unsubscribe_status_ping_as_in_the_spec(live_server: LiveServer) -> None:
    with Client(live_server.ws, "/ws/master") as client:
        client.recv_type("welcome")
        confirmed = client.request({"action": "subscribe", "service": "whale_tracking"}, "subscription_confirmed")
        assert confirmed["service"] == "system" and confirmed["data"]["service"] == "whale_tracking"
        client.request({"action": "subscribe", "service": "market_data"}, "subscription_confirmed")
        status = client.request({"action": "get_status"}, "status")
        assert_envelope(status)
        data = status["data"]
        assert {"client_id", "connected_at", "last_activity", "subscriptions", "total_clients"} <= data.keys()
        assert sorted(data["subscriptions"]) == ["market_data", "whale_tracking"]
        assert data["total_clients"] >= 1
        assert ISO_Z.match(data["connected_at"]) and ISO_Z.match(data["last_activity"])
        gone = client.request({"action": "unsubscribe", "service": "market_data"}, "unsubscription_confirmed")
        assert gone["data"]["service"] == "market_data" and gone["data"]["subscriptions"] == ["whale_tracking"]
        pong = client.request({"action": "ping", "data": {"custom": "data"}}, "pong")
        assert pong == {"service": "system", "type": "pong", "data": {"custom": "data"},
                        "timestamp": pong["timestamp"]}
        assert client.request({"action": "ping"}, "pong")["data"] == {}


def test_all_then_unsubscribe_one_keeps_the_others(live_server: LiveServer) -> None:
    with Client(live_server.ws, "/ws") as client:
        client.recv_type("connection_established")
        confirmed = client.request({"action": "subscribe", "service": "all"}, "subscription_confirmed")
        assert confirmed["data"]["services"] == list(SERVICE_NAMES)
        client.request({"action": "unsubscribe", "service": "news"}, "unsubscription_confirmed")
        subs = client.request({"action": "get_status"}, "status")["data"]["subscriptions"]
        assert sorted(subs) == sorted(set(SERVICE_NAMES) - {"news"})
        live_server.publish("news", {"articles": [], "sources": [], "categories": [], "timestamp": "t"})
        live_server.publish("persistence", {"storage_location": "x", "timestamp": "t"})
        update = client.recv_type("update", service="persistence")
        assert not any(m["service"] == "news" and m["type"] == "update" for m in client.seen)
        assert update["data"]["storage_location"] == "x"
        client.request({"action": "unsubscribe", "service": "all"}, "unsubscription_confirmed")
        assert client.request({"action": "get_status"}, "status")["data"]["subscriptions"] == []


def test_group_endpoints_accept_only_their_services(live_server: LiveServer) -> None:
    for path, group in (("/ws/data", Group.DATA_COLLECTION), ("/ws/monitoring", Group.MONITORING),
                        ("/ws/integration", Group.INTEGRATION)):
        mine = services_in(group)
        other = next(s for s in SERVICE_NAMES if s not in mine)
        with Client(live_server.ws, path) as client:
            client.recv_type("connection_established")
            error = client.request({"action": "subscribe", "service": other}, "error")
            assert error["data"]["message"].startswith("Invalid service")
            for name in mine:
                assert name in error["data"]["message"]
            assert set(mine) <= set(error["data"]["available_services"])
            assert other not in error["data"]["available_services"]
            ok = client.request({"action": "subscribe", "service": mine[0]}, "subscription_confirmed")
            assert ok["data"]["subscriptions"] == [mine[0]]
            everything = client.request({"action": "subscribe", "service": "all"}, "subscription_confirmed")
            assert sorted(everything["data"]["subscriptions"]) == sorted(mine)


BAD_INPUTS = [
    ("not json", "Invalid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('"text"', "must be a JSON object"),
    ("{}", "Missing 'action'"),
    ('{"action": 5}', "Unknown action"),
    ('{"action": "dance"}', "Unknown action"),
    ('{"action": "subscribe"}', "Missing 'service'"),
    ('{"action": "subscribe", "service": 42}', "Invalid service"),
    ('{"action": "unsubscribe", "service": ["a"]}', "Invalid service"),
    ('{"action": "subscribe", "service": "bogus"}', "Invalid service"),
    ('{"action": "ping", "id": {"x": 1}}', "Invalid 'id'"),
]


@pytest.mark.parametrize(("raw", "expected"), BAD_INPUTS)
def test_bad_input_is_answered_and_the_socket_survives(live_server: LiveServer, raw: str, expected: str) -> None:
    with Client(live_server.ws, "/ws") as client:
        client.recv_type("connection_established")
        error = client.request(raw, "error")
        assert_envelope(error)
        assert error["service"] == "system"
        assert error["data"]["message"].startswith(expected) or expected in error["data"]["message"]
        if "service" in raw and "Invalid service" in expected:
            assert "market_data" in error["data"]["available_services"]
        assert client.request({"action": "ping"}, "pong")["type"] == "pong"  # still alive


def test_binary_frame_is_answered(live_server: LiveServer) -> None:
    with Client(live_server.ws, "/ws") as client:
        client.recv_type("connection_established")
        error = client.request(b"\x00\xffbinary", "error")
        assert "Binary frames" in error["data"]["message"]
        assert client.request({"action": "ping"}, "pong")


def test_unknown_service_error_matches_the_spec_example(live_server: LiveServer) -> None:
    with Client(live_server.ws, "/ws/master") as client:
        client.recv_type("welcome")
        error = client.request({"action": "subscribe", "service": "nonexistent"}, "error")
        assert error["data"]["message"].startswith("Invalid service")
        assert set(SERVICE_NAMES) | {"system", "all"} == set(error["data"]["available_services"])


def test_request_id_is_echoed(live_server: LiveServer) -> None:
    with Client(live_server.ws, "/ws") as client:
        client.recv_type("connection_established")
        assert client.request({"action": "ping", "id": 41}, "pong")["id"] == 41
        assert client.request({"action": "subscribe", "service": "news", "id": "sub-1"},
                              "subscription_confirmed")["id"] == "sub-1"
        assert client.request({"action": "get_status", "id": "s"}, "status")["id"] == "s"
        assert client.request({"action": "subscribe", "service": "zzz", "id": 9}, "error")["id"] == 9
        assert "id" not in client.request({"action": "ping"}, "pong")


def test_seq_rises_by_one_per_update(live_server: LiveServer) -> None:
    with Client(live_server.ws, "/ws/persistence") as client:
        client.recv_type("subscription_confirmed")
        first = live_server.publish("persistence", {"n": 1}).seq
        for n in range(2, 6):
            live_server.publish("persistence", {"n": n})
        seqs = [client.recv_type("update", service="persistence")["seq"] for _ in range(5)]
        assert seqs == list(range(first, first + 5))


def test_stats_follow_connects_and_disconnects(live_server: LiveServer) -> None:
    import httpx

    def stats() -> dict:
        body = httpx.get(live_server.base + "/ws/stats").json()
        assert body["status"] == "success" and ISO_Z.match(body["timestamp"])
        return body["data"]

    before = stats()["total_connections"]
    a, b = Client(live_server.ws, "/ws/market_data"), Client(live_server.ws, "/ws/news")
    a.recv_type("subscription_confirmed")
    b.recv_type("subscription_confirmed")
    data = stats()
    assert data["total_connections"] == before + 2
    ids = {c["client_id"] for c in data["clients"]}
    assert len(ids) == data["total_connections"]
    client = next(c for c in data["clients"] if c["subscriptions"] == ["news"])
    assert {"client_id", "connected_at", "last_activity", "subscriptions"} <= client.keys()
    assert data["subscription_counts"]["market_data"] >= 1 and data["subscription_counts"]["news"] >= 1
    a.close()
    live_server.wait_for(lambda: stats()["total_connections"] == before + 1)
    assert "market_data" not in stats()["subscription_counts"]
    b.close()
    live_server.wait_for(lambda: stats()["total_connections"] == before)


def test_oversized_message_closes_with_1009(live_server: LiveServer) -> None:
    with Client(live_server.ws, "/ws") as client:
        client.recv_type("connection_established")
        client.send('{"action": "ping", "data": "' + "x" * (70 * 1024) + '"}')
        with pytest.raises(ConnectionClosed) as closed:
            client.recv_until(lambda m: False, timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_flooding_client_gets_an_error_then_1008(live_server: LiveServer) -> None:
    with Client(live_server.ws, "/ws") as client:
        client.recv_type("connection_established")
        try:
            for _ in range(200):
                client.send({"action": "ping"})
        except ConnectionClosed:
            pass  # the server may close before the last of them is sent
        with pytest.raises(ConnectionClosed) as closed:
            client.recv_until(lambda m: False, timeout=10)
        errors = [m for m in client.seen if m["type"] == "error"]
        assert errors and "Rate limit exceeded" in errors[0]["data"]["message"]
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_a_message_that_cannot_be_echoed_is_answered_and_the_socket_survives(live_server: LiveServer) -> None:
    with Client(live_server.ws, "/ws") as client:
        client.recv_type("connection_established")
        # orjson reads JSON nested 300 deep, but cannot write it back
        nested = '{"action": "ping", "id": 3, "data": ' + "[" * 300 + "]" * 300 + "}"
        error = client.request(nested, "error")
        assert error["id"] == 3 and "too deeply nested" in error["data"]["message"]
        long_action = client.request({"action": "x" * 10_000}, "error")
        message = long_action["data"]["message"]
        assert message.startswith("Unknown action") and len(message) < 200
        assert client.request({"action": "ping"}, "pong")["type"] == "pong"


def test_subscribing_again_sends_no_second_snapshot(live_server: LiveServer) -> None:
    live_server.publish("persistence", {"n": 1})
    with Client(live_server.ws, "/ws") as client:
        client.recv_type("connection_established")
        client.request({"action": "subscribe", "service": "persistence"}, "subscription_confirmed")
        first = client.recv_type("update", service="persistence")
        client.request({"action": "subscribe", "service": "persistence"}, "subscription_confirmed")
        client.request({"action": "subscribe", "service": "all"}, "subscription_confirmed")
        live_server.publish("persistence", {"n": 2})
        following = client.recv_type("update", service="persistence")
        assert following["seq"] == first["seq"] + 1 and following["data"] == {"n": 2}
