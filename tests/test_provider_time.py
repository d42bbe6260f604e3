"""Providers' own times: the one reader of them (no date before 2009, none far ahead), and Fear & Greed dated by
its own reading, with the maximum age of a daily index."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from models.messages import epoch, iso
from models.news import FearGreed
from models.states import DataStatus
from services.cadence import Cadence, PacedSection
from sources.fetcher import Fetcher
from sources.pools import Pool
from sources.providers.explorers import Blockchair
from sources.providers.social import AlternativeMe, Reddit
from sources.providers.values import EARLIEST_DATA_TIME, provider_time
from sources.replay import RECORDED_AT
from tests.support.recordings import recorded

NOW = 1_780_000_000.0  # 2026-05-28T20:26:40Z


@pytest.mark.parametrize(("value", "expected"), [
    (1662940800, 1662940800.0),  # seconds
    ("1662940800", 1662940800.0),  # seconds as text (alternative.me)
    (1662940800.5, 1662940800.5),
    ("2023-04-03 14:04:50", 1680530690.0),  # ISO without a zone: UTC (Blockchair)
    ("2025-03-26T11:21:47Z", 1742988107.0),
    ("2025-03-26T12:21:47+01:00", 1742988107.0),
    ("2009-01-03T00:00:00Z", EARLIEST_DATA_TIME),  # the day of Bitcoin's genesis block: the earliest time
])
def test_provider_times_read(value: Any, expected: float) -> None:
    assert provider_time(value, now=NOW) == expected


@pytest.mark.parametrize("value", [
    0, 540, "0", "1970-01-01T00:09:00Z",  # a 0 or a test chain's block: 1970 is a bug, not a date
    "2009-01-02T23:59:59Z",  # before any crypto data existed
    1_700_000_000_000,  # milliseconds are not seconds
    NOW + 86400 + 1, iso(NOW + 2 * 86400),  # more than a day ahead of our clock
    None, "", "yesterday", True, float("nan"), float("inf"), [1662940800], {"t": 1},
])
def test_times_no_provider_data_can_have_are_none(value: Any) -> None:
    assert provider_time(value, now=NOW) is None


def test_a_little_ahead_of_our_clock_is_still_a_time() -> None:
    assert provider_time(NOW + 3600, now=NOW) == NOW + 3600  # clocks differ; a day ahead is the limit
    assert provider_time(NOW + 86400, now=NOW) == NOW + 86400


def test_normalisers_read_no_1970_date() -> None:
    stats = Blockchair.normalize_bitcoin({"data": {"best_block_height": 1, "best_block_time": "1970-01-01 00:00:00"}})
    assert stats.last_block_time is None
    fng = AlternativeMe.normalize_fng({"data": [{"value": "50", "value_classification": "Neutral", "timestamp": "0"}]})
    assert fng.timestamp is None and fng.value == 50
    listing = orjson.loads(recorded("reddit/hot.json"))
    listing["data"]["children"][0]["data"]["created_utc"] = 0
    assert Reddit.normalize_listing(listing)[0].created_at is None


# -- Fear & Greed: a daily index, stale 36 hours after its own timestamp ------------------------------------

def fear_greed_section(captured: str) -> PacedSection[FearGreed]:
    """alternative.me answering its recorded reading (of 2022-09-12 00:00 UTC), captured at ``captured``, read as
    the sentiment stream reads it: dated by the reading, at most :attr:`AlternativeMe.MAX_AGE` old."""
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=recorded("alternative_me/fng.json"),
                              headers={"content-type": "application/json", RECORDED_AT: captured})

    fetcher = Fetcher(httpx.AsyncClient(transport=httpx.MockTransport(handle)), retries=0, budgets=False, replay=True)
    pool = Pool("fear_greed", [AlternativeMe()], fetcher)
    return PacedSection(pool, lambda p: p.fetch_index(fetcher), Cadence(600), data_source="replay",
                        clock=lambda: epoch(captured) or 0.0, max_age=AlternativeMe.MAX_AGE,
                        data_time=AlternativeMe.data_time)


async def test_fear_and_greed_is_dated_by_its_reading() -> None:
    # as recorded: fetched 11 h 45 min after the reading of the day (its time_until_update says so)
    result, fresh = await fear_greed_section("2022-09-12T11:44:58Z").get()
    assert result is not None and result.value is not None and result.value.value == 25
    assert fresh.status is DataStatus.OK and fresh.data_time == "2022-09-12T00:00:00.000Z"
    assert fresh.age_seconds == 42298 and fresh.max_age_seconds == 36 * 3600


async def test_a_reading_two_days_old_is_stale_though_fetched_now() -> None:
    _, fresh = await fear_greed_section("2022-09-14T00:00:01Z").get()
    assert fresh.status is DataStatus.STALE and fresh.stale_since == "2022-09-13T12:00:00.000Z"
    assert "over the 129600 s" in (fresh.message or "")
