"""sentiment: the mood of the texts actually collected, scored by the sentiment runner, plus Fear & Greed.

Texts are the news service's headlines (its latest articles, credited to their publishers) and Reddit's hot
posts where Reddit answers (credited to ``reddit``). Every text is scored by the runner (the configured Hub
model, or VADER while it loads or without it; cached by text, so a headline seen before costs nothing), and:

- One mean per backend, never mixed: VADER's compound score and a model's probability margin are different
  scales, and the runner answers with VADER while the model loads or for a batch the model failed on, so one run
  may hold both. ``sentiment_by_backend`` has each backend's mean, verdict, count, model, means by source and
  label counts. ``sentiment_score`` (-1 bearish .. 1 bullish), ``overall_sentiment`` (which side of the neutral
  band it falls), ``sentiment_by_source``, ``label_counts`` and ``model`` are one backend's, named in
  ``backend``: the model's when it scored any text, else the lexicon's. ``social_volume`` is the number of texts
  scored. No texts, no score: those stay None (``social_volume`` too, not 0) and the message says why.
- ``fetched_at`` is when the texts scored were fetched (the news update's fetch time for headlines, Reddit's
  for posts; the oldest of them, each in ``texts_fetched_at``), never the time they were scored.
- ``trending_topics``: the coins (names, symbols, cashtags of :data:`~sources.providers.coins.COINS`) and
  market topics (:data:`TOPICS`) mentioned by the most texts.
- ``fear_greed``: alternative.me's daily index, fetched every ten minutes, reported beside the score (it is not
  folded into it: it is a different measure, of different inputs).

Without a runner (some tests) VADER scores the texts in a thread, and the payload says so.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from inference.backends import LexiconBackend
from models.freshness import Freshness
from models.messages import iso, now_iso
from models.news import ArticleSentiment, BackendSentiment, FearGreed, SentimentPayload
from models.states import DataStatus
from services.base import BuildContext, Service, combined_status
from services.cadence import Cadence, PacedSection
from services.ports import HeadlineSource, HubHeadlines
from sources.fetcher import Fetcher
from sources.limits import Clock
from sources.pools import Pool, PoolResult
from sources.providers.coins import COINS
from sources.providers.social import AlternativeMe, Reddit, RedditPost

log = logging.getLogger(__name__)

Score = Callable[[list[str]], Awaitable[list[ArticleSentiment]]]

#: A mean score within this distance of 0 is "neutral": the texts lean neither way.
NEUTRAL_BAND = 0.1
FEAR_GREED_EVERY = 600.0  # the index changes once a day
REDDIT_EVERY = 120.0  # hot lists change slowly; Reddit is strict with unauthenticated clients
#: Reddit posts older than this are not passed off as today's chatter when Reddit stops answering.
REDDIT_MAX_AGE = 3600.0
TRENDING = 10

#: Coin names that are everyday words are only counted by symbol or cashtag.
AMBIGUOUS_NAMES = frozenset({"Optimism", "Render", "Stellar", "Maker"})
COIN_ALIASES: dict[str, tuple[str, ...]] = {"ethereum": ("Ether",), "ripple": ("Ripple",),
                                            "polygon-ecosystem-token": ("Polygon", "MATIC")}
#: Market topics and how texts name them (counted once per text).
TOPICS: dict[str, str] = {
    "ETF": r"\bETFs?\b",
    "SEC": r"\bSEC\b",
    "Regulation": r"(?i:\bregulat\w*|\blegislat\w*|\blawmakers?\b)",
    "Stablecoins": r"(?i:\bstablecoins?\b)",
    "DeFi": r"(?i:\bdefi\b)",
    "NFTs": r"(?i:\bNFTs?\b)",
    "Hacks & exploits": r"(?i:\bhack(s|ed|ers?)?\b|\bexploit(s|ed)?\b|\bdrained\b|\bstolen\b)",
    "Mining": r"(?i:\bminers?\b|\bmining\b|\bhashrate\b)",
    "Halving": r"(?i:\bhalving\b)",
    "Staking": r"(?i:\b(re)?staking\b|\bstaked\b)",  # not "stake": "a stake in" is ownership
    "Airdrops": r"(?i:\bairdrops?\b)",
    "Interest rates": r"\bFed\b|\bFOMC\b|(?i:\binterest rates?\b|\brate (cut|hike)s?\b|\binflation\b)",
    "Liquidations": r"(?i:\bliquidat\w*)",
    "Treasuries": r"(?i:\btreasur(y|ies)\b)",
    "Tokenization": r"(?i:\btokeni[sz]\w*|\bRWAs?\b)",
    "AI": r"\bAI\b|(?i:\bartificial intelligence\b)",
    "Layer 2": r"(?i:\blayer[- ]?2\b|\bL2s?\b)",
    "Lawsuits": r"(?i:\blawsuits?\b|\bsue[sd]?\b|\bcourt\b)",
}


def _coin_pattern() -> tuple[re.Pattern[str], dict[str, str]]:
    """One regex for every coin (longest forms first, so "Bitcoin Cash" is not read as "Bitcoin") and what
    each matched form names. Names match in any case, symbols only in capitals ("SOL", not "sol")."""
    forms: dict[str, str] = {}  # the form as written in the pattern (lower-cased names) -> display name
    names: list[str] = []
    symbols: list[str] = []
    for coin in COINS:
        for name in (coin.name, *COIN_ALIASES.get(coin.id, ())):
            if name not in AMBIGUOUS_NAMES and not name.isupper():
                names.append(name)
                forms[name.lower()] = coin.name
        for symbol in {coin.symbol, *(a for a in COIN_ALIASES.get(coin.id, ()) if a.isupper())}:
            symbols.append(symbol)
            forms[symbol] = coin.name
    name_part = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    symbol_part = "|".join(re.escape(s) for s in sorted(symbols, key=len, reverse=True))
    pattern = rf"(?<![\w-])(?:(?i:{name_part})|\$?(?:{symbol_part}))(?![\w-])"
    return re.compile(pattern), forms


COIN_PATTERN, COIN_FORMS = _coin_pattern()
TOPIC_PATTERNS = {topic: re.compile(pattern) for topic, pattern in TOPICS.items()}


def mentions(text: str) -> set[str]:
    """The coins and topics one text mentions."""
    found = set()
    for match in COIN_PATTERN.finditer(text):
        form = match.group(0).lstrip("$")
        coin = COIN_FORMS.get(form) or COIN_FORMS.get(form.lower()) or COIN_FORMS.get(form.upper())
        if coin:
            found.add(coin)
    found.update(topic for topic, pattern in TOPIC_PATTERNS.items() if pattern.search(text))
    return found


def trending(texts: Iterable[str], limit: int = TRENDING) -> list[str]:
    """Coins and topics mentioned by the most texts, most first (ties in order of first mention)."""
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    for i, text in enumerate(texts):
        for item in mentions(text):
            counts[item] += 1
            first.setdefault(item, i)
    return sorted(counts, key=lambda item: (-counts[item], first[item], item))[:limit]


def overall(score: float) -> Literal["bullish", "neutral", "bearish"]:
    return "bullish" if score >= NEUTRAL_BAND else "bearish" if score <= -NEUTRAL_BAND else "neutral"


@dataclass(frozen=True)
class Text:
    text: str
    source: str  # publisher, or "reddit"


class SentimentService(Service):
    name = "sentiment"

    def __init__(self, fear_greed: Pool[AlternativeMe], social: Pool[Reddit], fetcher: Fetcher, *,
                 news: HeadlineSource | None, score: Score | None, data_source: Literal["live", "replay"],
                 score_timeout: float = 30.0, clock: Clock = time.monotonic, wall: Clock = time.time) -> None:
        self.fetcher = fetcher
        self.news = news
        self.score = score
        self.score_timeout = score_timeout
        self.data_source = data_source
        # Each on its own cadence while it answers; tried again on the next run after a failure.
        self._fear_greed: PacedSection[FearGreed] = PacedSection(
            fear_greed, lambda p: p.fetch_index(fetcher), Cadence(FEAR_GREED_EVERY, clock=clock),
            data_source=data_source, clock=wall, max_age=AlternativeMe.MAX_AGE, data_time=AlternativeMe.data_time)
        self._reddit: PacedSection[tuple[RedditPost, ...]] = PacedSection(
            social, lambda p: p.fetch_posts(fetcher), Cadence(REDDIT_EVERY, clock=clock), data_source=data_source,
            clock=wall)
        self._wall = wall
        self._lexicon: LexiconBackend | None = None

    async def collect(self) -> Mapping[str, Any]:
        (fg, fg_fields), (posts, reddit_fields) = await asyncio.gather(self._fear_greed.get(), self._reddit.get())
        notes: list[str] = []
        headlines = self._headlines(notes)
        reddit = self._reddit_texts(posts, reddit_fields, notes)
        texts = headlines + reddit
        verdicts = await self._score(texts, notes)

        texts_status: DataStatus = DataStatus.NO_DATA
        texts_fetched: dict[str, float] = {}
        texts_stale_since: str | None = None
        if verdicts:
            texts_status, texts_fetched, texts_stale_since = self._texts_freshness(
                bool(headlines), posts if reddit else None, reddit_fields, notes)
        if fg_fields.status in (DataStatus.STALE, DataStatus.NO_DATA):
            notes.append(f"Fear & Greed: {fg_fields.message}")
        status = combined_status([texts_status, fg_fields.status])
        fetched_at: str | None
        age: float | None
        if texts_status is DataStatus.NO_DATA:
            fetched_at, age = fg_fields.fetched_at, fg_fields.age_seconds
        elif texts_fetched:  # the texts are as old as the oldest of them
            oldest = min(texts_fetched.values())
            fetched_at, age = iso(oldest), round(max(0.0, self._wall() - oldest), 1)
        else:  # scored, but their source did not say when it fetched them: not made up
            fetched_at, age = None, None
        by_backend = _by_backend(texts, verdicts) if verdicts else {}
        payload = SentimentPayload(
            timestamp=now_iso(), status=status, data_source=self.data_source,
            fetched_at=fetched_at, age_seconds=age,
            stale_since=fg_fields.stale_since or texts_stale_since,
            providers={**fg_fields.providers, **reddit_fields.providers},
            fear_greed=fg.value if fg is not None else None,
            texts_fetched_at={name: iso(at) or "" for name, at in texts_fetched.items()},
            sentiment_by_backend=by_backend)
        if by_backend:
            # The model's verdicts when it scored any text: VADER only stands in for it.
            backend: Literal["transformers", "lexicon"] = "transformers" if "transformers" in by_backend \
                else "lexicon"
            chosen = by_backend[backend]
            payload.sentiment_score = chosen.mean
            payload.overall_sentiment = chosen.overall
            payload.social_volume = len(verdicts)
            payload.trending_topics = trending(t.text for t in texts)
            payload.sentiment_by_source = chosen.by_source
            payload.label_counts = chosen.label_counts
            payload.model = chosen.model
            payload.backend = backend
            if "lexicon" in by_backend and backend != "lexicon":
                notes.append(f"{by_backend['lexicon'].count} of {len(verdicts)} texts were scored by VADER, not "
                             f"the model: their mean is kept apart (sentiment_by_backend), not in the score.")
        payload.message = " ".join(notes) or None
        return payload.model_dump(mode="json")

    def _texts_freshness(self, scored_headlines: bool, posts: PoolResult[tuple[RedditPost, ...]] | None,
                         reddit_fields: Freshness, notes: list[str]
                         ) -> tuple[DataStatus, dict[str, float], str | None]:
        """Whether the texts scored are current, and when each of their sources fetched them (``news``: the news
        update's fetch time, ``reddit``: Reddit's). ``ok`` when one of their sources (the news feeds, Reddit)
        answers now; else ``stale``, with since when their sources fail. Headlines kept by the news service while
        every feed fails are not today's news."""
        fresh, fetched, failing_since = False, {}, []
        if scored_headlines and self.news is not None:
            news_fetched, news_failing = self.news.headlines_fetched()
            if news_failing is None:
                fresh = True
            else:
                failing_since.append(iso(news_failing))
                notes.append(f"Every news feed has failed since {iso(news_failing)}: the headlines scored are "
                             f"those fetched at {iso(news_fetched)}.")
            if news_fetched is not None:
                fetched["news"] = news_fetched
        if posts is not None and posts.fetched_at is not None:
            if reddit_fields.status is DataStatus.OK:
                fresh = True
            else:
                failing_since.append(reddit_fields.stale_since)
            fetched["reddit"] = posts.fetched_at
        if fresh:
            return DataStatus.OK, fetched, None
        return DataStatus.STALE, fetched, min((s for s in failing_since if s), default=None)

    def _headlines(self, notes: list[str]) -> list[Text]:
        if self.news is None:
            notes.append("No headlines: the news service is not running.")
            return []
        articles = self.news.latest_articles()
        if not articles:
            notes.append("No headlines yet from the news service.")
        return [Text(a.title, a.source) for a in articles if a.title.strip()]

    def _reddit_texts(self, posts: PoolResult[tuple[RedditPost, ...]] | None, fields: Freshness,
                      notes: list[str]) -> list[Text]:
        if fields.status is not DataStatus.OK:
            notes.append(f"Reddit: {fields.message}")
        if posts is None or posts.value is None or posts.fetched_at is None:
            return []
        if self._wall() - posts.fetched_at > REDDIT_MAX_AGE:
            notes.append(f"Reddit posts of {iso(posts.fetched_at)} are too old to count.")
            return []
        return [Text(p.title, "reddit") for p in posts.value]

    async def _score(self, texts: Sequence[Text], notes: list[str]) -> list[ArticleSentiment]:
        if not texts:
            notes.append("No texts to score, so no sentiment score.")
            return []
        lines = [t.text for t in texts]
        try:
            if self.score is not None:
                verdicts = await asyncio.wait_for(self.score(lines), self.score_timeout)
            else:
                verdicts = await asyncio.to_thread(self._lexicon_scores, lines)
        except TimeoutError:
            notes.append(f"Scoring {len(lines)} texts took over {self.score_timeout:.0f} s; "
                         "they will be ready (cached) next time.")
            return []
        except Exception as exc:  # a failing scorer costs the score, not the update (Fear & Greed, the notes)
            log.warning("sentiment: scoring %d texts failed (%s: %s)", len(lines), type(exc).__name__, exc)
            notes.append(f"Scoring the texts failed ({type(exc).__name__}: {exc}), so there is no score.")
            return []
        if len(verdicts) != len(lines):
            notes.append(f"The scorer returned {len(verdicts)} verdicts for {len(lines)} texts; none used.")
            return []
        return list(verdicts)

    def _lexicon_scores(self, lines: list[str]) -> list[ArticleSentiment]:
        """VADER without a runner (in a thread: loading its lexicon and scoring are CPU work)."""
        self._lexicon = self._lexicon or LexiconBackend()
        return self._lexicon.score_batch(lines)


