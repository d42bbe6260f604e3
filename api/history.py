"""History REST routes: stored updates, a coin's series for charts, and streamed exports.

``since`` and ``until`` take ISO-8601 (``2026-11-26T10:00:00Z``) or Unix seconds. A bad parameter gets a 422
whose ``detail`` says which one and why; an unknown service or coin a 404.

Every route serves the current mode's history only (the store is that mode's file, see :mod:`storage.history`):
replayed updates never appear in a live server's history, series or exports, nor live ones in replay. Answers say
which (``data_source``); a replay export's file name says ``replay``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response, StreamingResponse

from api.errors import require_service
from models.messages import epoch, now_iso, parse_iso
from storage.history import HistoryUnreadable, Store

MAX_LIMIT = 10_000


def _moment(name: str, value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):
            raise HTTPException(422, detail=f"Invalid {name!r}: {value!r} is not a finite number")
        return seconds
    moment = epoch(value)
    if moment is None:
        raise HTTPException(422, detail=f"Invalid {name!r}: {value!r} is neither ISO-8601 nor Unix seconds")
    if not _names_its_zone(value):
        raise HTTPException(422, detail=f"Invalid {name!r}: {value!r} has no time zone (add Z for UTC)")
    return moment


def _names_its_zone(value: str) -> bool:
    """Whether an ISO-8601 time says its zone (``Z`` or an offset): then a second one cannot follow it.

    ``parse_iso`` takes a time without one as UTC; a query asks instead, as a local time taken for UTC would
    shift the range by hours without a word."""
    return parse_iso(f"{value.strip()}+00:00") is None


def _range(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    start, end = _moment("since", since), _moment("until", until)
    if start is not None and end is not None and start > end:
        raise HTTPException(422, detail=f"Invalid range: since ({since}) is after until ({until})")
    return start, end


Since = Annotated[str | None, Query(description="ISO-8601 or Unix seconds, inclusive")]
Until = Annotated[str | None, Query(description="ISO-8601 or Unix seconds, inclusive")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many updates")]


def build_history_router(store: Store) -> APIRouter:
    router = APIRouter(tags=["history"])

    @router.get("/api/history/market_data/{coin}", summary="A coin's price, volume and market cap over time")
    async def coin_history(coin: str, since: Since = None, until: Until = None,
                           limit: Limit = 1000) -> dict[str, Any]:
        start, end = _range(since, until)
        try:
            series = await store.coin_series(coin.lower(), start, end, limit)
        except HistoryUnreadable as error:  # the store is on it (a damaged file is set aside, a new one begun)
            raise HTTPException(503, detail=str(error)) from None
        if not series["timestamps"]:
            raise HTTPException(404, detail=f"No stored prices for coin {coin!r} in this range")
        return {"status": "success", "coin": coin.lower(), "data_source": store.mode,
                "points": len(series["timestamps"]), **series, "timestamp": now_iso()}

    @router.get("/api/history/{service}", summary="Stored updates of a service, newest first")
    async def service_history(service: str, since: Since = None, until: Until = None,
                              limit: Limit = 100) -> Response:
        require_service(service)
        start, end = _range(since, until)
        try:
            texts = await store.history_texts(service, start, end, limit)
        except HistoryUnreadable as error:
            raise HTTPException(503, detail=str(error)) from None
        # The stored texts are spliced in as they are: parsing and re-serialising thousands of updates is what
        # would cost time here.
        head = orjson.dumps({"status": "success", "service": service, "data_source": store.mode,
                             "count": len(texts), "timestamp": now_iso()})
        body = await asyncio.to_thread(_splice, head, "updates", texts)
        return Response(body, media_type="application/json")

    @router.get("/api/export/{service}", summary="Every stored update of a service, streamed as CSV or JSON")
    async def export(service: str, format: Literal["csv", "json"] = "json", since: Since = None,
                     until: Until = None) -> StreamingResponse:
        require_service(service)
        start, end = _range(since, until)
        rows = store.export(service, start, end)
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        mode = "-replay" if store.mode == "replay" else ""
        filename = f"{service}{mode}-{stamp}.{format}"
        headers = {"content-disposition": f'attachment; filename="{filename}"'}
        if format == "csv":
            return StreamingResponse(_csv(rows), media_type="text/csv", headers=headers)
        return StreamingResponse(_json_array(rows), media_type="application/json", headers=headers)

    return router


def _splice(head: bytes, key: str, texts: list[bytes]) -> bytes:
    """``head`` (a JSON object) with ``key`` added: the array of the JSON ``texts``. (Large joins release the GIL.)"""
    return b"".join((head[:-1], b',"', key.encode(), b'":[', b",".join(texts), b"]}"))


async def _json_array(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    yield b"["
    first = True
    async for row in rows:
        yield (b"" if first else b",\n") + orjson.dumps(row)
        first = False
    yield b"]\n"


async def _csv(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    """One row per update: service, seq, timestamp, and the payload as JSON (payload shapes differ per service)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["service", "seq", "timestamp", "data"])
    async for row in rows:
        writer.writerow([row.get("service"), row.get("seq"), row.get("timestamp"),
                         orjson.dumps(row.get("data")).decode()])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
