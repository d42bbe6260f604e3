"""A client that never misses an update: it reconnects with backoff and resumes with ``since``.

    python examples/resume_client.py ws://localhost:7860/ws market_data
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import Callable
from typing import Any

import websockets


async def follow(url: str, service: str, handle: Callable[[dict[str, Any]], None],
                 stop: asyncio.Event | None = None) -> None:
    """Call ``handle`` once per update of ``service``, in seq order, across disconnects and server restarts."""
    last: dict[str, Any] | None = None  # {"seq": ..., "epoch": ...} of the last update handled
    delay = 0.5
    while stop is None or not stop.is_set():
        try:
            async with websockets.connect(url) as ws:
                request: dict[str, Any] = {"action": "subscribe", "service": service}
                if last is not None:
                    request["since"] = last  # "I have everything up to here": the server sends the rest
                await ws.send(json.dumps(request))
                delay = 0.5
                async for raw in ws:
                    message = json.loads(raw)
                    if message["type"] == "subscription_confirmed" and message["data"].get("recovered") is False:
                        print(f"could not resume ({message['data']['reason']}): starting from the latest")
                    elif message["type"] == "update" and message["service"] == service:
                        if last and message["epoch"] == last["epoch"] and message["seq"] <= last["seq"]:
                            continue  # already handled (a snapshot we had)
                        last = {"seq": message["seq"], "epoch": message["epoch"]}
                        handle(message)
                    if stop is not None and stop.is_set():
                        return
        except (OSError, websockets.ConnectionClosed):
            pass  # server gone or restarting (a planned restart closes with 1012): try again
        await asyncio.sleep(delay + random.uniform(0, delay))  # backoff with jitter
        delay = min(delay * 2, 30.0)


if __name__ == "__main__":
    asyncio.run(follow(sys.argv[1], sys.argv[2], lambda m: print(m["seq"], m["epoch"], m["timestamp"])))
