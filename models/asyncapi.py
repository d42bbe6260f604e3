"""The AsyncAPI 3.0 document of the WebSocket API, generated from the wire models (models/wire.py) and the endpoint
table (models/catalog.py): nothing in it is written twice.

Every endpoint (aliases included) is a channel carrying the client's actions and the server's messages it can
send: the system messages and the update of each service it serves. Operations are from the server's side:
it *receives* each action (with its reply) and *sends* updates and system messages.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema
from pydantic_core import CoreSchema

from models.catalog import API_VERSION, BY_NAME, ENDPOINTS, Endpoint
from models.messages import Action, MessageType
from models.wire import CLIENT_MODELS, SYSTEM_MODELS, UPDATE_MODELS

REF = "#/components/schemas/{model}"

DESCRIPTION = """\
The WebSocket API of Crypto API Monitor: live crypto data from free public providers, one stream per service.

Connect to an endpoint (a channel below), optionally send actions as JSON text frames, and receive JSON text
frames. Every server message is an envelope `{service, type, data, timestamp}`; a reply carries the `id` of the
client message it answers, when that had one. A bad client message gets an `error` reply and never closes the
socket. Each `update` has a per-service `seq` rising by one; right after `subscription_confirmed` comes each newly
subscribed service's latest update (the snapshot; after a restart it is the stored one, with `restored: true`).
Data payloads say how fresh they are: `status` (`ok`, `stale`, `no_data`, `partial`), `fetched_at`,
`age_seconds`, `data_source` (`live` or `replay`) and each provider's state in `providers`.

