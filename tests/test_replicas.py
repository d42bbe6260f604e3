"""Two real replicas (``python app.py`` with REDIS_URL, replay data) and a real redis-server on loopback.

A client on each sees the same updates; the leader killed with ``kill -9``, the other leads, its seqs continue
without a gap or a repeat, and a client that moves over with ``since`` gets every update it missed; the follower
made no provider call while following; a FLUSHALL starts a new epoch that a resuming client is told about.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.app_process import app_process
from tests.support.redis_server import redis_server
from tests.support.wsclient import Client, Message

TTL = 2.0
SCALE = 0.1  # market_data every 0.5 s
INTERVAL = 5 * SCALE
SERVICE = "market_data"


def is_update(message: Message) -> bool:
    return message["type"] == "update" and message["service"] == SERVICE


def subscribed(base: str, since: dict[str, Any] | None = None) -> tuple[Client, Message]:
    client = Client(base, "/ws")
    client.recv_type("connection_established")
    request: dict[str, Any] = {"action": "subscribe", "service": SERVICE}
    if since is not None:
        request["since"] = since
    return client, client.request(request, "subscription_confirmed")


def updates_until(client: Client, done: Callable[[list[Message]], bool], timeout: float = 30) -> list[Message]:
    got: list[Message] = []
    while not done(got):
        got.append(client.recv_until(is_update, timeout=timeout))
    return got


def contiguous(messages: list[Message]) -> bool:
    seqs = [m["seq"] for m in messages]
    return seqs == list(range(seqs[0], seqs[0] + len(seqs)))


@pytest.mark.timing  # the takeover within TTL + one interval, measured; asserted with a wide margin
def test_two_replicas_one_poller_takeover_resume_and_a_flushed_redis(tmp_path: Path) -> None:
    with redis_server(workdir=tmp_path) as redis:
        env = {"REDIS_URL": redis.url, "LEADER_TTL": str(TTL), "INTERVAL_SCALE": str(SCALE)}
        with app_process(tmp_path / "r1", {**env, "REPLICA_ID": "r1"}) as r1:
            r1.wait_for(lambda h: h["role"] == "leader", what="r1 leads")
            with app_process(tmp_path / "r2", {**env, "REPLICA_ID": "r2"}) as r2:
                health = r2.health()
                assert health["role"] == "follower" and health["replica"] == "r2"
                assert health["redis"]["state"] == "connected"

                a, _ = subscribed(r1.ws)
                b, _ = subscribed(r2.ws)
                seen_a = updates_until(a, lambda got: len(got) >= 4)
                seen_b = updates_until(b, lambda got: bool(got) and got[-1]["seq"] >= seen_a[-1]["seq"])
                on_both = {m["seq"] for m in seen_a} & {m["seq"] for m in seen_b}
                assert len(on_both) >= 3
                by_seq = {m["seq"]: m for m in seen_b}
                for message in seen_a:  # the same seq, epoch, time and data on both replicas
                    if message["seq"] in on_both:
                        assert message == by_seq[message["seq"]]
                assert r2.health()["provider_calls"] == 0  # a follower never calls a provider
                assert r1.health()["provider_calls"] > 0

                last_a = seen_a[-1]
                r1.kill()
                took = r2.wait_for(lambda h: h["role"] == "leader", timeout=60, what="r2 leads")
                print(f"takeover after kill -9: {took:.2f} s (TTL {TTL} s, interval {INTERVAL} s)")
                assert took < 4 * (TTL + INTERVAL) + 5
                after = updates_until(b, lambda got: len(got) >= 4)
                stream_b = seen_b + after
                assert contiguous(stream_b) and len({m["epoch"] for m in stream_b}) == 1

                # A's client moves to r2 and says what it saw last: every update after it, in order.
                moved, confirmed = subscribed(r2.ws, {"seq": last_a["seq"], "epoch": last_a["epoch"]})
                assert confirmed["data"]["recovered"] is True and confirmed["data"]["epoch"] == last_a["epoch"]
                resumed = updates_until(moved, lambda got: bool(got) and got[-1]["seq"] >= stream_b[-1]["seq"] + 2)
                assert resumed[0]["seq"] == last_a["seq"] + 1 and contiguous(resumed)
                by_seq = {m["seq"]: m for m in stream_b}
                assert all(m == by_seq[m["seq"]] for m in resumed if m["seq"] in by_seq)
                assert r2.health()["provider_calls"] > 0  # it polls now

                # FLUSHALL: the numbering begins anew under another epoch, above the last seq.
                old_epoch = resumed[-1]["epoch"]
                redis.client().flushall()
                fresh = moved.recv_until(lambda m: is_update(m) and m["epoch"] != old_epoch, timeout=60)
                assert fresh["seq"] > resumed[-1]["seq"]
                late, confirmed = subscribed(r2.ws, {"seq": resumed[-1]["seq"], "epoch": old_epoch})
                data = confirmed["data"]
                assert (data["recovered"], data["reason"], data["epoch"]) == (False, "epoch_changed", fresh["epoch"])
                assert late.recv_until(is_update)["epoch"] == fresh["epoch"]
                for client in (a, b, moved, late):
                    client.close()
