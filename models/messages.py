"""The wire format: the envelope every server message follows, its types, and the client's actions.

Server messages are ``{"service", "type", "data", "timestamp"}`` (the spec's envelope); additive keys are
``seq`` and ``epoch`` on updates (``seq`` rises by one per service within an ``epoch``; a new epoch says the
numbering began anew, so a gap cannot be ruled out) and ``id`` echoing a client's request id. Timestamps are
ISO-8601 UTC with milliseconds and a ``Z``. Messages are serialised with orjson once and sent as text frames,
so browsers can ``JSON.parse`` them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import orjson


class Unpublished(Exception):
    """An update a stream made that could not be published for a reason outside the stream: the fan-out
    backend (Redis) unreachable, or the lease lost. The stream is fine; the next run tries again."""


class MessageType(StrEnum):
    CONNECTION_ESTABLISHED = "connection_established"
    WELCOME = "welcome"
    UPDATE = "update"
    SUBSCRIPTION_CONFIRMED = "subscription_confirmed"
    UNSUBSCRIPTION_CONFIRMED = "unsubscription_confirmed"
    STATUS = "status"
    PONG = "pong"
    ERROR = "error"
    NOTICE = "notice"  # the server's state changed (the fan-out backend lost or regained Redis)


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


def parse_iso(text: object) -> datetime | None:
    """An ISO-8601 time (``Z`` or an offset; a time without one is taken as UTC) as an aware datetime; None for
    anything else. The one reader of the timestamps we write and of the ISO times providers send."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def epoch(text: object) -> float | None:
    """An ISO-8601 time as Unix seconds; None when it is not one."""
    moment = parse_iso(text)
    return moment.timestamp() if moment is not None else None


_second: list[Any] = [-1, ""]  # the last whole second formatted, and its text up to the dot


def now_iso() -> str:
    """``iso(utc_now())``, formatting the date and time only once a second: every message carries one."""
    now = time.time()
    second = int(now)
    if second != _second[0]:
        _second[0], _second[1] = second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
    return f"{_second[1]}{int((now - second) * 1000):03d}Z"


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


@dataclass(frozen=True)
class Update:
    """One published update of a service: its number, time, payload and the envelope serialised once."""

    service: str
    seq: int
    timestamp: str
    data: Mapping[str, Any]
    text: str
    epoch: str = ""


class LatestUpdates(Protocol):
    """Where the latest update of every service can be read: the fan-out hub. Streams read one another only
    through this (see ``services/ports.py``), the dashboard and ``/api/{service}`` too."""

    def latest(self, service: str) -> Update | None: ...