Close codes: 1008 (the inbound rate limit exceeded again after a warning), 1009 (a message over the size
limit), 1013 (the client did not read fast enough: its send queue filled up)."""

#: Which reply each action gets (besides an ``error``, which any action may get).
REPLIES: dict[Action, MessageType] = {
    Action.SUBSCRIBE: MessageType.SUBSCRIPTION_CONFIRMED, Action.UNSUBSCRIBE: MessageType.UNSUBSCRIPTION_CONFIRMED,
    Action.GET_STATUS: MessageType.STATUS, Action.PING: MessageType.PONG}

#: A request of each action, shown as the message's example.
EXAMPLES: dict[Action, list[dict[str, Any]]] = {
    Action.SUBSCRIBE: [{"action": "subscribe", "service": "market_data", "id": 1},
                       {"action": "subscribe", "service": "market_data", "since": {"seq": 41, "epoch": "e1"}}],
    Action.UNSUBSCRIBE: [{"action": "unsubscribe", "service": "all"}],
    Action.GET_STATUS: [{"action": "get_status", "id": "status-1"}],
    Action.PING: [{"action": "ping", "data": {"t": 1}}],
}


def update_key(service: str) -> str:
    return f"update_{service}"


def channel_id(path: str) -> str:
    return path.strip("/").replace("/", "_") or "root"


class _NoFieldTitles(GenerateJsonSchema):
    """Models keep their titles; fields do not get one (pydantic's "title": "Status" of a field ``status``):
    code generators name types after titles, and a field's title would clash with a model's (AsyncAPI Modelina
    made the ``status`` message's type out of a coverage entry's ``status`` field)."""

    def field_title_should_be_set(self, schema: CoreSchema) -> bool:
        return False


def schemas() -> tuple[dict[str, str], dict[str, Any]]:
    """The JSON schema of every wire model, as components/schemas: (model name -> schema name, schemas)."""
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, "validation") for m in CLIENT_MODELS.values()]
    models += [(m, "serialization") for m in (*SYSTEM_MODELS.values(), *UPDATE_MODELS.values())]
    keys, document = models_json_schema(models, ref_template=REF, schema_generator=_NoFieldTitles)
    names = {model.__name__: value["$ref"].rsplit("/", 1)[1] for (model, _), value in keys.items()}
    return names, document.get("$defs", {})


def _message(name: str, title: str, summary: str, schema: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "title": title, "summary": summary, "contentType": "application/json",
            "payload": {"$ref": REF.format(model=schema)}, **extra}


def messages(names: dict[str, str]) -> dict[str, Any]:
    """components/messages: each action, each system message type and each service's update."""
    result: dict[str, Any] = {}
    for action, model in CLIENT_MODELS.items():
        result[action.value] = _message(action.value, f"{action.value} (client)", _first_line(model.__doc__)
                                        or f"The {action.value} action", names[model.__name__],
                                        examples=[{"payload": p} for p in EXAMPLES[action]])
    for type_, server_model in SYSTEM_MODELS.items():
        result[type_.value] = _message(type_.value, type_.value, _first_line(server_model.__doc__)
                                       or f"A {type_.value} message", names[server_model.__name__])
    for service, update_model in UPDATE_MODELS.items():
        info = BY_NAME[service]
        result[update_key(service)] = _message(
            update_key(service), f"update: {service}", f"{info.description} (every {info.interval:g} s before "
            "INTERVAL_SCALE)", names[update_model.__name__])
    return result


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n")[0]


def _server_types(endpoint: Endpoint) -> list[MessageType]:
    return [t for t in SYSTEM_MODELS if t is not MessageType.WELCOME or endpoint.welcome]


def channel(endpoint: Endpoint, path: str) -> dict[str, Any]:
    refs = [a.value for a in CLIENT_MODELS] + [t.value for t in _server_types(endpoint)]
    refs += [update_key(s) for s in endpoint.services]
    lines = [endpoint.description + ".", f"Serves: {', '.join(endpoint.services)}."]
    if endpoint.auto_subscribe:
        lines.append(f"Subscribed on connect to: {', '.join(endpoint.auto_subscribe)}.")
    if path != endpoint.path:
        lines.append(f"An alias of {endpoint.path}.")
    return {"address": path, "title": path, "description": " ".join(lines),
            "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in refs}}


def operations(endpoint: Endpoint, path: str) -> dict[str, Any]:
    cid = channel_id(path)
    channel_ref = {"$ref": f"#/channels/{cid}"}

    def in_channel(key: str) -> dict[str, str]:
        return {"$ref": f"#/channels/{cid}/messages/{key}"}

    result: dict[str, Any] = {}
    for action, reply in REPLIES.items():
        result[f"{cid}.{action.value}"] = {
            "action": "receive", "channel": channel_ref, "title": f"{action.value} on {path}",
            "messages": [in_channel(action.value)],
            "reply": {"channel": channel_ref, "messages": [in_channel(reply.value), in_channel("error")]}}
    result[f"{cid}.updates"] = {
        "action": "send", "channel": channel_ref, "title": f"updates on {path}",
        "summary": "The updates of the services the client is subscribed to, as they are published",
        "messages": [in_channel(update_key(s)) for s in endpoint.services]}
    result[f"{cid}.system"] = {
        "action": "send", "channel": channel_ref, "title": f"system messages on {path}",
        "summary": "Greetings on connect, replies to actions, and errors",
        "messages": [in_channel(t.value) for t in _server_types(endpoint)]}
    return result


def build_asyncapi(host: str = "localhost:7860", protocol: str = "ws") -> dict[str, Any]:
    """The whole document; ``host`` and ``protocol`` (``ws`` or ``wss``) as clients reach this server."""
    names, schema_defs = schemas()
    channels: dict[str, Any] = {}
    ops: dict[str, Any] = {}
    for endpoint in ENDPOINTS:
        for path in (endpoint.path, *endpoint.aliases):
            channels[channel_id(path)] = channel(endpoint, path)
            ops.update(operations(endpoint, path))
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Crypto API Monitor WebSocket API", "version": API_VERSION, "description": DESCRIPTION},
        "servers": {"this": {"host": host, "protocol": protocol, "description": "The server serving this document"}},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": ops,
        "components": {"messages": messages(names), "schemas": schema_defs},
    }
