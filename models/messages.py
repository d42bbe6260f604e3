"""The wire format: the envelope every server message follows, its types, and the client's actions.

Server messages are ``{"service", "type", "data", "timestamp"}`` (the spec's envelope); additive keys are
``seq`` on updates and ``id`` echoing a client's request id. Timestamps are ISO-8601 UTC with milliseconds and
a ``Z``. Messages are serialised with orjson once and sent as text frames, so browsers can ``JSON.parse`` them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson


class MessageType(StrEnum):
    CONNECTION_ESTABLISHED = "connection_established"
    WELCOME = "welcome"
    UPDATE = "update"
    SUBSCRIPTION_CONFIRMED = "subscription_confirmed"
    UNSUBSCRIPTION_CONFIRMED = "unsubscription_confirmed"
    STATUS = "status"
    PONG = "pong"
    ERROR = "error"


class Action(StrEnum):
    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"
    GET_STATUS = "get_status"
    PING = "ping"


ACTIONS: tuple[str, ...] = tuple(a.value for a in Action)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | float | None) -> str | None:
    """``2025-11-11T10:30:00.000Z`` for an aware datetime or a Unix time; None stays None."""
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso(utc_now())  # type: ignore[return-value]


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def envelope(service: str, type_: MessageType | str, data: Any, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "service": service,
        "type": type_.value if isinstance(type_, MessageType) else type_,
        "data": data,
        "timestamp": now_iso(),
    }
    for key, value in extra.items():
        if value is not None:
            message[key] = value
    return message


def encode(service: str, type_: MessageType | str, data: Any, **extra: Any) -> str:
    """One server message as JSON text."""
    return dumps(envelope(service, type_, data, **extra))
