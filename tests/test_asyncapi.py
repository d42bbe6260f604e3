"""The AsyncAPI document: valid for the AsyncAPI project's own parser, served as JSON, YAML and a page, and true:
real messages of every type and of every service, captured from a running server, validate against it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from api.contracts import rendered
from models.asyncapi import EXAMPLES, build_asyncapi, channel_id, update_key
from models.catalog import ENDPOINTS, SERVICE_NAMES
from models.messages import MessageType
from models.wire import SYSTEM_MODELS, UPDATE_MODELS
from tests.support.server import LiveServer
from tests.support.wsclient import Client, Message
from ws.fanout import notice
from ws.hub import Hub

PARSER_DIR = Path(__file__).parent / "asyncapi"
DOCUMENT = build_asyncapi()


def validate(document: dict[str, Any], key: str, message: Any) -> None:
    """``message`` against the payload schema of components/messages/``key``, refs resolved in the document."""
    schema = {**document, "$ref": f"#/components/messages/{key}/payload"}
    jsonschema.Draft202012Validator(schema).validate(message)


def message_key(message: Message) -> str:
    return update_key(message["service"]) if message["type"] == "update" else message["type"]


def needs(tool: str, hint: str) -> None:
    """Missing tools skip a test locally and fail it in CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{tool} is missing: {hint}")
    pytest.skip(f"{tool} is missing: {hint}")


# -- the document -------------------------------------------------------------------------------------------

def node_with(package: str) -> str:
    """The node binary, once ``package`` is installed under tests/asyncapi."""
    node = shutil.which("node")
    if node is None:
        needs("node", "install Node.js")
    if not (PARSER_DIR / "node_modules" / package).is_dir():
        needs(package, f"run `npm ci` in {PARSER_DIR}")
    assert node is not None
    return node


def run_node(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=180, check=False, cwd=PARSER_DIR)