def backend_of(verdict: ArticleSentiment) -> Literal["transformers", "lexicon"]:
    """The backend a verdict came from: VADER names itself, every other name is a model's."""
    return "lexicon" if verdict.model == LexiconBackend.name else "transformers"


def _by_backend(texts: Sequence[Text], verdicts: Sequence[ArticleSentiment]) -> dict[str, BackendSentiment]:
    """Each backend's own mean, verdict, means by source and label counts, over the texts it scored."""
    groups: dict[str, list[tuple[Text, ArticleSentiment]]] = defaultdict(list)
    for text, v in zip(texts, verdicts, strict=True):
        groups[backend_of(v)].append((text, v))
    result = {}
    for backend, scored in sorted(groups.items()):
        mean = sum(v.score for _, v in scored) / len(scored)
        by_source: dict[str, list[float]] = defaultdict(list)
        for text, v in scored:
            by_source[text.source].append(v.score)
        result[backend] = BackendSentiment(
            mean=round(mean, 4), overall=overall(mean), count=len(scored),
            model=", ".join(sorted({v.model for _, v in scored})),
            by_source={source: round(sum(s) / len(s), 4) for source, s in by_source.items()},
            label_counts=dict(Counter(v.label for _, v in scored)))
    return result


def build(ctx: BuildContext) -> list[Service]:
    fear_greed = ctx.pool("fear_greed", [ctx.provider(AlternativeMe)])
    social = ctx.pool("social", [ctx.provider(Reddit)])
    runner = ctx.sentiment
    return [SentimentService(fear_greed, social, ctx.fetcher, news=HubHeadlines(ctx.latest),
                             score=runner.score if runner is not None else None,
                             data_source=ctx.data_source,
                             score_timeout=max(5.0, ctx.intervals["sentiment"]))]
