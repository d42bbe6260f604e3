"""Client message -> action -> reply. Every bad input gets an ``error`` reply; none closes the socket.

Errors, all answered with ``{"service": "system", "type": "error", "data": {"message": ...}}``:

    ClientError
    |-- not JSON, binary frame, not an object, missing/unknown action      (data.available_actions)
    |-- missing, non-string or unknown service; a service this endpoint does not serve
    |                                                                     (data.available_services)
    `-- a ``since`` that is not ``{"seq": <int >= 0>, "epoch": "<text>"}``, or with "all" / "system"

An optional ``id`` in any client message is echoed at the top level of its reply (Binance, Kraken do so).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from models.catalog import ALL, SERVICE_NAMES, SYSTEM
from models.messages import ACTIONS, Action, MessageType, now_iso
from models.wire import MAX_ID_LENGTH, ErrorData, StatusData, SubscriptionConfirmedData, UnsubscriptionConfirmedData
from models.wire import system_message as encode_system
from ws.connection import Connection
from ws.hub import DEFAULT_RING, Hub

log = logging.getLogger(__name__)

MAX_ECHOED_CHARS = 100  # of a bad value quoted back in an error

#: Stands for the message's time in a reply serialised once and sent many times (no JSON escaping needed).
TIMESTAMP_MARK = "\u2063timestamp\u2063"
#: How many distinct confirmations (subscribed-to name and resulting set) are kept serialised, per endpoint.
CONFIRMATIONS_KEPT = 64


class ClientError(Exception):
    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Protocol:
    """The protocol of one endpoint: which services it serves, and how each action is carried out."""

    def __init__(self, hub: Hub, endpoint: str, services: tuple[str, ...],
                 total_clients: Callable[[], int], resume_max: int = DEFAULT_RING) -> None:
        self.hub = hub
        self.resume_max = resume_max
        self.endpoint = endpoint
        self.services = services
        self.valid_names = (*services, SYSTEM, ALL)
        self._total_clients = total_clients
        self.errors = 0  # error replies sent on this endpoint
        self._confirmations: dict[tuple[str, tuple[str, ...]], str] = {}

    # -- entry points -------------------------------------------------------------------------------
    def handle_text(self, conn: Connection, text: str) -> None:
        request_id: Any = None
        try:
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise ClientError(f"Invalid JSON: {exc}", available_actions=list(ACTIONS)) from None
            if not isinstance(message, dict):
                raise ClientError(f"Message must be a JSON object, got {type(message).__name__}",
                                  available_actions=list(ACTIONS))
            request_id = self._request_id(message)
            self._dispatch(conn, message, request_id)
        except ClientError as err:
            self.error(conn, err, request_id)
        except Exception:  # a bug of ours: this client gets an answer, the connection and everyone else go on
            log.exception("could not handle a message on %s", self.endpoint)
            self.error(conn, ClientError("Internal error: this message could not be handled"), request_id)

    def handle_binary(self, conn: Connection) -> None:
        self.error(conn, ClientError("Binary frames are not supported: send JSON text frames",
                                     available_actions=list(ACTIONS)))

    def error(self, conn: Connection, err: ClientError, request_id: Any = None) -> None:
        self.errors += 1
        conn.offer(encode_system(ErrorData(message=err.message, **err.details), MessageType.ERROR, id=request_id))

    # -- actions ------------------------------------------------------------------------------------
    def _dispatch(self, conn: Connection, message: dict[str, Any], request_id: Any) -> None:
        action = message.get("action")
        if action is None:
            raise ClientError("Missing 'action'", available_actions=list(ACTIONS))
        if not isinstance(action, str) or action not in ACTIONS:
            raise ClientError(f"Unknown action: {_shorten(action)!r}", available_actions=list(ACTIONS))
        match Action(action):
            case Action.SUBSCRIBE:
                service = self._service(message)
                since = self._since(message, service)
                if since is None:
                    self.subscribe(conn, service, request_id)
                else:
                    self.resume(conn, service, since, request_id)
            case Action.UNSUBSCRIBE:
                self.unsubscribe(conn, self._service(message), request_id)
            case Action.GET_STATUS:
                self.status(conn, request_id)
            case Action.PING:
                data = message.get("data")
                try:
                    pong = encode_system(data if data is not None else {}, MessageType.PONG, id=request_id)
                except TypeError:  # orjson reads JSON nested 1024 deep but writes only 254 levels
                    raise ClientError("Invalid 'data': too deeply nested to echo") from None
                conn.offer(pong)

    def subscribe(self, conn: Connection, name: str, request_id: Any = None) -> None:
        """Confirm, then send each newly subscribed service's latest update as its snapshot.

        A service the client already had sends none: the client has it, and a repeated ``seq`` would look like
        a fault in the stream."""
        targets = self._expand(name)
        new = [s for s in targets if s not in conn.subscriptions]
        conn.subscriptions.update(new)
        self.hub.subscribe(conn, new)
        conn.offer(self._confirmation(name, targets, request_id, sorted(conn.subscriptions)))
        for service in new:
            snapshot = self.hub.latest(service)
            if snapshot is not None:
                conn.offer(snapshot.text)

    def _confirmation(self, name: str, targets: tuple[str, ...], request_id: Any, subscriptions: list[str]) -> str:
        """subscription_confirmed, serialised once per (name, resulting set) and endpoint: every client of an
        endpoint that subscribes on connecting gets the same one, and a reconnect storm costs a replacement."""
        key = (name, tuple(subscriptions))
        template = self._confirmations.get(key) if request_id is None else None
        if template is None:
            data = SubscriptionConfirmedData(service=name, subscriptions=subscriptions,
                                             services=list(targets) if name == ALL else None,
                                             message=f"Subscribed to {name}")
            template = encode_system(data, MessageType.SUBSCRIPTION_CONFIRMED, id=request_id, timestamp=TIMESTAMP_MARK)
            if request_id is None and len(self._confirmations) < CONFIRMATIONS_KEPT:
                self._confirmations[key] = template
        return template.replace(TIMESTAMP_MARK, now_iso())

    def resume(self, conn: Connection, service: str, since: tuple[int, str], request_id: Any = None) -> None:
        """Subscribe a client that says the last update it saw (``since``: seq, epoch): confirm with
        ``recovered`` (and ``reason`` when false), then every update after it in order, or the latest as
        :meth:`subscribe` does when they cannot all be given. The same step of the event loop reads the ring and
        subscribes, so an update arriving meanwhile is neither lost nor sent twice."""
        conn.subscriptions.add(service)
        result = self.hub.resume(conn, service, since[0], since[1], self.resume_max)
        data = SubscriptionConfirmedData(service=service, subscriptions=sorted(conn.subscriptions),
                                         message=f"Subscribed to {service}", recovered=result.recovered,
                                         epoch=result.epoch,
                                         reason=result.reason.value if result.reason is not None else None)
        conn.offer(encode_system(data, MessageType.SUBSCRIPTION_CONFIRMED, id=request_id))
        if result.recovered:
            conn.offer_backlog([update.text for update in result.missed])
        else:
            snapshot = self.hub.latest(service)
            if snapshot is not None:
                conn.offer(snapshot.text)

    def unsubscribe(self, conn: Connection, name: str, request_id: Any = None) -> None:
        targets = self._expand(name)
        conn.subscriptions.difference_update(targets)
        self.hub.unsubscribe(conn, targets)
        data = UnsubscriptionConfirmedData(service=name, subscriptions=sorted(conn.subscriptions),
                                           message=f"Unsubscribed from {name}")
        conn.offer(encode_system(data, MessageType.UNSUBSCRIPTION_CONFIRMED, id=request_id))

    def status(self, conn: Connection, request_id: Any = None) -> None:
        data = StatusData.model_validate({**conn.describe(), "total_clients": self._total_clients()})
        conn.offer(encode_system(data, MessageType.STATUS, id=request_id))

    # -- validation ---------------------------------------------------------------------------------
    def _service(self, message: dict[str, Any]) -> str:
        service = message.get("service")
        available = list(self.valid_names)
        if service is None:
            raise ClientError("Missing 'service'", available_services=available)
        if not isinstance(service, str):
            raise ClientError(f"Invalid service: 'service' must be a string, got {type(service).__name__}",
                              available_services=available)
        if service not in self.valid_names:
            shown = _shorten(service)
            if service in SERVICE_NAMES:
                text = (f"Invalid service: {shown!r} is not served on {self.endpoint}; "
                        f"it serves {', '.join(self.services)}")
            else:
                text = f"Invalid service: {shown!r}"
            raise ClientError(text, available_services=available)
        return service

    @staticmethod
    def _since(message: dict[str, Any], service: str) -> tuple[int, str] | None:
        since = message.get("since")
        if since is None:
            return None
        usage = 'expected "since": {"seq": <last seq seen>, "epoch": "<its epoch>"}'
        if service in (ALL, SYSTEM):
            raise ClientError(f"Invalid 'since': a resume names one service, not {service!r}")
        if not isinstance(since, dict):
            raise ClientError(f"Invalid 'since': {usage}")
        seq, epoch = since.get("seq"), since.get("epoch")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            raise ClientError(f"Invalid 'since.seq': {_shorten(seq)!r}; {usage}")
        if not isinstance(epoch, str) or not epoch or len(epoch) > MAX_ID_LENGTH:
            raise ClientError(f"Invalid 'since.epoch': {_shorten(epoch)!r}; {usage}")
        return seq, epoch

    def _expand(self, name: str) -> tuple[str, ...]:
        if name == ALL:
            return self.services
        if name == SYSTEM:
            return (SYSTEM,)
        return (name,)

    @staticmethod
    def _request_id(message: dict[str, Any]) -> Any:
        request_id = message.get("id")
        if request_id is None or (isinstance(request_id, (int, float)) and not isinstance(request_id, bool)):
            return request_id
        if isinstance(request_id, str) and len(request_id) <= MAX_ID_LENGTH:
            return request_id
        raise ClientError(f"Invalid 'id': must be a number or a string of at most {MAX_ID_LENGTH} characters")


def _shorten(value: Any) -> Any:
    """A client's string as quoted back in an error: its first characters, not the whole 64 KiB it may be."""
    if isinstance(value, str) and len(value) > MAX_ECHOED_CHARS:
        return value[:MAX_ECHOED_CHARS] + "..."
    return value
