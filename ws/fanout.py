"""The fan-out backend contract, and its in-process implementation (the default; a Space needs nothing else).

A backend decides who numbers and publishes updates and how they reach every replica's hub:

- :class:`MemoryFanout`: one process. ``publish`` is the hub's own; the role is ``standalone`` and this process
  always polls.
- :class:`ws.redis_fanout.RedisFanout` (``REDIS_URL``): a group of replicas. One leader (a lease in Redis) polls
  and publishes into a Redis Stream per service; every replica, the leader too, tails the streams into its hub.

Either way the hub fans out to the local clients exactly as before, and clients resume from its ring.
``lead`` and ``follow`` (set with :meth:`Fanout.on_role`) start and stop the poller when the role changes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Any, Protocol

from models.messages import MessageType, Update
from models.wire import NoticeData, system_message
from ws.hub import Hub


class Role(StrEnum):
    STANDALONE = "standalone"  # no Redis: this process polls and serves alone
    LEADER = "leader"  # holds the lease: polls and publishes for the group
    FOLLOWER = "follower"  # serves clients from the leader's updates; never calls a provider


RoleChange = Callable[[], None]


class Fanout(Protocol):
    """What ``app.py`` needs of a backend: publish (the poller's output), the role, its state, a lifetime."""

    replica: str
    role: Role

    def publish(self, service: str, data: Mapping[str, Any]) -> Update | Awaitable[object]: ...

    def on_role(self, lead: RoleChange, follow: RoleChange) -> None: ...

    def describe(self) -> dict[str, Any]: ...

    async def __aenter__(self) -> Fanout: ...

    async def __aexit__(self, *exc: object) -> None: ...


def default_replica_id() -> str:
    """Host name and process id: unique within a group, and says where to look."""
    return f"{socket.gethostname()}-{os.getpid()}"


def notice(hub: Hub, data: Mapping[str, Any]) -> None:
    """Tell every subscribed client of this replica that the backend's state changed (``system`` / ``notice``)."""
    text = system_message(NoticeData.model_validate(dict(data)), MessageType.NOTICE)
    for subscriber in hub.subscribers():
        subscriber.offer(text)


class MemoryFanout:
    """One process: the hub numbers updates itself (its epoch is the history's, see app.py) and this process is
    always the one that polls."""

    def __init__(self, hub: Hub, replica: str | None = None) -> None:
        self.hub = hub
        self.replica = replica or default_replica_id()
        self.role = Role.STANDALONE
        self._lead: RoleChange | None = None

    def publish(self, service: str, data: Mapping[str, Any]) -> Update:
        return self.hub.publish(service, data)

    def on_role(self, lead: RoleChange, follow: RoleChange) -> None:
        self._lead = lead

    def describe(self) -> dict[str, Any]:
        return {"role": self.role.value, "replica": self.replica, "redis": {"state": "disabled"}}

    async def __aenter__(self) -> MemoryFanout:
        if self._lead is not None:
            self._lead()
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