def test_the_asyncapi_parser_finds_no_error(tmp_path: Path) -> None:
    node = node_with("@asyncapi/parser")
    path = tmp_path / "asyncapi.json"
    path.write_bytes(rendered("example.org", "wss", "json"))
    result = run_node(node, str(PARSER_DIR / "validate.mjs"), str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid: AsyncAPI 3.0.0, 16 channels" in result.stdout


def test_every_endpoint_is_a_channel_with_every_action_and_message() -> None:
    paths = [p for e in ENDPOINTS for p in (e.path, *e.aliases)]
    assert [c["address"] for c in DOCUMENT["channels"].values()] == paths
    assert "/ws/ai" in paths
    messages = DOCUMENT["components"]["messages"]
    assert set(messages) == {"subscribe", "unsubscribe", "get_status", "ping", *(t.value for t in MessageType
                             if t is not MessageType.UPDATE), *(update_key(s) for s in SERVICE_NAMES)}
    master = DOCUMENT["channels"][channel_id("/ws/master")]["messages"]
    assert "welcome" in master and "welcome" not in DOCUMENT["channels"]["ws"]["messages"]
    data = DOCUMENT["channels"][channel_id("/ws/data")]["messages"]
    assert "update_market_data" in data and "update_scheduler" not in data
    for operation in DOCUMENT["operations"].values():  # every message an operation names is its channel's
        channel = operation["channel"]["$ref"].rsplit("/", 1)[1]
        for ref in operation["messages"] + operation.get("reply", {}).get("messages", []):
            assert ref["$ref"].startswith(f"#/channels/{channel}/messages/")


def test_the_additions_are_declared_optional() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    update = schemas["MarketDataUpdate"]
    assert {"seq", "service", "type", "data", "timestamp"} <= set(update["required"])
    for optional in ("id", "epoch", "restored", "recovered"):
        assert optional in update["properties"] and optional not in update["required"]
    assert "since" in schemas["Subscribe"]["properties"] and "since" not in schemas["Subscribe"]["required"]
    assert set(schemas["Since"]["required"]) == {"seq", "epoch"}
    confirmed = schemas["SubscriptionConfirmedData"]["properties"]
    assert {"recovered", "epoch", "reason"} <= set(confirmed)
    payload = schemas["MarketDataPayload"]["properties"]  # the freshness fields
    assert {"status", "fetched_at", "age_seconds", "data_source", "providers", "data_time"} <= set(payload)


def test_client_examples_and_bad_actions_against_the_schemas() -> None:
    for action, examples in EXAMPLES.items():
        for example in examples:
            validate(DOCUMENT, action.value, example)
    for bad in ({"action": "subscribe"}, {"action": "subscribe", "service": "nope"},
                {"action": "ping", "id": "x" * 65}, {"action": "subscribe", "service": "news", "since": {"seq": 1}}):
        with pytest.raises(jsonschema.ValidationError):
            validate(DOCUMENT, str(bad["action"]), bad)


# -- served -------------------------------------------------------------------------------------------------

def test_served_as_json_yaml_and_a_page(live_server: LiveServer) -> None:
    base = live_server.base
    as_json = httpx.get(f"{base}/asyncapi.json").json()
    as_yaml = yaml.safe_load(httpx.get(f"{base}/asyncapi.yaml").text)
    assert as_json == as_yaml
    assert as_json["servers"]["this"] == {"host": base.removeprefix("http://"), "protocol": "ws",
                                          "description": "The server serving this document"}
    behind_proxy = httpx.get(f"{base}/asyncapi.json", headers={"x-forwarded-proto": "https",
                                                               "x-forwarded-host": "space.hf.example"}).json()
    assert behind_proxy["servers"]["this"]["host"] == "space.hf.example"
    assert behind_proxy["servers"]["this"]["protocol"] == "wss"
    page = httpx.get(f"{base}/asyncapi")
    assert page.headers["content-type"].startswith("text/html")
    assert "/ws/market_data" in page.text and "update: market_data" in page.text and "<script" not in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    openapi = httpx.get(f"{base}/openapi.json").json()
    assert not any(path.startswith("/asyncapi") for path in openapi["paths"])
    dashboard = httpx.get(f"{base}/config").json()  # what Gradio renders the page from
    assert 'href="/asyncapi"' in json.dumps(dashboard, ensure_ascii=False).replace('\\"', '"')


# -- real messages ------------------------------------------------------------------------------------------

def capture_system_messages(server: LiveServer) -> list[tuple[str, Message]]:
    """(endpoint, message) for every system message type, from the endpoints that send them."""
    captured: list[tuple[str, Message]] = []
    for endpoint in ENDPOINTS:
        for path in (endpoint.path, *endpoint.aliases):
            with Client(server.ws, path) as client:
                client.recv_type("connection_established")
                if endpoint.welcome:
                    client.recv_type("welcome")
                client.request({"action": "get_status", "id": 1}, "status")
                captured += [(path, m) for m in client.seen]
    with Client(server.ws, "/ws/data") as client:
        client.recv_type("connection_established")
        for request, reply in [
            ({"action": "subscribe", "service": "all", "id": "s"}, "subscription_confirmed"),
            ({"action": "subscribe", "service": "system"}, "subscription_confirmed"),
            ({"action": "unsubscribe", "service": "news", "id": 2.5}, "unsubscription_confirmed"),
            ({"action": "ping", "data": {"nested": [1, {"a": None}]}, "id": 3}, "pong"),
            ({"action": "ping"}, "pong"),
            ("not json", "error"), ([1], "error"), ({"action": "dance"}, "error"),
            ({"action": "subscribe", "service": "scheduler"}, "error"),  # not served on /ws/data
            ({"action": "subscribe"}, "error"), ({"action": "ping", "id": {"no": 1}}, "error"),
        ]:
            client.request(request, reply)
        captured += [("/ws/data", m) for m in client.seen]
    return captured


def test_real_messages_of_every_type_and_service_validate(live_server: LiveServer) -> None:
    hub = live_server.app.state.hub
    live_server.wait_for(lambda: all(hub.latest(s) is not None for s in SERVICE_NAMES), timeout=60)
    document = httpx.get(f"{live_server.base}/asyncapi.json").json()
    captured = capture_system_messages(live_server)
    with Client(live_server.ws, "/ws/all") as client:  # every service's snapshot
        client.recv_until(lambda _: {m["service"] for m in client.seen if m["type"] == "update"}
                          >= set(SERVICE_NAMES), timeout=30)
        captured += [("/ws/all", m) for m in client.seen]
    with Client(live_server.ws, "/ws/market_data") as client:  # and one published while subscribed
        client.recv_type("update", service="market_data")
        live_server.call(lambda: hub.publish("market_data", hub.latest_data("market_data")))
        published = client.recv_until(lambda m: m["type"] == "update" and m["seq"] == hub.seq("market_data"))
        captured.append(("/ws/market_data", published))
    restored = Hub()  # after a restart: the stored update as the snapshot, marked restored
    restored.restore("market_data", 7, "2026-11-29T10:00:00.000Z", hub.latest_data("market_data"))
    snapshot = restored.latest("market_data")
    assert snapshot is not None
    captured.append(("/ws/market_data", json.loads(snapshot.text)))
    assert captured[-1][1]["restored"] is True
    captured.append(("/ws/market_data", redis_notice()))  # only a replica on Redis sends one: made by its code
    seen = {message_key(m) for _, m in captured}
    assert seen == set(document["components"]["messages"]) - {"subscribe", "unsubscribe", "get_status", "ping"}
    assert {m["type"] for _, m in captured} == {t.value for t in MessageType}
    for path, message in captured:
        key = message_key(message)
        validate(document, key, message)
        if message["type"] == "update":  # and against the models the document was generated from
            UPDATE_MODELS[message["service"]].model_validate(message)
        else:
            SYSTEM_MODELS[MessageType(message["type"])].model_validate(message)
        assert key in document["channels"][channel_id(path)]["messages"], (path, key)
    assert len(SYSTEM_MODELS) == len(MessageType) - 1
    typescript_accepts(document, captured)


def redis_notice() -> Message:
    """The notice a replica sends its clients when Redis becomes unreachable, as ws.fanout.notice writes it."""
    texts: list[str] = []

    class Subscriber:
        def offer(self, text: str) -> bool:
            texts.append(text)
            return True

    hub = Hub()
    hub.subscribe(Subscriber(), ["market_data"])
    notice(hub, {"redis": "unreachable", "since": "2026-11-29T10:00:00.000Z",
                 "message": "Redis is unreachable: no updates until it is back; stay connected"})
    message: Message = json.loads(texts[0])
    return message


def typescript_accepts(document: dict[str, Any], captured: list[tuple[str, Message]]) -> None:
    """The README's client generation, kept true: Modelina's TypeScript types of the document take every captured
    message (each as a literal of its type: tsc --strict checks excess properties too)."""
    node = node_with("@asyncapi/modelina")
    node_with("typescript")
    with tempfile.TemporaryDirectory() as folder:
        source, types = Path(folder) / "asyncapi.json", Path(folder) / "check.ts"
        source.write_text(json.dumps(document))
        generated = run_node(node, str(PARSER_DIR / "generate-typescript.mjs"), str(source), str(types))
        assert generated.returncode == 0, generated.stdout + generated.stderr
        names = {key: message["payload"]["$ref"].rsplit("/", 1)[1]
                 for key, message in document["components"]["messages"].items()}
        literals = [f"const m{i}: {names[message_key(m)]} = {json.dumps(m)};" for i, (_, m) in enumerate(captured)]
        requests = [(action, example) for action, examples in EXAMPLES.items() for example in examples]
        literals += [f"const c{i}: {names[a.value]} = {json.dumps(e)};" for i, (a, e) in enumerate(requests)]
        types.write_text(types.read_text() + "\n".join(literals) + "\n")
        config = {"compilerOptions": {"strict": True, "noEmit": True, "target": "es2020", "types": []},
                  "files": [str(types)]}
        (Path(folder) / "tsconfig.json").write_text(json.dumps(config))
        checked = run_node(node, str(PARSER_DIR / "node_modules" / "typescript" / "bin" / "tsc"), "-p", folder)
        assert checked.returncode == 0, checked.stdout[-5000:] + checked.stderr[-2000:]
