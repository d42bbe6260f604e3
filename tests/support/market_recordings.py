"""The market providers' recorded bodies served as they were captured: with their capture time in the header the
replay transport sends it in, so ages count from when the body was recorded, as in replay mode."""

from __future__ import annotations

import json

import httpx

from sources.replay import RECORDED_AT
from tests.support.paths import REPLAY
from tests.support.recordings import recorded

#: The test fixtures' capture times (their folders' SOURCES.md say how each is known).
FIXTURES_CAPTURED: dict[str, str] = {
    "coingecko/global-2021-05-18.json": "2021-05-18T14:01:12Z",
    "coingecko/search-trending-2021-05-18.json": "2021-05-18T14:01:13Z",
    "coinpaprika/global-2021-10-22.json": "2021-10-22T18:36:46Z",
    "coincap/assets-v2-limit10.json": "2021-10-27T00:05:52.930Z",
    "cryptocompare/pricemultifull-btc-usd-eur.json": "2021-04-10T19:23:32Z",
}


def captured_at(name: str) -> str | None:
    """When the recording ``<folder>/<file>`` was captured: its replay route's ``recorded_at``, or the fixture's."""
    if name in FIXTURES_CAPTURED:
        return FIXTURES_CAPTURED[name]
    folder, _, file = name.partition("/")
    routes = REPLAY / folder / "routes.json"
    if not routes.exists():
        return None
    return next((entry.get("recorded_at") for entry in json.loads(routes.read_text()) if entry["file"] == file), None)


def as_captured(name: str) -> httpx.Response:
    """A 200 answer with the recording ``name``, carrying its capture time where it is known."""
    headers = {"content-type": "application/json"}
    if (moment := captured_at(name)) is not None:
        headers[RECORDED_AT] = moment
    return httpx.Response(200, content=recorded(name), headers=headers)
