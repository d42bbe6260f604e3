"""History REST routes: stored updates, a coin's series for charts, and streamed exports.

``since`` and ``until`` take RFC 3339 (ISO-8601 with its zone: ``2026-11-26T10:00:00Z``) or Unix seconds. A bad
parameter gets a 422 (FastAPI's validation-error list) whose entry says which one and why; an unknown service or
coin a 404.

Every route serves the current mode's history only (the store is that mode's file, see :mod:`storage.history`):
replayed updates never appear in a live server's history, series or exports, nor live ones in replay. Answers say
which (``data_source``); a replay export's file name says ``replay``.
"""

from __future__ import annotations

import asyncio
import calendar
import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, WithJsonSchema

from api.errors import UNKNOWN_SERVICE, ErrorMessage, Service, invalid, require_service, validation_error
from models.messages import now_iso
from models.wire import AnyUpdate, ServiceName
from storage.history import HistoryUnreadable, Store

MAX_LIMIT = 10_000
#: The history file could not be read (damaged: the store sets it aside and begins a new one); try again.
UNREADABLE: dict[str, Any] = {"model": ErrorMessage, "description": "The history database could not be read"}


#: Unix seconds up to the end of year 9999, as RFC 3339 times can say.
MAX_UNIX_SECONDS = 253_402_300_799.0
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_RFC3339 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
                      r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))")
#: What ``since`` and ``until`` take, as the document says it: exactly what :func:`_moment` accepts.
MOMENT_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "format": "date-time"},
              {"type": "number", "minimum": 0, "maximum": MAX_UNIX_SECONDS},
              {"type": "string", "maxLength": 0, "description": "empty: no bound"}]}


def _moment(name: str, value: str | None) -> float | None:
    """Unix seconds from a JSON number in [0, MAX_UNIX_SECONDS] or an RFC 3339 time (ISO-8601 with its zone)."""
    if value is None or value == "":
        return None
    if _NUMBER.fullmatch(value):
        seconds = float(value)
        if not 0 <= seconds <= MAX_UNIX_SECONDS:
            raise invalid(("query", name), f"Invalid {name!r}: {value!r} is not Unix seconds between 0 and "
                                         f"{MAX_UNIX_SECONDS:.0f}", value)
        return seconds
    moment = _rfc3339(value)
    if moment is None:
        raise invalid(("query", name), f"Invalid {name!r}: {value!r} is neither an RFC 3339 time (ISO-8601 with a "
                                     "time zone, e.g. 2026-11-26T10:00:00Z) nor Unix seconds", value)
    return moment


def _rfc3339(value: str) -> float | None:
    """Unix seconds of an RFC 3339 date-time (years 0000-9999, a leap second counted as the next second)."""
    match = _RFC3339.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    if hour > 23 or minute > 59 or second > 60:
        return None
    offset = 0
    if match[8] is not None:
        offset_hours, offset_minutes = int(match[9]), int(match[10])
        if offset_hours > 23 or offset_minutes > 59:
            return None
        offset = (offset_hours * 60 + offset_minutes) * 60 * (-1 if match[8] == "-" else 1)
    seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    return seconds + float(match[7] or 0) - offset


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm; year 0 included)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


def _range(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    start, end = _moment("since", since), _moment("until", until)
    if start is not None and end is not None and start > end:
        raise invalid(("query", "since"), f"Invalid range: since ({since}) is after until ({until})", since)
    return start, end


_MOMENT = WithJsonSchema(MOMENT_SCHEMA)
_EXAMPLES = {"RFC 3339": {"value": "2026-11-26T10:00:00Z"}, "Unix seconds": {"value": 1764151200}}
Since = Annotated[str | None, _MOMENT, Query(description="RFC 3339 or Unix seconds, inclusive",
                                             openapi_examples=_EXAMPLES)]
Until = Annotated[str | None, _MOMENT, Query(description="RFC 3339 or Unix seconds, inclusive; not before since",
                                             openapi_examples=_EXAMPLES)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many updates",
                             openapi_examples={"ten": {"value": 10}})]
Format = Annotated[Literal["csv", "json"], Query(openapi_examples={"csv": {"value": "csv"}})]
Coin = Annotated[str, Path(description="A coin id as market_data names it (its prices' keys)",
                           openapi_examples={"bitcoin": {"value": "bitcoin"}})]
VALIDATION = validation_error("A bad parameter (also: since after until)")


class CoinSeries(BaseModel):
    """A coin's series for charts: one point per stored market_data fetch, oldest first."""

    status: Literal["success"]
    coin: str
    data_source: Literal["live", "replay"]
    points: int
    timestamps: list[str]
    prices: list[float]
    volumes: list[float | None]
    market_caps: list[float | None]
    quote_currencies: list[str | None] = Field(description="USD or USDT, None where the update does not say")
    sources: list[str | None]
    timestamp: str


class ServiceHistory(BaseModel):
    status: Literal["success"]
    service: ServiceName
    data_source: Literal["live", "replay"]
    count: int
    timestamp: str
    updates: list[AnyUpdate] = Field(description="Each as WebSocket subscribers got it")


def build_history_router(store: Store) -> APIRouter:
    router = APIRouter(tags=["history"])

    @router.get("/api/history/market_data/{coin}", summary="A coin's price, volume and market cap over time",
                response_model=None, responses={
                    200: {"model": CoinSeries, "description": "The coin's series, oldest first"},
                    404: {"model": ErrorMessage, "description": "No stored price of this coin in the range"},
                    422: VALIDATION, 503: UNREADABLE})
    async def coin_history(coin: Coin, since: Since = None, until: Until = None,
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

    @router.get("/api/history/{service}", summary="Stored updates of a service, newest first",
                responses={200: {"model": ServiceHistory, "description": "The stored updates, newest first"},
                           **UNKNOWN_SERVICE, 422: VALIDATION, 503: UNREADABLE})
    async def service_history(service: Service, since: Since = None, until: Until = None,
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

    @router.get("/api/export/{service}", summary="Every stored update of a service, streamed as CSV or JSON",
                responses={200: {"model": list[AnyUpdate], "description": "The stored updates, oldest first, as a "
                                 "file: JSON, or CSV with the columns service, seq, timestamp, data (as JSON)",
                                 "content": {"text/csv": {"schema": {"type": "string"}}}},
                           **UNKNOWN_SERVICE, 422: VALIDATION})
    async def export(service: Service, format: Format = "json", since: Since = None,
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
