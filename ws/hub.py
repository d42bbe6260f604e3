"""The hub: the latest update of every service, serialised once and fanned out to subscriber queues.

``publish`` numbers the update (``seq`` per service, rising by one), wraps it in the envelope, serialises it
once, keeps it as the service's snapshot, offers the same text to every subscriber's bounded queue and then
tells the listeners (persistence, metrics). It never awaits a socket: a subscriber whose queue is full drops
itself (see :class:`ws.connection.Connection`), and nobody else notices.

The hub knows service names and JSON payloads, nothing about what they mean.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from models.messages import MessageType, Update, dumps, envelope

log = logging.getLogger(__name__)


class Subscriber(Protocol):
    def offer(self, text: str) -> bool: ...


Listener = Callable[[Update], None]


@dataclass(slots=True)
class Counts:
    """One service's updates since start: published, offered to a subscriber's queue, refused by a full one."""

    published: int = 0
    delivered: int = 0
    dropped: int = 0


class Hub:
    def __init__(self) -> None:
        self._latest: dict[str, Update] = {}
        self._seq: dict[str, int] = {}
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._listeners: list[Listener] = []
        self._counts: dict[str, Counts] = {}
        self.published = 0
        self.delivered = 0
        self.dropped = 0

    # -- publishing -------------------------------------------------------------------------------------
    def publish(self, service: str, data: Mapping[str, Any]) -> Update:
        """Raises (orjson's TypeError) for data that cannot be serialised; ``seq`` is then not used up, so
        clients never see a gap for an update that did not exist."""
        seq = self._seq.get(service, 0) + 1
        message = envelope(service, MessageType.UPDATE, data, seq=seq)
        update = Update(service, seq, message["timestamp"], data, dumps(message))
        self._seq[service] = seq
        self._latest[service] = update
        delivered = dropped = 0
        for subscriber in tuple(self._subscribers.get(service, ())):
            if subscriber.offer(update.text):
                delivered += 1
            else:
                dropped += 1
        # Counted once per update, not per subscriber: read by /metrics at scrape time.
        counts = self._counts.get(service)
        if counts is None:
            counts = self._counts[service] = Counts()
        counts.published += 1
        counts.delivered += delivered
        counts.dropped += dropped
        self.published += 1
        self.delivered += delivered
        self.dropped += dropped
        for listener in self._listeners:
            try:
                listener(update)
            except Exception:  # a listener's bug must not stop the stream
                log.exception("hub listener %r failed on %s#%d", listener, service, seq)
        return update

    def restore(self, service: str, seq: int, timestamp: str, data: Mapping[str, Any]) -> None:
        """Take a stored update as the snapshot after a restart, so ``seq`` continues; nobody is notified.

        The snapshot keeps its original ``timestamp`` and says ``"restored": true``: it is not news."""
        if seq <= self._seq.get(service, 0):
            return
        message = {"service": service, "type": MessageType.UPDATE.value, "data": data,
                   "timestamp": timestamp, "seq": seq, "restored": True}
        self._seq[service] = seq
        self._latest[service] = Update(service, seq, timestamp, data, dumps(message))

    def continue_from(self, service: str, seq: int) -> None:
        """Make the next ``seq`` of ``service`` come after ``seq`` (the highest ever stored), snapshot or not."""
        if seq > self._seq.get(service, 0):
            self._seq[service] = seq

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # -- reading ----------------------------------------------------------------------------------------
    def latest(self, service: str) -> Update | None:
        return self._latest.get(service)

    def latest_data(self, service: str) -> Mapping[str, Any] | None:
        update = self._latest.get(service)
        return update.data if update else None

    def seq(self, service: str) -> int:
        return self._seq.get(service, 0)

    # -- subscriptions ----------------------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber, services: Iterable[str]) -> None:
        for service in services:
            self._subscribers.setdefault(service, set()).add(subscriber)

    def unsubscribe(self, subscriber: Subscriber, services: Iterable[str]) -> None:
        for service in services:
            members = self._subscribers.get(service)
            if members is not None:
                members.discard(subscriber)

    def counts(self) -> dict[str, Counts]:
        """Per service: updates published, delivered and dropped since start (live objects: do not change)."""
        return self._counts

    def subscription_counts(self) -> dict[str, int]:
        return {service: len(members) for service, members in self._subscribers.items() if members}
