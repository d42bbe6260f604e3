"""The README's resuming client (examples/resume_client.py), run as it is across a server restart.

One ``python app.py`` (in memory, replay data) is stopped and started again on the same port and data folder:
the history restores seq and the epoch, so the client, reconnecting with ``since``, gets every update once, in
order, with none missing. Then resume over a real socket while updates keep coming: no gap, no repeat.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from pathlib import Path
from typing import Any

import httpx

from examples.resume_client import follow
from tests.support.app_process import app_process
from tests.support.paths import ROOT
from tests.support.redis_server import free_port
from tests.support.server import LiveServer
from tests.support.wsclient import Client

SERVICE = "market_data"


class Follower:
    """The example client on a loop of its own, in a thread; ``updates`` is what it handed over."""

    def __init__(self, url: str) -> None:
        self.updates: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete,
                                       args=(follow(url, SERVICE, self.updates.append, self.stop),), daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 60) -> None:
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while len(self.updates) < count:
                assert not deadline.wait(0.05), f"only {len(self.updates)} of {count} updates in {timeout} s"
        finally:
            timer.cancel()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=60)
        self.loop.close()


def test_the_example_client_misses_nothing_across_a_server_restart(tmp_path: Path) -> None:
    port = free_port()
    env = {"INTERVAL_SCALE": "0.1"}
    with app_process(tmp_path / "data", env, port=port) as first:
        follower = Follower(f"{first.ws}/ws")
        follower.wait_for(3)
    before = len(follower.updates)
    with app_process(tmp_path / "data", env, port=port):
        follower.wait_for(before + 3)
    follower.close()
    seqs = [u["seq"] for u in follower.updates]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs  # every one, once, in order
    assert len({u["epoch"] for u in follower.updates}) == 1  # the history kept the numbering


def test_resume_while_updates_keep_coming_gives_no_gap_and_no_repeat(live_server: LiveServer) -> None:
    publishing = threading.Event()
    publishing.set()

    def publish() -> None:
        n = 0
        while publishing.is_set():
            live_server.publish("news", {"n": n})
            n += 1

    for n in range(5):
        live_server.publish("news", {"n": -n})
    hub = live_server.app.state.hub
    since = {"seq": hub.seq("news") - 3, "epoch": hub.epoch_of("news")}
    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        with Client(live_server.ws, "/ws") as client:
            client.recv_type("connection_established")
            confirmed = client.request({"action": "subscribe", "service": "news", "since": since},
                                       "subscription_confirmed")
            assert confirmed["data"]["recovered"] is True and confirmed["data"]["epoch"] == since["epoch"]
            seqs = [client.recv_type("update", service="news")["seq"] for _ in range(40)]
    finally:
        publishing.clear()
        publisher.join()
    assert seqs == list(range(since["seq"] + 1, since["seq"] + 41))


def test_a_bad_since_gets_an_error_and_the_socket_stays(live_server: LiveServer) -> None:
    with Client(live_server.ws, "/ws") as client:
        client.recv_type("connection_established")
        for since in ({"seq": -1, "epoch": "x"}, {"seq": 1}, "7", {"seq": True, "epoch": "x"}):
            reply = client.request({"action": "subscribe", "service": "news", "since": since}, "error")
            assert "since" in reply["data"]["message"]
        reply = client.request({"action": "subscribe", "service": "all", "since": {"seq": 1, "epoch": "x"}},
                               "error")
        assert "one service" in reply["data"]["message"]
        assert client.request({"action": "ping"}, "pong")["type"] == "pong"


def test_a_resume_across_restarts_of_a_lost_history_says_epoch_changed(tmp_path: Path) -> None:
    env = {"INTERVAL_SCALE": "0.1"}
    with app_process(tmp_path / "one", env) as server, Client(server.ws, "/ws") as client:
        client.recv_type("connection_established")
        client.request({"action": "subscribe", "service": SERVICE}, "subscription_confirmed")
        seen = client.recv_type("update", timeout=60, service=SERVICE)
    with app_process(tmp_path / "another", env) as server, Client(server.ws, "/ws") as client:
        client.recv_type("connection_established")
        confirmed = client.request({"action": "subscribe", "service": SERVICE,
                                    "since": {"seq": seen["seq"], "epoch": seen["epoch"]}}, "subscription_confirmed")
        assert confirmed["data"]["recovered"] is False and confirmed["data"]["reason"] == "epoch_changed"


def test_the_readme_quotes_the_client_that_is_tested() -> None:
    readme = (ROOT / "README.md").read_text()
    assert inspect.getsource(follow) in readme


def test_one_process_says_it_is_standalone_and_counts_its_provider_calls(live_server: LiveServer) -> None:
    live_server.wait_for(lambda: live_server.app.state.hub.latest("market_data") is not None, timeout=60)
    health = httpx.get(live_server.base + "/healthz", timeout=10).json()
    assert health["role"] == "standalone" and health["redis"] == {"state": "disabled"}
    assert health["replica"] and health["provider_calls"] > 0  # replayed requests take the same path
    stats = httpx.get(live_server.base + "/ws/stats", timeout=10).json()["data"]
    assert stats["replica"] == health["replica"]
    update = live_server.publish("news", {"n": 1})
    assert update.epoch == live_server.app.state.hub.epoch and len(update.epoch) == 16


def test_a_resume_longer_than_the_send_queue_is_delivered_whole(live_server: LiveServer) -> None:
    hub = live_server.app.state.hub
    start = hub.seq("news")
    epoch = hub.epoch_of("news")
    for n in range(150):  # more than the 64 messages a client's queue holds
        live_server.publish("news", {"n": n})
    with Client(live_server.ws, "/ws") as client:
        client.recv_type("connection_established")
        confirmed = client.request({"action": "subscribe", "service": "news", "since": {"seq": start, "epoch": epoch}},
                                   "subscription_confirmed")
        assert confirmed["data"]["recovered"] is True
        seqs = [client.recv_type("update", service="news")["seq"] for _ in range(150)]
        assert seqs == list(range(start + 1, start + 151))
        live_server.publish("news", {"n": 150})  # and the live stream goes on
        assert client.recv_type("update", service="news")["seq"] == start + 151
