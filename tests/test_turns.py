"""Fair shares of the loop: a publish to many subscribers never holds the loop for all of them at once."""

from __future__ import annotations

import asyncio
import functools

from ws.connection import Connection, ConnectionState
from ws.turns import Turns
from ws.uvicorn_protocol import Admission


class CountingSocket:
    """Records each send in one shared list, so the order across connections is visible."""

    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    async def send_text(self, text: str) -> None:
        self.log.append(self.name)

    async def close(self, code: int, reason: str) -> None:
        pass


async def run_publish(n: int, turns: Turns | None) -> tuple[int, list[str]]:
    """n connections with one queued message each: how many were sent before a callback queued at the same time
    got to run (what a handshake step or /healthz would wait for)."""
    log: list[str] = []
    conns = [Connection(CountingSocket(log, f"c{i}"), "/ws", 64, turns) for i in range(n)]  # type: ignore[arg-type]  # a stand-in
    senders = [asyncio.create_task(conn.run_sender()) for conn in conns]
    await asyncio.sleep(0)  # every sender waits for its first message
    for conn in conns:
        conn.offer("update")
    seen_by_probe: list[int] = []

    def probe() -> None:
        seen_by_probe.append(len(log))

    asyncio.get_running_loop().call_soon(probe)
    for _ in range(10_000):
        if len(log) == n:
            break
        await asyncio.sleep(0)
    for conn in conns:
        conn.mark_closed()
    await asyncio.gather(*senders)
    return seen_by_probe[0], log


async def test_without_turns_one_iteration_sends_to_everyone_first() -> None:
    before_probe, log = await run_publish(300, None)
    assert before_probe == 300 and len(log) == 300


async def test_with_turns_other_callbacks_run_after_a_round_and_everyone_still_gets_it_in_order() -> None:
    before_probe, log = await run_publish(300, Turns(per_round=32))
    assert before_probe <= 64
    assert log == [f"c{i}" for i in range(300)]  # first come, first served


async def test_the_greeting_needs_no_turn() -> None:
    turns = Turns(per_round=1)
    log: list[str] = []
    busy = Connection(CountingSocket(log, "busy"), "/ws", 64, turns)  # type: ignore[arg-type]  # a stand-in
    new = Connection(CountingSocket(log, "new"), "/ws", 64, turns)  # type: ignore[arg-type]  # a stand-in
    for _ in range(20):
        busy.offer("update")
    new.offer("greeting")
    new.offer("snapshot")
    new.skip_turns_for_queued()
    senders = [asyncio.create_task(busy.run_sender()), asyncio.create_task(new.run_sender())]
    for _ in range(10_000):
        if new.sent == 2:
            break
        await asyncio.sleep(0)
    assert new.sent == 2 and busy.sent < 20  # the new client did not wait behind the busy one's queue
    for conn in (busy, new):
        conn.mark_closed()
    await asyncio.gather(*senders)


async def test_a_sender_closed_while_waiting_for_its_turn_gives_it_up() -> None:
    turns = Turns(per_round=1)
    log: list[str] = []
    conns = [Connection(CountingSocket(log, f"c{i}"), "/ws", 64, turns) for i in range(3)]  # type: ignore[arg-type]  # a stand-in
    senders = [asyncio.create_task(conn.run_sender()) for conn in conns]
    await asyncio.sleep(0)
    for conn in conns:
        conn.offer("update")
    await asyncio.sleep(0)  # c0 sends; c1 and c2 wait for a turn
    conns[1].close(1013, "slow consumer")
    senders[1].cancel()
    for _ in range(10_000):
        if conns[2].sent:
            break
        await asyncio.sleep(0)
    assert conns[2].sent == 1 and conns[1].sent == 0
    for conn in conns:
        conn.mark_closed()
    await asyncio.gather(*senders, return_exceptions=True)
    assert turns.waiting == 0 or all(conn.state is ConnectionState.CLOSED for conn in conns)



async def test_websocket_upgrades_are_admitted_a_few_per_loop_iteration_in_order() -> None:
    """A storm of handshakes ready at once: a few per iteration, first come first served, and a callback queued at
    the same time (what a /healthz request's next step is) runs after the first round, not after all of them."""
    gate = Admission()
    ran: list[str] = []

    def upgrade(i: int) -> None:
        ran.append(f"u{i}")
        if i == 3:
            raise RuntimeError("one upgrade failed")  # logged; the others go on

    for i in range(20):
        gate.admit(functools.partial(upgrade, i))
    asyncio.get_running_loop().call_soon(ran.append, "request")
    assert ran == [f"u{i}" for i in range(gate.per_round)] and gate.waiting == 20 - gate.per_round
    while gate.admitted < 20:
        await asyncio.sleep(0)
    assert [r for r in ran if r != "request"] == [f"u{i}" for i in range(20)]
    assert ran.index("request") <= gate.per_round
    assert gate.admitted == 20 and gate.waited == 20 - gate.per_round
