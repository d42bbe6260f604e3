"""A group of replicas on Redis Streams: one leader polls and publishes, every replica tails into its hub.

Keys (``<prefix>`` is ``REDIS_PREFIX``)::

    <prefix>:leader          the lease: a random token, SET NX PX <ttl>, renewed every ttl/3 by its holder
    <prefix>:meta:<service>  hash: seq (the last number given) and epoch (made anew whenever the hash was lost)
    <prefix>:stream:<service> stream: entries with the explicit id <seq>-0 and fields t (time), d (data JSON),
                             e (epoch); trimmed with MAXLEN ~ <maxlen>

Publishing is one Lua script (:data:`PUBLISH`), so it is atomic and fenced: it checks the caller still holds the
lease, ``HINCRBY``s seq and ``XADD``s with that id. A paused ex-leader whose lease passed to another cannot
write. A lost meta hash (FLUSHALL, a new Redis) gets a new epoch and continues from the leader's last seq (or the
stream's last id), so seq never goes backwards in any replica's history.

Leadership: a replica holds the lease until a local monotonic deadline (when it last renewed + ttl); past it,
or on a fenced publish, it stops polling at once (``follow``), whatever Redis says later. A follower tries
``SET NX`` every ttl/6, so it leads within ttl + ttl/6 of a leader's death (at once after a clean shutdown,
which gives the lease back).

Tail: one ``XREAD BLOCK`` over every stream from the last ids seen (so a reconnect resumes where it was); each
entry becomes an :class:`~models.messages.Update` whose envelope is built once per replica around the data
JSON as published (``orjson.Fragment``: never parsed and re-serialised for the text) and handed to
:meth:`ws.hub.Hub.deliver`. Redis unreachable: clients stay connected, a ``notice`` tells them since when, and
nobody polls (the lease cannot be renewed); the tail retries with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from models.messages import MessageType, Unpublished, Update, dumps, iso, now_iso
from ws.fanout import Role, RoleChange, default_replica_id, notice
from ws.hub import NO_DATA, Hub, new_epoch

log = logging.getLogger(__name__)

#: KEYS: lease, meta, stream. ARGV: token, a new epoch, seq floor, maxlen, time, data. -> {seq, epoch}
PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('NOTLEADER lease not held') end
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[2]
  local floor = tonumber(ARGV[3])
  local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
  if last[1] then
    local top = tonumber(string.match(last[1][1], '^(%d+)'))
    if top > floor then floor = top end
  end
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'seq', floor)
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], seq .. '-0', 't', ARGV[5], 'd', ARGV[6], 'e', epoch)
return {seq, epoch}
"""
#: KEYS: lease. ARGV: token, ttl ms. -> 1 renewed, 0 not ours.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
UNREACHABLE = (RedisError, OSError, TimeoutError)


class NotLeader(Unpublished):
    """A publish by a replica that does not hold the lease (any more)."""


