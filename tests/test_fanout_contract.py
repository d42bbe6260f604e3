"""One contract, both fan-out backends: in memory (one process) and Redis Streams (a group of replicas).

Whatever the backend: the process that polls publishes, every update reaches the hub numbered (seq rising by
one within an epoch, both at the top level of the envelope), every subscriber gets the same text, and a client
that resumes gets exactly the updates it missed, or is told why not.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from ws.fanout import Fanout, MemoryFanout, Role
from ws.hub import Hub, ResumeFailure
from ws.redis_fanout import RedisFanout


class Sink:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def offer(self, text: str) -> bool:
        self.texts.append(text)
        return True

    def seqs(self) -> list[int]:
        return [json.loads(t)["seq"] for t in self.texts if json.loads(t)["type"] == "update"]


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a condition the backend makes true (the Redis tail runs on its own task)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class Group:
    """A backend under test, with what the contract needs to drive it."""

    def __init__(self, hub: Hub, fanout: Fanout) -> None:
        self.hub, self.fanout = hub, fanout
        self.led = 0
        self.followed = 0
        fanout.on_role(self._lead, self._follow)

    def _lead(self) -> None:
        self.led += 1

    def _follow(self) -> None:
        self.followed += 1

    async def publish(self, service: str, data: Mapping[str, Any]) -> None:
        """Publish as the poller does, and wait until the update is in this replica's hub."""
        before = self.hub.seq(service)
        result = self.fanout.publish(service, data)
        if inspect.isawaitable(result):
            await result
        await until(lambda: self.hub.seq(service) > before)


@pytest.fixture(params=["memory", "redis"])
async def group(request: pytest.FixtureRequest) -> AsyncIterator[Group]:
    hub = Hub(ring=20)
    fanout: Fanout
    if request.param == "memory":
        fanout = MemoryFanout(hub, "r1")
    else:
        url = request.getfixturevalue("redis_url")
        fanout = RedisFanout(hub, url, ["news", "market_data"], prefix=request.getfixturevalue("redis_prefix"),
                             lease_ttl=2.0, replica="r1", block_ms=200)
    made = Group(hub, fanout)
    async with fanout:
        await until(lambda: made.led == 1)
        yield made


async def test_the_poller_runs_where_the_lease_is_and_says_so(group: Group) -> None:
    described = group.fanout.describe()
    assert described["replica"] == "r1" and described["role"] in (Role.STANDALONE, Role.LEADER)
    assert described["redis"]["state"] in ("disabled", "connected")
    assert group.led == 1 and group.followed == 0


async def test_updates_are_numbered_with_an_epoch_and_reach_every_subscriber_as_one_text(group: Group) -> None:
    first, second = Sink(), Sink()
    group.hub.subscribe(first, ["news"])
    group.hub.subscribe(second, ["news"])
    for n in range(3):
        await group.publish("news", {"n": n, "nested": {"1": [1.5, None]}})
    messages = [json.loads(text) for text in first.texts]
    assert [m["seq"] for m in messages] == [1, 2, 3]
    assert {m["epoch"] for m in messages} == {group.hub.epoch_of("news")} and messages[0]["epoch"]
    assert [m["data"]["n"] for m in messages] == [0, 1, 2] and messages[0]["data"]["nested"] == {"1": [1.5, None]}
    assert all(m["type"] == "update" and m["service"] == "news" and m["timestamp"].endswith("Z") for m in messages)
    assert second.texts == first.texts
    assert group.hub.latest_data("news") == {"n": 2, "nested": {"1": [1.5, None]}}


async def test_a_resuming_client_gets_exactly_what_it_missed_then_the_live_stream(group: Group) -> None:
    for n in range(5):
        await group.publish("news", {"n": n})
    epoch = group.hub.epoch_of("news")
    sink = Sink()
    result = group.hub.resume(sink, "news", 2, epoch, limit=10)
    assert result.recovered and result.reason is None and result.epoch == epoch
    assert [u.seq for u in result.missed] == [3, 4, 5]
    await group.publish("news", {"n": 5})
    assert sink.seqs() == [6]  # the live stream goes on after the missed ones, nothing twice


async def test_a_resume_that_cannot_be_complete_says_why(group: Group) -> None:
    for n in range(25):  # the ring holds 20
        await group.publish("news", {"n": n})
    epoch = group.hub.epoch_of("news")
    assert group.hub.resume(Sink(), "news", 1, epoch, limit=100).reason is ResumeFailure.TOO_OLD
    assert group.hub.resume(Sink(), "news", 10, epoch, limit=5).reason is ResumeFailure.TOO_MANY
    changed = group.hub.resume(Sink(), "news", 24, "another-epoch", limit=100)
    assert not changed.recovered and changed.reason is ResumeFailure.EPOCH_CHANGED and changed.epoch == epoch
    current = group.hub.resume(Sink(), "news", 25, epoch, limit=100)
    assert current.recovered and current.missed == ()


async def test_services_are_numbered_apart(group: Group) -> None:
    await group.publish("news", {"n": 1})
    await group.publish("market_data", {"n": 1})
    await group.publish("news", {"n": 2})
    assert group.hub.seq("news") == 2 and group.hub.seq("market_data") == 1
