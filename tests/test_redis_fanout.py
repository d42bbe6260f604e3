"""Redis Streams between replicas: one leader, fencing, takeover, a flushed Redis, a Redis that goes away.

Each test runs replicas (hub + RedisFanout) in this event loop against a private redis-server on loopback.
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import redis

from tests.support.redis_server import redis_server
from tests.test_fanout_contract import Group, Sink, until
from ws.fanout import Role
from ws.hub import Hub, ResumeFailure
from ws.redis_fanout import NotLeader, RedisFanout

TTL = 1.0
Make = Callable[..., Awaitable[Group]]


@pytest.fixture
async def replicas(redis_url: str, redis_prefix: str) -> AsyncIterator[Make]:
    """Makes replicas of one group, started at once and stopped at the test's end."""
    async with AsyncExitStack() as stack:
        async def make(name: str, url: str = redis_url) -> Group:
            hub = Hub(ring=50)
            group = Group(hub, RedisFanout(hub, url, ["news", "market_data"], prefix=redis_prefix,
                                           lease_ttl=TTL, replica=name, block_ms=200))
            await stack.enter_async_context(group.fanout)
            return group
        yield make


def leader_of(*groups: Group) -> Group:
    leaders = [g for g in groups if g.fanout.role is Role.LEADER]
    assert len(leaders) == 1, [g.fanout.describe() for g in groups]
    return leaders[0]


async def test_one_leader_publishes_and_every_replica_gets_the_same_updates(replicas: Make) -> None:
    a, b = await replicas("a"), await replicas("b")
    await until(lambda: Role.LEADER in (a.fanout.role, b.fanout.role))
    leader = leader_of(a, b)
    follower = b if leader is a else a
    assert follower.led == 0 and follower.fanout.role is Role.FOLLOWER
    with pytest.raises(NotLeader):
        await follower.fanout.publish("news", {"n": 0})  # type: ignore[misc]
    for n in range(3):
        await leader.publish("news", {"n": n})
    await until(lambda: follower.hub.seq("news") == 3)
    assert [follower.hub.latest(s) for s in ("news",)] == [leader.hub.latest("news")]
    assert follower.hub.latest("news").text == leader.hub.latest("news").text  # type: ignore[union-attr]


async def test_a_replica_that_starts_later_can_serve_a_resume_from_before_it_started(replicas: Make) -> None:
    a = await replicas("a")
    await until(lambda: a.fanout.role is Role.LEADER)
    for n in range(5):
        await a.publish("news", {"n": n})
    late = await replicas("late")
    result = late.hub.resume(Sink(), "news", 1, a.hub.epoch_of("news"), limit=100)
    assert result.recovered and [u.seq for u in result.missed] == [2, 3, 4, 5]
    assert [u.text for u in result.missed] == [u.text for u in a.hub.resume(Sink(), "news", 1,
                                                                            a.hub.epoch_of("news"), 100).missed]


async def test_a_fenced_ex_leader_cannot_publish_and_stops_polling(replicas: Make, redis_url: str,
                                                                  redis_prefix: str) -> None:
    a = await replicas("a")
    await until(lambda: a.fanout.role is Role.LEADER)
    await a.publish("news", {"n": 0})
    # As if a paused for longer than the ttl and another replica took the lease meanwhile.
    redis.Redis.from_url(redis_url).set(f"{redis_prefix}:leader", "someone-else", px=60_000)
    with pytest.raises(NotLeader):
        await a.fanout.publish("news", {"n": 1})  # type: ignore[misc]
    assert a.fanout.role is Role.FOLLOWER and a.followed == 1
    assert a.hub.seq("news") == 1


async def test_a_follower_takes_over_when_the_leader_leaves(replicas: Make) -> None:
    a = await replicas("a")
    await until(lambda: a.fanout.role is Role.LEADER)
    b = await replicas("b")
    await a.publish("news", {"n": 0})
    await a.fanout.__aexit__(None, None, None)  # a clean stop gives the lease back
    await until(lambda: b.fanout.role is Role.LEADER, timeout=TTL * 3)
    await b.publish("news", {"n": 1})
    assert b.hub.seq("news") == 2 and b.led == 1


