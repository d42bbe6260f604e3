"""Sentiment inputs besides the news: alternative.me's Fear & Greed index and Reddit's hot posts.

Each provider declares itself with class attributes and hands its raw answer to a pure ``normalize_*``
classmethod (tested on recorded and documented bodies). Reddit refuses most cloud addresses (HTTP 403): it is
best-effort, and the sentiment service works from the news headlines without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from models.messages import epoch, iso
from models.news import FearGreed
from sources.errors import AnswerError
from sources.fetcher import Fetcher, Provider
from sources.limits import Rate
from sources.pools import PoolResult
from sources.providers.values import provider_time


class AlternativeMe(Provider):
    id = "alternative_me"
    name = "Alternative.me Fear & Greed"
    category = "sentiment"
    base_url = "https://api.alternative.me"
    endpoints = ("/fng/",)
    docs = "https://alternative.me/crypto/fear-and-greed-index/#api"
    # The index changes once a day and the service asks every ten minutes; the documented limit is far higher.
    rate = Rate(6, 60, burst=2)
    probe_path = "/fng/"
    probe_keys = ("data",)
    probe_params = MappingProxyType({"limit": "1"})
    probe_interval = 1800.0
    #: The index is one reading a day, dated 00:00 UTC: past 36 hours from its own timestamp a newer one should
    #: long exist, so an older reading is stale however freshly it was fetched.
    MAX_AGE = 36 * 3600.0

    @staticmethod
    def data_time(result: PoolResult[FearGreed]) -> float | None:
        """The reading's own time, to date a Fear & Greed answer by (``Tracker(data_time=...)``)."""
        return epoch(result.value.timestamp) if result.value is not None else None

    async def fetch_index(self, fetcher: Fetcher, max_wait: float = 0.0) -> FearGreed:
        raw = await fetcher.get_json(self, "/fng/", {"limit": "1"}, max_wait=max_wait)
        return self.normalize_fng(raw)

    @classmethod
    def normalize_fng(cls, raw: Any) -> FearGreed:
        """``data[0]``: the latest reading; every value is a string (``"value": "25"``)."""
        if not isinstance(raw, dict):
            raise AnswerError(f"alternative.me: expected an object, got {type(raw).__name__}")
        error = (raw.get("metadata") or {}).get("error")
        if error:
            raise AnswerError(f"alternative.me error: {error}")
        latest = raw["data"][0]
        value = int(str(latest["value"]))
        if not 0 <= value <= 100:
            raise AnswerError(f"alternative.me: index {value} is outside 0..100")
        classification = str(latest.get("value_classification") or "").strip()
        if not classification:
            raise AnswerError("alternative.me: the reading has no classification")
        return FearGreed(value=value, classification=classification,
                         timestamp=iso(provider_time(latest.get("timestamp"))), source=cls.id)


@dataclass(frozen=True)
class RedditPost:
    title: str
    subreddit: str
    score: int | None
    num_comments: int | None
    created_at: str | None
    url: str | None


class Reddit(Provider):
    id = "reddit"
    name = "Reddit"
    category = "social"
    base_url = "https://www.reddit.com"
    endpoints = ("/r/CryptoCurrency+Bitcoin/hot.json",)
    docs = "https://www.reddit.com/dev/api/#GET_hot"
    # Unauthenticated clients are held to a few requests a minute; hot lists change slowly anyway.
    rate = Rate(2, 60, burst=1)
    probe_path = "/r/CryptoCurrency/about.json"
    probe_keys = ("data",)
    probe_interval = 3600.0
    #: One multireddit request ("a+b") lists the hot posts of both, each post naming its subreddit.
    SUBREDDITS = ("CryptoCurrency", "Bitcoin")

    async def fetch_posts(self, fetcher: Fetcher, limit: int = 25, max_wait: float = 0.0) -> tuple[RedditPost, ...]:
        path = f"/r/{'+'.join(self.SUBREDDITS)}/hot.json"
        # raw_json=1: titles come with & < > as they are, not HTML-escaped
        raw = await fetcher.get_json(self, path, {"limit": str(limit), "raw_json": "1"}, max_wait=max_wait)
        return self.normalize_listing(raw)

    @classmethod
    def normalize_listing(cls, raw: Any) -> tuple[RedditPost, ...]:
        """A ``Listing`` of ``t3`` (link) things. Pinned posts (the daily discussion threads) are left out:
        their titles say nothing about the market."""
        if not isinstance(raw, dict):
            raise AnswerError(f"reddit: expected an object, got {type(raw).__name__}")
        if "error" in raw:
            raise AnswerError(f"reddit error {raw['error']}: {raw.get('reason') or raw.get('message') or ''}".strip())
        if raw.get("kind") != "Listing":
            raise AnswerError(f"reddit: expected a Listing, got kind {raw.get('kind')!r}")
        posts = []
        for child in raw["data"]["children"]:
            post = child.get("data") or {}
            title = str(post.get("title") or "").strip()
            if child.get("kind") != "t3" or not title or post.get("stickied"):
                continue
            permalink = post.get("permalink")
            score, comments = post.get("score"), post.get("num_comments")
            posts.append(RedditPost(
                title=title, subreddit=str(post.get("subreddit") or ""),
                score=score if isinstance(score, int) and not isinstance(score, bool) else None,
                num_comments=comments if isinstance(comments, int) and not isinstance(comments, bool) else None,
                created_at=iso(provider_time(post.get("created_utc"))),
                url=f"https://www.reddit.com{permalink}" if isinstance(permalink, str) else None))
        return tuple(posts)
