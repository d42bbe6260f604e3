"""news: crypto headlines from every feed at once (fan-in), merged, de-duplicated, newest first.

Each run reads every available feed through the ``news`` pool (``Pool.gather``) and merges what came back into a
bounded store of articles seen so far, so a feed that fails one run does not make its articles vanish; the
Tracker says whether this run got anything (``ok``), or whether the articles shown are from earlier runs
(``stale``), or there never were any (``no_data``).

One story is one article: two items are the same when their links agree once normalised (scheme, host case,
``www.``, trailing slash, tracking parameters) or, failing that, when their headlines agree word for word. The
first feed (in order of preference) to carry a story is credited with it.

Age cap: an article dated more than :data:`MAX_ARTICLE_AGE` before its feed was read is left out (and one kept
from earlier runs leaves once it is that old), and one dated more than :data:`FUTURE_TOLERANCE` after it is
dropped, not pinned on top of the list. In replay "when its feed was read" is when the feed was captured
(``recorded_at``), so a recorded feed shows what it showed then.

An optional ``annotate`` callable (the sentiment runner's) labels headlines that have no sentiment yet; it may be
slow or fail, and the news goes out regardless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from models.messages import epoch, now_iso
from models.news import Article, ArticleSentiment, NewsPayload
from services.base import BuildContext, Service, Tracker
from sources.fetcher import Fetcher
from sources.limits import Clock
from sources.pools import GatherResult, Pool
from sources.providers.news import FEEDS, CryptoPanic, NewsProvider, title_key

log = logging.getLogger(__name__)

Annotate = Callable[[list[str]], Awaitable[Sequence[ArticleSentiment | None]]]

MAX_PAYLOAD_CATEGORIES = 40
#: News older than a week is history, not news (dated by the publisher, against when its feed was read).
MAX_ARTICLE_AGE = 7 * 86400.0
#: A publisher's clock may run a little ahead of ours; an item dated further ahead has a wrong date.
FUTURE_TOLERANCE = 600.0


class NewsService(Service):
    name = "news"

    def __init__(self, pool: Pool[NewsProvider], fetcher: Fetcher, *, max_articles: int,
                 data_source: Literal["live", "replay"], annotate: Annotate | None = None,
                 annotate_timeout: float = 20.0, clock: Clock = time.time) -> None:
        self.pool = pool
        self.fetcher = fetcher
        self.max_articles = max_articles
        # Enough to ride out a feed's bad hour without growing without bound.
        self.keep = max(3 * max_articles, 100)
        self.annotate = annotate
        self.annotate_timeout = annotate_timeout
        self.tracker: Tracker[GatherResult[list[Article]]] = Tracker(data_source)
        self._articles: dict[str, Article] = {}  # by id, i.e. by normalised link
        self._titles: dict[str, str] = {}  # title_key -> id
        self._annotator_failing = False
        self._clock = clock
        self._feed_read: dict[str, float] = {}  # replay: feed id -> when its answer was captured

    async def collect(self) -> Mapping[str, Any]:
        result = await self.pool.gather(lambda p: p.fetch_articles(self.fetcher))
        _, freshness = self.tracker.observe(result)
        for feed in result.values:
            state = result.sources.get(feed)
            if (captured := epoch(state.recorded_at) if state is not None else None) is not None:
                self._feed_read[feed] = captured
        now = self._clock()
        left_out: Counter[str] = Counter()
        for feed, articles in result.values.items():  # in order of preference
            current = [a for a in articles if self._current(a, now)]
            if len(current) < len(articles):
                left_out[feed] = len(articles) - len(current)
            self._merge(current)
        self._prune(now)
        if left_out:
            freshness = freshness.with_note(
                f"left out as older than {MAX_ARTICLE_AGE / 86400:.0f} days or dated ahead of their feed: "
                + ", ".join(f"{count} from {feed}" for feed, count in left_out.items()))
        await self._annotate()
        shown = self.latest_articles()
        payload = NewsPayload(timestamp=freshness.fetched_at or now_iso(), articles=shown,
                              sources=_ranked(a.source for a in shown),
                              categories=_ranked((c for a in shown for c in a.categories), MAX_PAYLOAD_CATEGORIES),
                              **freshness.fields())
        return payload.model_dump(mode="json")

    def headlines_fetched(self) -> tuple[float | None, float | None]:
        """When a feed last answered (Unix time) and, while every feed fails, since when: how current the
        articles kept here are, for those who score them (the sentiment service)."""
        last = self.tracker.last
        return (last.fetched_at if last is not None else None), self.tracker.failing_since

    @property
    def stored(self) -> tuple[int, int]:
        """How many articles, and how many headlines in the de-duplication index, are kept (both bounded)."""
        return len(self._articles), len(self._titles)

    def latest_articles(self) -> list[Article]:
        """The newest articles (at most ``max_articles``), newest first; copies, safe to keep or change."""
        return [a.model_copy(deep=True) for a in self._newest_first()[:self.max_articles]]

    # -- the store ------------------------------------------------------------------------------------
    def _newest_first(self) -> list[Article]:
        # ISO-8601 UTC strings of one format sort as the moments do; undated articles go last.
        return sorted(self._articles.values(), key=lambda a: a.published_at or "", reverse=True)

    def _merge(self, articles: Iterable[Article]) -> None:
        for article in articles:
            key = title_key(article.title)
            known = self._articles.get(article.id) or self._articles.get(self._titles.get(key, ""))
            if known is not None:
                # The story again (this run or an earlier one): keep the first copy and its sentiment, but
                # take facts it lacked. A later date on the same link is the publisher's (Cointelegraph reuses
                # one link for its daily round-up), so it moves the story up.
                if article.published_at is not None and (
                        known.published_at is None
                        or (known.id == article.id and article.published_at > known.published_at)):
                    known.published_at = article.published_at
                if not known.summary and article.summary:
                    known.summary = article.summary
                continue
            self._articles[article.id] = article
            self._titles[key] = article.id

    def _current(self, article: Article, now: float) -> bool:
        """Whether an article is news: dated neither more than :data:`MAX_ARTICLE_AGE` before its feed was read
        (now, or in replay when the feed was captured) nor more than :data:`FUTURE_TOLERANCE` after. Undated
        articles are kept (they sort last)."""
        published = epoch(article.published_at)
        if published is None:
            return True
        read = self._feed_read.get(article.feed or "", now)
        return read - MAX_ARTICLE_AGE <= published <= read + FUTURE_TOLERANCE

    def _prune(self, now: float) -> None:
        aged = [a for a in self._articles.values() if not self._current(a, now)]
        if not aged and len(self._articles) <= self.keep:
            return
        kept = [a for a in self._newest_first() if self._current(a, now)][:self.keep]
        self._articles = {a.id: a for a in kept}
        self._titles = {title_key(a.title): a.id for a in kept}

    async def _annotate(self) -> None:
        if self.annotate is None:
            return
        # Every shown headline, each run: the runner answers from its cache unless its backend changed (the model
        # finished loading), so headlines first scored by the lexicon get the model's verdict.
        pending = self._newest_first()[:self.max_articles]
        if not pending:
            return
        try:
            verdicts = await asyncio.wait_for(self.annotate([a.title for a in pending]), self.annotate_timeout)
            if len(verdicts) != len(pending):
                raise ValueError(f"{len(verdicts)} verdicts for {len(pending)} headlines")
        except Exception as exc:  # a broken annotator must never stop the news
            # Said once per failing streak, not every minute.
            log.log(logging.DEBUG if self._annotator_failing else logging.WARNING,
                    "news: headline sentiment unavailable (%s: %s)", type(exc).__name__, exc)
            self._annotator_failing = True
            return
        self._annotator_failing = False
        for article, verdict in zip(pending, verdicts, strict=True):
            if isinstance(verdict, ArticleSentiment):
                article.sentiment = verdict


def _ranked(values: Iterable[str], limit: int | None = None) -> list[str]:
    """Distinct values, most frequent first (ties in order of first appearance)."""
    return [value for value, _ in Counter(values).most_common(limit)]


def build(ctx: BuildContext) -> list[Service]:
    providers: list[NewsProvider] = [ctx.provider(cls) for cls in FEEDS]
    # disabled (never called) without CRYPTOPANIC_TOKEN
    providers.append(CryptoPanic(ctx.settings.key("cryptopanic_token"), plan=ctx.settings.cryptopanic_plan))
    pool = ctx.pool("news", providers)
    annotate = ctx.sentiment.annotate if ctx.sentiment is not None else None
    return [NewsService(pool, ctx.fetcher, max_articles=ctx.settings.news_max_articles,
                        data_source=ctx.data_source, annotate=annotate)]
