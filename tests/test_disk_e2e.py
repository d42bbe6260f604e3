"""The disk refusing writes under the real server process (issue 13, point 5): ``python app.py`` in replay mode,
whose file-size limit (RLIMIT_FSIZE, set from outside with prlimit) the test lowers to 0 for a while: every write
to a file fails, as on a full disk, with no mount and no root needed. Streaming goes on, ``/healthz`` and the
persistence stream say what fails and since when, and once the limit is lifted every update published meanwhile is
stored (the updates were few: nothing had to be dropped) and nothing stored before is lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import pytest

from tests.support.paths import ROOT

pytestmark = pytest.mark.skipif(not hasattr(resource, "prlimit"), reason="prlimit is Linux-only")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60.0) -> None:
    """A bound, not a pace: polled until true."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout} s")
        await asyncio.sleep(0.2)


async def drain(stream: asyncio.StreamReader, into: bytearray) -> None:
    """The server's output, read as it comes (a pipe: a file would be refused by the lowered limit too)."""
    while chunk := await stream.read(65536):
        into += chunk


async def listen(base: str, seqs: list[int]) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(base.replace("http", "ws")
                                                                       + "/ws/market_data") as ws:
        async for message in ws:
            envelope = orjson.loads(message.data)
            if envelope.get("type") == "update" and not envelope.get("restored"):
                seqs.append(envelope["seq"])


async def test_a_disk_refusing_writes_stops_nothing_and_loses_nothing(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and k not in ("HF_TOKEN",)}
    env.update(DATA_SOURCE="replay", HOST="127.0.0.1", PORT=str(port), INTERVAL_SCALE="0.05",
               DATA_DIR=str(tmp_path / "data"), HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
               PYTHONUNBUFFERED="1", LOG_LEVEL="info")
    proc = await asyncio.create_subprocess_exec(sys.executable, "app.py", cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    output = bytearray()
    tasks = [asyncio.create_task(drain(proc.stdout, output))]
    seqs: list[int] = []
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    try:
        async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=30) as client:

            async def up() -> bool:
                assert proc.returncode is None, output.decode(errors="replace")[-3000:]
                with contextlib.suppress(httpx.TransportError):
                    return (await client.get("/healthz")).status_code == 200
                return False

            async def storage() -> dict[str, Any]:
                status: dict[str, Any] = (await client.get("/healthz")).json()["storage"]
                return status

            async def stored(service: str) -> list[int]:
                answer = await client.get(f"/api/history/{service}", params={"limit": 10_000})
                return sorted(u["seq"] for u in answer.json()["updates"])

            await until(up, "up", 120)
            tasks.append(asyncio.create_task(listen(base, seqs)))
            await until(lambda: _true(len(seqs) >= 3), "streaming")
            await until(lambda: _stored_at_least(stored, seqs[0]), "storing")
            before = await stored("market_data")

            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (0, hard))  # no file may grow, nor be written
            refused_at = len(seqs)

            async def failing() -> bool:
                return (await storage())["status"] == "failing"

            await until(failing, "failing")
            await until(lambda: _true(len(seqs) >= refused_at + 10), "streaming on while failing")
            status = status_during = await storage()
            assert status["kind"] and status["error"] and status["since"].endswith("Z") and status["pending"] > 0
            await until(lambda: _persistence_failing(client), "the persistence stream failing")
            persistence = await _writes(client)
            assert persistence["kind"] == status["kind"] and persistence["since"] == status["since"]
            during = seqs[-1]

            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (hard, hard))  # space returns

            async def recovered() -> bool:
                status = await storage()
                return status["status"] == "ok" and status["pending"] == 0

            await until(recovered, "writing again")
            after = await stored("market_data")
            status = await storage()
            await until(lambda: _persistence_ok(client), "the persistence stream ok again")
            last = await _writes(client)
    finally:
        with contextlib.suppress(ProcessLookupError):
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (hard, hard))
        for task in tasks[1:]:
            task.cancel()
        if proc.returncode is None:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
        await asyncio.gather(*tasks, return_exceptions=True)
    log = output.decode(errors="replace")
    print(orjson.dumps({"while_failing": status_during, "after": status, "last_outage": last.get("last_outage"),
                        "published_meanwhile": during - seqs[refused_at - 1], "stored": len(after)}).decode())
    assert set(before) <= set(after)  # nothing stored before is lost
    first = after[0]
    assert after == list(range(first, after[-1] + 1)) and after[-1] >= during  # nor anything published meanwhile
    assert status["dropped"] == 0
    assert "Traceback" not in log, log[-3000:]
    assert "cannot store updates" in log and "storing updates in" in log
    outage = last["last_outage"]
    assert outage["kind"] and outage["until"] >= outage["since"] and outage["dropped"] == 0


async def _true(value: bool) -> bool:
    return value


async def _stored_at_least(stored: Callable[[str], Awaitable[list[int]]], seq: int) -> bool:
    return seq in await stored("market_data")


async def _writes(client: httpx.AsyncClient) -> dict[str, Any]:
    """``writes`` of the persistence stream's latest update ({} before its first)."""
    answer = await client.get("/api/persistence")
    writes: dict[str, Any] = answer.json()["data"]["writes"] if answer.status_code == 200 else {}
    return writes


async def _persistence_failing(client: httpx.AsyncClient) -> bool:
    return (await _writes(client)).get("status") == "failing"


async def _persistence_ok(client: httpx.AsyncClient) -> bool:
    writes = await _writes(client)
    return writes.get("status") == "ok" and bool(writes.get("last_outage"))
