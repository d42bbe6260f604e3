"""The hub: the latest update of every service, serialised once and fanned out to subscriber queues.

``publish`` numbers an update (``seq`` per service, rising by one, within the hub's ``epoch``), wraps it in the
envelope, serialises it once and hands it to :meth:`deliver`; updates numbered elsewhere (the Redis tail of
another replica's leader, see ``ws/redis_fanout.py``) come in through :meth:`deliver` directly. ``deliver``
keeps the update as the service's snapshot and in a ring of the last N (for clients that resume), offers the
same text to every subscriber's bounded queue and then tells the listeners (persistence). It never awaits a
socket: a subscriber whose queue is full drops itself (see :class:`ws.connection.Connection`), and nobody else
notices.

Resume (:meth:`resume`): a client that says the last ``seq`` and ``epoch`` it saw gets every update after it
from the ring, or is told why not (``epoch_changed``, ``too_old``, ``too_many``). The ring is read and the
client subscribed in one step of the event loop, so an update arriving meanwhile is neither lost nor doubled.

The hub knows service names and JSON payloads, nothing about what they mean.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol

from models.messages import MessageType, Update, dumps, envelope

log = logging.getLogger(__name__)

DEFAULT_RING = 300
NO_DATA: Mapping[str, Any] = MappingProxyType({})


class Subscriber(Protocol):
    def offer(self, text: str) -> bool: ...


Listener = Callable[[Update], None]


@dataclass(slots=True)
class Counts:
    """One service's updates since start: published, offered to a subscriber's queue, refused by a full one."""

    published: int = 0
    delivered: int = 0
    dropped: int = 0


def new_epoch() -> str:
    """A fresh epoch id: 16 hex characters, unguessable enough that two numberings never share one."""
    return secrets.token_hex(8)


class ResumeFailure(StrEnum):
    EPOCH_CHANGED = "epoch_changed"  # the numbering began anew (history lost, Redis flushed): gaps unknowable
    TOO_OLD = "too_old"  # the updates after ``since`` are no longer kept
    TOO_MANY = "too_many"  # more were missed than one resume replays


@dataclass(frozen=True)
class Resume:
    """What a resuming client gets: the missed updates in order, or why not (then: the latest, as today)."""

    recovered: bool
    epoch: str
    reason: ResumeFailure | None = None
    missed: tuple[Update, ...] = field(default=())  # their texts, as sent (``data`` is not kept)


class Hub:
    def __init__(self, ring: int = DEFAULT_RING, epoch: str | None = None) -> None:
        self.ring_size = ring
        self.epoch = epoch or new_epoch()  # of updates this hub numbers itself
        self._latest: dict[str, Update] = {}
        self._seq: dict[str, int] = {}
        self._epochs: dict[str, str] = {}
        self._rings: dict[str, deque[Update]] = {}
        self._subscribers: dict[str, set[Subscriber]] = {}
        # Per service, subscribers that resumed from a seq this hub has not reached yet (they came from a
        # replica ahead of this one): nothing up to that seq is sent to them again.
        self._floors: dict[str, dict[Subscriber, int]] = {}
        self._listeners: list[Listener] = []
        self._counts: dict[str, Counts] = {}
        self.published = 0
        self.delivered = 0
        self.dropped = 0

    # -- publishing -------------------------------------------------------------------------------------
    def publish(self, service: str, data: Mapping[str, Any]) -> Update:
        """Number, serialise and deliver an update of this process. Raises (orjson's TypeError) for data that
        cannot be serialised; ``seq`` is then not used up, so clients never see a gap for an update that did
        not exist."""
        seq = self._seq.get(service, 0) + 1
        message = envelope(service, MessageType.UPDATE, data, seq=seq, epoch=self.epoch)
        update = Update(service, seq, message["timestamp"], data, dumps(message), self.epoch)
        self.deliver(update)
        return update

    def deliver(self, update: Update) -> bool:
        """Keep and fan out an update numbered already (by :meth:`publish`, or by the leader of a group of
        replicas). An update at or below the current ``seq`` of its epoch is a repeat and is dropped (False)."""
        service, seq = update.service, update.seq
        if self._epochs.get(service) not in (None, update.epoch):
            log.warning("%s: epoch %s -> %s at seq %d: numbering began anew", service,
                        self._epochs.get(service), update.epoch, seq)
            self._rings.pop(service, None)
            self._floors.pop(service, None)
        elif seq <= self._seq.get(service, 0):
            return False
        elif self._rings.get(service) and seq != self._seq[service] + 1:
            log.warning("%s: gap in seq, %d -> %d", service, self._seq[service], seq)
            self._rings.pop(service, None)  # the ring holds only runs without a gap
        self._remember(update)
        delivered, dropped = self._fan_out(update)
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
        return True

    def _fan_out(self, update: Update) -> tuple[int, int]:
        """Offer the update's text to every subscriber of its service: (queued, refused by a full queue)."""
        delivered = dropped = 0
        floors = self._floors.get(update.service)
        for subscriber in tuple(self._subscribers.get(update.service, ())):
            if floors and subscriber in floors:
                if update.seq <= floors[subscriber]:
                    continue
                del floors[subscriber]
            if subscriber.offer(update.text):
                delivered += 1
            else:
                dropped += 1
        return delivered, dropped

    def _remember(self, update: Update) -> None:
        self._seq[update.service] = update.seq
        self._epochs[update.service] = update.epoch
        self._latest[update.service] = update
        ring = self._rings.get(update.service)
        if ring is None:
            ring = self._rings[update.service] = deque(maxlen=self.ring_size)
        # The ring keeps the text only: 300 parsed market updates would hold some 100 MB of Python objects.
        ring.append(Update(update.service, update.seq, update.timestamp, NO_DATA, update.text, update.epoch))

    def backfill(self, updates: Iterable[Update]) -> None:
        """Stored updates, oldest first, taken into the ring (and as the snapshot) without telling anyone: after
        a start, so clients can resume from before it."""
        for update in updates:
            service = update.service
            if update.epoch != self._epochs.get(service, update.epoch):
                # Another numbering than the one held (Redis's, over a snapshot from the local history): the
                # backfill's source is the group's truth.
                self._rings.pop(service, None)
            elif update.seq <= self._seq.get(service, 0):
                continue
            ring = self._rings.get(service)
            if ring and update.seq != ring[-1].seq + 1:
                ring.clear()
            self._remember(update)

    def restore(self, service: str, seq: int, timestamp: str, data: Mapping[str, Any]) -> None:
        """Take a stored update as the snapshot after a restart, so ``seq`` continues; nobody is notified.

        The snapshot keeps its original ``timestamp`` and says ``"restored": true``: it is not news. The ring
        (see :meth:`backfill`) keeps the update as it was sent."""
        if seq < self._seq.get(service, 0):
            return
        message = {"service": service, "type": MessageType.UPDATE.value, "data": data,
                   "timestamp": timestamp, "seq": seq, "epoch": self.epoch, "restored": True}
        self._seq[service] = seq
        self._epochs[service] = self.epoch
        self._latest[service] = Update(service, seq, timestamp, data, dumps(message), self.epoch)

    def continue_from(self, service: str, seq: int) -> None:
        """Make the next ``seq`` of ``service`` come after ``seq`` (the highest ever stored), snapshot or not."""
        if seq > self._seq.get(service, 0):
            self._seq[service] = seq
            self._epochs.setdefault(service, self.epoch)

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

    def epoch_of(self, service: str) -> str:
        """The epoch of ``service``'s numbering: the leader's in a group of replicas, else this hub's."""
        return self._epochs.get(service, self.epoch)

    # -- subscriptions ----------------------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber, services: Iterable[str]) -> None:
        for service in services:
            self._subscribers.setdefault(service, set()).add(subscriber)

    def resume(self, subscriber: Subscriber, service: str, seq: int, epoch: str, limit: int) -> Resume:
        """Subscribe ``subscriber`` to ``service`` for a client whose last update was ``seq`` of ``epoch``; the
        updates it missed (at most ``limit``) are returned for the caller to send before anything newer (the
        caller offers them before control returns to the event loop, so nothing can come in between)."""
        self.subscribe(subscriber, (service,))
        current = self.epoch_of(service)
        if epoch != current:
            return Resume(False, current, ResumeFailure.EPOCH_CHANGED)
        latest = self._seq.get(service, 0)
        if seq >= latest:
            if seq > latest:  # from a replica ahead of this one: what it already sent is not sent again
                self._floors.setdefault(service, {})[subscriber] = seq
            return Resume(True, current)
        if latest - seq > limit:
            return Resume(False, current, ResumeFailure.TOO_MANY)
        ring = self._rings.get(service, ())
        missed = tuple(u for u in ring if u.seq > seq)
        if len(missed) != latest - seq:
            return Resume(False, current, ResumeFailure.TOO_OLD)
        return Resume(True, current, missed=missed)

    def unsubscribe(self, subscriber: Subscriber, services: Iterable[str]) -> None:
        for service in services:
            members = self._subscribers.get(service)
            if members is not None:
                members.discard(subscriber)
            floors = self._floors.get(service)
            if floors:
                floors.pop(subscriber, None)

    def subscribers(self) -> set[Subscriber]:
        """Everyone subscribed to anything (for a notice to all)."""
        return {s for members in self._subscribers.values() for s in members}

    def counts(self) -> dict[str, Counts]:
        """Per service: updates published, delivered and dropped since start (live objects: do not change)."""
        return self._counts

    def rings(self) -> dict[str, int]:
        """The resume rings, all services together: updates kept, how many they may hold (``ring_size`` per
        service seen) and the bytes of the texts kept. They fill up to their bound within ``ring_size``
        intervals of each service (hours for the slow ones) after a start with an empty history; a soak sees
        that as memory growth, and reads it here."""
        kept = sum(len(ring) for ring in self._rings.values())
        held = sum(sys.getsizeof(update.text) for ring in self._rings.values() for update in ring)
        return {"updates": kept, "capacity": self.ring_size * len(self._rings), "text_bytes": held}

    def subscription_counts(self) -> dict[str, int]:
        return {service: len(members) for service, members in self._subscribers.items() if members}