class RedisFanout:
    def __init__(self, hub: Hub, url: str, services: Sequence[str], *, prefix: str = "cam",
                 lease_ttl: float = 10.0, maxlen: int = 1000, replica: str | None = None,
                 block_ms: int = 1000) -> None:
        self.hub = hub
        self.replica = replica or default_replica_id()
        self.role = Role.FOLLOWER
        self.services = tuple(services)
        self.prefix = prefix
        self.lease_ttl = lease_ttl
        self.maxlen = maxlen
        self.block_ms = block_ms
        # The socket timeout outlasts the block, or every quiet XREAD would look like a dead Redis.
        self.redis = aioredis.Redis.from_url(url, socket_timeout=block_ms / 1000 + 5, socket_connect_timeout=3)
        self._lease_key = f"{prefix}:leader"
        self._keys = {service: f"{prefix}:stream:{service}".encode() for service in self.services}
        self._service_of = {key: service for service, key in self._keys.items()}
        self._last_ids: dict[bytes, bytes] = {}
        self._token = f"{self.replica}:{secrets.token_hex(8)}"
        self._lead: RoleChange | None = None
        self._follow: RoleChange | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._deadline = 0.0  # monotonic: the lease is ours until then
        self._stopping = False
        self._stop = asyncio.Event()  # wakes the lease keeper from its pause at shutdown
        self._backfilled = False
        self._tasks: list[asyncio.Task[None]] = []
        self._publish = self.redis.register_script(PUBLISH)
        self._renew = self.redis.register_script(RENEW)
        self._release = self.redis.register_script(RELEASE)
        self.state = "connecting"
        self.state_since = time.time()
        self.last_error: str | None = None
        self.leader_since: float | None = None

    # -- contract ---------------------------------------------------------------------------------------
    def on_role(self, lead: RoleChange, follow: RoleChange) -> None:
        self._lead, self._follow = lead, follow

    async def publish(self, service: str, data: Mapping[str, Any]) -> tuple[int, str]:
        """Number and append one update for the group (the leader's poller only); it reaches the hubs, this
        one included, through their tails. Raises :class:`NotLeader` when the lease is not held."""
        if self.role is not Role.LEADER:
            raise NotLeader(f"{self.replica} does not hold the lease")
        body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)
        meta, stream = f"{self.prefix}:meta:{service}", self._keys[service]
        try:
            seq, epoch = await self._publish(keys=[self._lease_key, meta, stream],
                                             args=[self._token, new_epoch(), self.hub.seq(service), self.maxlen,
                                                   now_iso(), body])
        except ResponseError as error:
            if "NOTLEADER" in str(error):
                self._lose("a publish was fenced off: another replica holds the lease")
                raise NotLeader(str(error)) from None
            raise
        except RedisError as error:  # unreachable: the lease keeper steps down if it lasts; no traceback per job
            raise Unpublished(f"Redis unreachable: {type(error).__name__}: {error}") from None
        return int(seq), epoch.decode() if isinstance(epoch, bytes) else str(epoch)

    def describe(self) -> dict[str, Any]:
        redis_state: dict[str, Any] = {"state": self.state, "since": iso(self.state_since)}
        if self.last_error and self.state != "connected":
            redis_state["error"] = self.last_error
        return {"role": self.role.value, "replica": self.replica, "redis": redis_state,
                "leader_since": iso(self.leader_since)}

    async def __aenter__(self) -> RedisFanout:
        await self._backfill_once()
        self._tasks = [asyncio.create_task(self._tail(), name="redis-tail"),
                       asyncio.create_task(self._hold_lease(), name="redis-lease")]
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Neither task is cancelled mid-command if it can be helped (redis-py 8.1 can hang cleaning up a cancelled
        # blocking read): both see the flag, the tail when its block ends, the lease keeper at once; what has not
        # ended by then is cancelled, and nothing here waits without a bound (a shutdown must end).
        self._stopping = True
        self._stop.set()
        _, pending = await asyncio.wait(self._tasks, timeout=self.block_ms / 1000 + self.lease_ttl / 3 + 2)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2)
        if self.role is Role.LEADER:
            self._lose("shutting down")
            try:  # give the lease back: another replica leads at once rather than after the ttl
                await asyncio.wait_for(self._release(keys=[self._lease_key], args=[self._token]), 2)
            except (*UNREACHABLE, TimeoutError) as error:
                log.warning("could not give the lease back (%s); it expires in %.0f s", error, self.lease_ttl)
        with contextlib.suppress(*UNREACHABLE, TimeoutError):
            await asyncio.wait_for(self.redis.aclose(), 2)

    # -- the lease ------------------------------------------------------------------------------------
    async def _hold_lease(self) -> None:
        ttl_ms = int(self.lease_ttl * 1000)
        while not self._stopping:
            started = time.monotonic()
            held: bool | None
            try:
                if self.role is Role.LEADER:
                    held = bool(await asyncio.wait_for(
                        self._renew(keys=[self._lease_key], args=[self._token, ttl_ms]), self.lease_ttl / 3))
                else:
                    held = bool(await asyncio.wait_for(
                        self.redis.set(self._lease_key, self._token, nx=True, px=ttl_ms), self.lease_ttl / 3))
                self._reachable()
            except UNREACHABLE as error:
                self._unreachable(error)
                held = False if self.role is Role.LEADER and time.monotonic() > self._deadline else None
            if held:
                self._held_until(started + self.lease_ttl)
            elif held is False and self.role is Role.LEADER:
                self._lose("the lease is held by another replica")
            # The holder renews every third of the ttl; the others try more often, so a dead leader's lease,
            # which expires at most one ttl after its death, is taken soon after it does.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.lease_ttl / (3 if self.role is Role.LEADER else 6))

    def _held_until(self, deadline: float) -> None:
        """Renewed (or won): the lease is ours until ``deadline`` (monotonic, counted from before the command
        was sent, so never later than Redis's own expiry); past it we stop polling without asking anyone."""
        self._deadline = deadline
        if self._expiry is not None:
            self._expiry.cancel()
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_at(loop.time() + (deadline - time.monotonic()), self._lose,
                                    "the lease was not renewed in time")
        if self.role is not Role.LEADER:
            self.role, self.leader_since = Role.LEADER, time.time()
            log.info("replica %s leads: polling starts", self.replica)
            if self._lead is not None:
                self._lead()

    def _lose(self, why: str) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self.role is Role.LEADER:
            self.role, self.leader_since = Role.FOLLOWER, None
            log.warning("replica %s stops leading (%s): polling stops", self.replica, why)
            if self._follow is not None:
                self._follow()

    # -- the tail -------------------------------------------------------------------------------------
    async def _backfill_once(self) -> None:
        """Before serving: the newest entries of every stream into the hub's ring (so clients can resume from
        before this replica started), and the ids the tail goes on from. Redis down: the tail does it first
        thing once Redis answers, so it never fans out a whole stream of old entries as news."""
        try:
            await asyncio.wait_for(self._backfill(), self.block_ms / 1000 + 5)
            self._backfilled = True
            self._reachable()
        except UNREACHABLE as error:
            self._unreachable(error)

    async def _backfill(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in self._keys.values():
                pipe.xrevrange(key, count=self.hub.ring_size)
            answers = await pipe.execute()
        for key, entries in zip(self._keys.values(), answers, strict=True):
            service = self._service_of[key]
            last = len(entries) - 1  # only the newest is parsed (the snapshot's data); the ring keeps texts
            updates = [self._update(service, entry_id, fields, parse=i == last)
                       for i, (entry_id, fields) in enumerate(reversed(entries))]
            self.hub.backfill(updates)
            if entries:
                self._last_ids[key] = entries[0][0]

    async def _tail(self) -> None:
        backoff = 0.1
        while not self._stopping:
            streams: dict[Any, Any] = {key: self._last_ids.get(key, b"0-0") for key in self._keys.values()}
            try:
                if not self._backfilled:
                    await self._backfill()
                    self._backfilled = True
                    continue
                answer: Any = await self.redis.xread(streams, count=500, block=self.block_ms)
                self._reachable()
                backoff = 0.1
            except UNREACHABLE as error:
                self._unreachable(error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for key, entries in answer or ():
                service = self._service_of[key]
                for entry_id, fields in entries:
                    self._last_ids[key] = entry_id
                    try:
                        self.hub.deliver(self._update(service, entry_id, fields))
                    except (KeyError, ValueError) as error:  # not an entry of ours: skipped, said
                        log.error("%s: unreadable stream entry %r (%s)", service, entry_id, error)

    @staticmethod
    def _update(service: str, entry_id: bytes, fields: Mapping[bytes, bytes], parse: bool = True) -> Update:
        seq = int(entry_id.split(b"-", 1)[0])
        timestamp, raw, epoch = fields[b"t"].decode(), fields[b"d"], fields[b"e"].decode()
        text = dumps({"service": service, "type": MessageType.UPDATE.value, "data": orjson.Fragment(raw),
                      "timestamp": timestamp, "seq": seq, "epoch": epoch})
        return Update(service, seq, timestamp, orjson.loads(raw) if parse else NO_DATA, text, epoch)

    # -- Redis's state ---------------------------------------------------------------------------------
    def _reachable(self) -> None:
        if self.state != "connected":
            was = self.state
            self.state, self.state_since, self.last_error = "connected", time.time(), None
            if was == "unreachable":
                log.warning("Redis reachable again")
                notice(self.hub, {"redis": "connected", "since": iso(self.state_since),
                                  "message": "Redis is reachable again: updates resume"})

    def _unreachable(self, error: BaseException) -> None:
        self.last_error = f"{type(error).__name__}: {error}"[:300]
        if self.state != "unreachable":
            self.state, self.state_since = "unreachable", time.time()
            log.warning("Redis unreachable: %s", self.last_error)
            notice(self.hub, {"redis": "unreachable", "since": iso(self.state_since),
                              "message": "Redis is unreachable: no updates until it is back; stay connected"})