async def test_a_flushed_redis_starts_a_new_epoch_above_the_last_seq(replicas: Make, redis_url: str,
                                                                      redis_prefix: str) -> None:
    a = await replicas("a")
    b = await replicas("b")
    await until(lambda: a.fanout.role is Role.LEADER)
    for n in range(3):
        await a.publish("news", {"n": n})
    await until(lambda: b.hub.seq("news") == 3)
    old = a.hub.epoch_of("news")
    watcher = Sink()
    b.hub.subscribe(watcher, ["news"])
    lease = redis.Redis.from_url(redis_url)
    lease.flushall()  # the lease goes too: the leader finds out when it next renews (a publish before is fenced)
    # Until then another may have taken the lease and both think they lead; only the holder can publish.
    def settled() -> bool:  # one replica thinks it leads, and the lease in Redis is its (tokens begin with the id)
        leaders = [g for g in (a, b) if g.fanout.role is Role.LEADER]
        holder = lease.get(f"{redis_prefix}:leader")
        token = holder.decode() if isinstance(holder, bytes) else str(holder)
        return len(leaders) == 1 and holder is not None and token.startswith(f"{leaders[0].fanout.replica}:")

    await until(settled, timeout=TTL * 4)
    await leader_of(a, b).publish("news", {"n": 3})
    await until(lambda: b.hub.seq("news") == 4)
    new = b.hub.epoch_of("news")
    assert new != old and json.loads(watcher.texts[-1])["epoch"] == new
    assert b.hub.resume(Sink(), "news", 3, old, 100).reason is ResumeFailure.EPOCH_CHANGED


async def test_redis_gone_keeps_clients_and_says_since_when_then_resumes(tmp_path: Path,
                                                                         replicas: Make) -> None:
    with redis_server(workdir=tmp_path) as server:
        a = await replicas("a", server.url)
        await until(lambda: a.fanout.role is Role.LEADER)
        await a.publish("news", {"n": 0})
        client = Sink()
        a.hub.subscribe(client, ["news"])
        server.kill()
        await until(lambda: a.fanout.describe()["redis"]["state"] == "unreachable")
        await until(lambda: a.fanout.role is Role.FOLLOWER, timeout=TTL * 3)  # nobody polls without the lease
        state = a.fanout.describe()["redis"]
        assert state["since"] and state["error"]
        notices = [json.loads(t) for t in client.texts if json.loads(t)["type"] == "notice"]
        assert notices and notices[0]["data"]["redis"] == "unreachable" and notices[0]["data"]["since"]
        with redis_server(port=server.port, workdir=tmp_path):  # back, empty
            await until(lambda: a.fanout.role is Role.LEADER, timeout=TTL * 10)
            await a.publish("news", {"n": 1})
            assert a.hub.seq("news") == 2  # continues above what it had; a new epoch says Redis was lost
            assert json.loads(client.texts[-1])["type"] == "update"
            assert any(json.loads(t)["data"].get("redis") == "connected" for t in client.texts
                       if json.loads(t)["type"] == "notice")


async def test_a_replica_that_starts_while_redis_is_stuck_catches_up_without_replaying_old_news(
        tmp_path: Path, replicas: Make) -> None:
    with redis_server(workdir=tmp_path) as server:
        a = await replicas("a", server.url)
        await until(lambda: a.fanout.role is Role.LEADER)
        for n in range(5):
            await a.publish("news", {"n": n})
        assert server.process is not None
        server.process.send_signal(signal.SIGSTOP)  # answers nothing: the start-up's backfill times out
        try:
            late = await replicas("late", server.url)
            assert late.fanout.describe()["redis"]["state"] == "unreachable"
            client = Sink()
            late.hub.subscribe(client, ["news"])
        finally:
            server.process.send_signal(signal.SIGCONT)
        await until(lambda: late.hub.seq("news") == 5, timeout=30)
        assert client.seqs() == []  # the five were history to it, not news
        # a lost its lease while Redis was stuck: whichever replica leads now numbers on from the group's seq
        await until(lambda: Role.LEADER in (a.fanout.role, late.fanout.role), timeout=TTL * 10)
        await leader_of(a, late).publish("news", {"n": 5})
        await until(lambda: client.seqs() == [6])
