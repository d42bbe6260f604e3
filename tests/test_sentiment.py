"""The sentiment stream: alternative.me and Reddit normalisers, coin and topic mentions, and the service end to
end (news headlines + Reddit posts scored by the runner, Fear & Greed beside them), offline."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from inference.runner import SentimentRunner
from models.messages import iso, now_iso
from models.news import Article, ArticleSentiment, NewsPayload, SentimentPayload
from services.sentiment import (
    FEAR_GREED_EVERY,
    REDDIT_EVERY,
    REDDIT_MAX_AGE,
    SentimentService,
    build,
    mentions,
    overall,
    trending,
)
from sources.errors import AnswerError
from sources.fetcher import Fetcher
from sources.pools import Pool
from sources.providers.social import AlternativeMe, Reddit
from sources.replay import RECORDED_AT
from tests.support.clock import FakeClock
from tests.support.context import build_context
from tests.support.recordings import recorded, routes_transport
from tests.support.settings import make_settings
from tests.support.tiny_model import build_tiny_model
from ui.tabs.sentiment import render_sentiment
from ui.widgets import View
from ws.hub import Hub

FNG = "https://api.alternative.me/fng/"
REDDIT = "https://www.reddit.com/r/CryptoCurrency+Bitcoin/hot.json"
FNG_BODY = "alternative_me/fng.json"  # the replay recording
REDDIT_BODY = "sentiment/reddit-hot.built.json"
FORBIDDEN = {"message": "Forbidden", "error": 403}  # Reddit's JSON error shape (built, not recorded)
# Real headlines, as the recorded CoinDesk and The Block feeds carry them (sources/replay/*_rss).
HEADLINES = [
    ("Crypto Crash: Liquidations Top $2.5 Billion as Bitcoin, Ethereum and XRP Prices Plummet", "CoinDesk"),
    ("Bitcoin Mining Profits Hit 14-Month Low After Winter Storm Rocks Miners: CryptoQuant", "CoinDesk"),
    ("Trump Media files for two new crypto ETFs tied to Bitcoin, Ether, Cronos", "The Block"),
]


def fng() -> httpx.Response:
    """The recorded index as replay serves it: with its capture time, from which its age counts (it is a daily
    index; counted from today, a 2022 recording would be years past its 36 h)."""
    return httpx.Response(200, content=recorded(FNG_BODY), headers={RECORDED_AT: "2022-09-12T11:44:58Z"})


def ok(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "application/json"})


class FakeNews:
    name = "news"

    def __init__(self, headlines: list[tuple[str, str]]) -> None:
        self.articles = [Article(id=str(i), title=t, source=s, url=f"https://example.org/{i}", published_at=None)
                         for i, (t, s) in enumerate(headlines)]
        self.fetched_at: float | None = time.time()
        self.failing_since: float | None = None  # set: every feed fails, the articles are the last fetched

    def latest_articles(self) -> list[Article]:
        return list(self.articles)

    def headlines_fetched(self) -> tuple[float | None, float | None]:
        return self.fetched_at, self.failing_since

    async def collect(self) -> Mapping[str, Any]:
        return {}


def service(routes: dict, *, news: FakeNews | None = None, score: Any = None, score_timeout: float = 30.0,
            clock: FakeClock | None = None, wall: FakeClock | None = None) -> tuple[SentimentService, list[str]]:
    calls: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        url = str(request.url).split("?", 1)[0]
        calls.append(url)
        answer = routes.get(url)
        if answer is None:
            raise httpx.ConnectError("no route", request=request)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    fetcher = Fetcher(httpx.AsyncClient(transport=httpx.MockTransport(record)), retries=0, backoff=0.001, replay=True)
    svc = SentimentService(Pool("fear_greed", [AlternativeMe()], fetcher), Pool("social", [Reddit()], fetcher),
                           fetcher, news=news, score=score, data_source="live", score_timeout=score_timeout,
                           clock=clock or FakeClock(), wall=wall or time.time)
    return svc, calls


# -- normalisers ----------------------------------------------------------------------------------------

def test_fear_greed_recorded() -> None:
    index = AlternativeMe.normalize_fng(orjson.loads(recorded(FNG_BODY)))
    assert (index.value, index.classification, index.source) == (25, "Extreme Fear", "alternative_me")
    assert index.timestamp == "2022-09-12T00:00:00.000Z"


@pytest.mark.parametrize(("body", "error"), [
    ({"name": "Fear and Greed Index", "data": [], "metadata": {"error": "Invalid limit"}}, AnswerError),
    ({"data": [{"value": "250", "value_classification": "Greed"}], "metadata": {"error": None}}, AnswerError),
    ({"data": [{"value": "40"}], "metadata": {"error": None}}, AnswerError),  # no classification
    ({"data": [{"value": "n/a", "value_classification": "Fear"}]}, ValueError),
    ({"data": {}}, KeyError),
    ({"data": []}, IndexError),
    ([1, 2], AnswerError),
], ids=["error-body", "out-of-range", "no-classification", "not-a-number", "data-object", "empty", "a-list"])
def test_fear_greed_error_body_and_changed_shapes(body: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        AlternativeMe.normalize_fng(body)


def test_fear_greed_without_timestamp_keeps_the_value() -> None:
    index = AlternativeMe.normalize_fng({"data": [{"value": 61, "value_classification": "Greed"}]})
    assert (index.value, index.timestamp) == (61, None)


def test_reddit_listing() -> None:
    posts = Reddit.normalize_listing(orjson.loads(recorded(REDDIT_BODY)))
    assert [p.subreddit for p in posts] == ["Bitcoin", "CryptoCurrency"]  # pinned and untitled posts left out
    hack = posts[1]
    assert hack.title == "Exchange hack: $40M drained, withdrawals halted & users angry"
    assert (hack.score, hack.num_comments) == (980, 455)
    assert hack.url == "https://www.reddit.com/r/CryptoCurrency/comments/1p6x0bb/exchange_hack/"
    assert hack.created_at and hack.created_at.endswith("Z")


@pytest.mark.parametrize("body", [FORBIDDEN, {"kind": "t3", "data": {}}, ["not", "a", "listing"]],
                         ids=["refused", "not-a-listing", "a-list"])
def test_reddit_error_body_and_changed_shape(body: Any) -> None:
    with pytest.raises(AnswerError):
        Reddit.normalize_listing(body)


def test_reddit_odd_posts_are_skipped_or_left_without_values() -> None:
    raw = {"kind": "Listing", "data": {"children": [
        {"kind": "t1", "data": {"title": "a comment, not a post"}},
        {"kind": "t3", "data": {"title": "Solana rallies", "score": "many", "created_utc": None}},
    ]}}
    (post,) = Reddit.normalize_listing(raw)
    assert (post.title, post.score, post.created_at, post.url) == ("Solana rallies", None, None, None)
    with pytest.raises(KeyError):
        Reddit.normalize_listing({"kind": "Listing", "data": {}})


# -- mentions -------------------------------------------------------------------------------------------

def test_mentions_of_coins_and_topics() -> None:
    assert mentions(HEADLINES[0][0]) == {"Bitcoin", "Ethereum", "XRP", "Liquidations"}
    assert mentions("Bitcoin Cash forks again") == {"Bitcoin Cash"}  # the longer name wins
    assert mentions("$SOL and SOL rally; sol is the sun") == {"Solana"}
    assert mentions("Optimism is high, says the OP-ED") == set()  # everyday words are not coins
    assert mentions("OP token unlock") == {"Optimism"}
    assert mentions("Ether ETFs see staking approval") == {"Ethereum", "ETF", "Staking"}
    assert mentions("UAE royal's stake in a crypto venture") == set()


def test_trending_counts_texts_not_words() -> None:
    texts = ["Bitcoin Bitcoin Bitcoin", "Ethereum up", "Ethereum and the SEC", "SEC sues"]
    assert trending(texts) == ["Ethereum", "SEC", "Bitcoin", "Lawsuits"]
    assert trending(texts, limit=1) == ["Ethereum"]


def test_overall_band() -> None:
    assert [overall(s) for s in (0.5, 0.1, 0.05, -0.09, -0.1)] == ["bullish", "bullish", "neutral", "neutral",
                                                                     "bearish"]


# -- the service ----------------------------------------------------------------------------------------

async def test_headlines_and_reddit_scored_by_the_lexicon_without_a_runner() -> None:
    svc, _ = service({FNG: fng(), REDDIT: ok(recorded(REDDIT_BODY))}, news=FakeNews(HEADLINES))
    payload = await svc.collect()
    SentimentPayload.model_validate(payload)
    json.dumps(payload)
    assert payload.keys() >= {"overall_sentiment", "sentiment_score", "social_volume", "trending_topics",
                              "sentiment_by_source", "timestamp"}
    assert payload["status"] == "ok" and payload["social_volume"] == 5  # 3 headlines + 2 posts
    assert set(payload["sentiment_by_source"]) == {"CoinDesk", "The Block", "reddit"}
    assert -1 <= payload["sentiment_score"] <= 1
    assert payload["overall_sentiment"] == overall(payload["sentiment_score"])
    assert (payload["model"], payload["backend"]) == ("vader", "lexicon")
    assert sum(payload["label_counts"].values()) == 5
    assert payload["trending_topics"][:3] == ["Bitcoin", "Ethereum", "ETF"]  # 4, 2 and 2 texts
    assert payload["fear_greed"] == {"value": 25, "classification": "Extreme Fear",
                                     "timestamp": "2022-09-12T00:00:00.000Z", "source": "alternative_me"}
    assert payload["providers"]["alternative_me"]["status"] == "ok"
    assert payload["providers"]["reddit"]["status"] == "ok"
    assert payload["timestamp"].endswith("Z") and payload["message"] is None


async def test_texts_scored_by_the_runners_model(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "model", ("NEGATIVE", "POSITIVE"), "NEGATIVE")
    async with SentimentRunner(make_settings(tmp_path, sentiment_model=str(model))) as runner:
        await asyncio.wait_for(runner.loaded.wait(), 30)
        svc, _ = service({FNG: fng()}, news=FakeNews(HEADLINES), score=runner.score)
        payload = await svc.collect()
    assert (payload["model"], payload["backend"]) == (str(model), "transformers")
    assert payload["overall_sentiment"] == "bearish" and payload["sentiment_score"] < -0.1
    assert payload["label_counts"] == {"bearish": 3} and payload["social_volume"] == 3
    assert payload["providers"]["reddit"]["status"] == "error"  # no route: as if refused
    assert payload["status"] == "ok" and "Reddit" in payload["message"]


async def test_reddit_refused_and_no_news_means_no_score_never_zero() -> None:
    svc, _ = service({FNG: fng(), REDDIT: httpx.Response(403, json=FORBIDDEN)})
    payload = await svc.collect()
    assert payload["sentiment_score"] is None and payload["overall_sentiment"] is None
    assert payload["social_volume"] is None  # not 0: nothing was scored
    assert payload["sentiment_by_source"] == {} and payload["trending_topics"] == []
    assert payload["model"] is None
    assert payload["status"] == "partial" and payload["fear_greed"]["value"] == 25
    assert "news service is not running" in payload["message"] and "No texts to score" in payload["message"]
    assert "HTTP 403" in payload["providers"]["reddit"]["error"]


async def test_everything_down_is_no_data() -> None:
    svc, _ = service({}, news=FakeNews([]))
    payload = await svc.collect()
    assert payload["status"] == "no_data" and payload["fear_greed"] is None and payload["sentiment_score"] is None
    assert "No headlines yet" in payload["message"] and "Fear & Greed" in payload["message"]


async def test_fear_greed_and_reddit_are_not_fetched_every_run() -> None:
    svc, calls = service({FNG: fng(), REDDIT: ok(recorded(REDDIT_BODY))}, news=FakeNews(HEADLINES))
    first = await svc.collect()
    second = await svc.collect()
    assert calls == [FNG, REDDIT] or calls == [REDDIT, FNG]  # once each
    assert second["fear_greed"] == first["fear_greed"] and second["social_volume"] == first["social_volume"]


async def test_fear_greed_failing_later_is_shown_stale() -> None:
    routes = {FNG: fng()}
    clock = FakeClock()
    svc, _ = service(routes, news=FakeNews(HEADLINES), clock=clock)
    await svc.collect()
    routes.clear()
    clock.advance(FEAR_GREED_EVERY)  # due again now
    payload = await svc.collect()
    assert payload["fear_greed"]["value"] == 25 and payload["status"] == "stale"
    assert payload["stale_since"] and "Fear & Greed" in payload["message"]
    assert payload["sentiment_score"] is not None  # the headlines are still scored


async def test_old_reddit_posts_are_not_passed_off_as_current() -> None:
    routes = {REDDIT: ok(recorded(REDDIT_BODY))}
    clock, wall = FakeClock(), FakeClock(time.time())
    svc, _ = service(routes, clock=clock, wall=wall)
    assert (await svc.collect())["social_volume"] == 2
    routes.clear()
    clock.advance(REDDIT_EVERY)  # due again: Reddit no longer answers
    wall.advance(REDDIT_MAX_AGE + 1)
    payload = await svc.collect()
    assert payload["social_volume"] is None and "too old" in payload["message"]


async def test_a_slow_scorer_costs_this_run_not_the_stream() -> None:
    async def slow(texts: list[str]) -> list[ArticleSentiment]:
        await asyncio.sleep(5)
        return []

    svc, _ = service({}, news=FakeNews(HEADLINES), score=slow, score_timeout=0.05)
    payload = await svc.collect()
    assert payload["sentiment_score"] is None and "took over" in payload["message"]


async def test_a_failing_scorer_costs_the_score_not_the_update() -> None:
    async def broken(texts: list[str]) -> list[ArticleSentiment]:
        raise RuntimeError("the sentiment runner stopped")

    svc, _ = service({FNG: fng()}, news=FakeNews(HEADLINES), score=broken)
    payload = await svc.collect()  # published, not raised out of collect()
    assert payload["sentiment_score"] is None and payload["social_volume"] is None
    assert payload["fear_greed"]["value"] == 25 and payload["status"] == "partial"
    assert "Scoring the texts failed (RuntimeError: the sentiment runner stopped)" in payload["message"]


async def test_headlines_kept_while_every_feed_fails_are_stale_not_current() -> None:
    news = FakeNews(HEADLINES)
    svc, _ = service({FNG: fng()}, news=news)
    assert (await svc.collect())["status"] == "ok"
    fetched = time.time() - 3600
    news.fetched_at, news.failing_since = fetched, fetched + 60
    payload = await svc.collect()
    assert payload["sentiment_score"] is not None and payload["social_volume"] == 3  # still scored...
    assert payload["status"] == "stale"  # ...but said to be the last good headlines, with their age
    assert payload["age_seconds"] >= 3600 and payload["fetched_at"] == iso(fetched)
    assert payload["stale_since"] == iso(fetched + 60) and "Every news feed has failed since" in payload["message"]


async def test_build_uses_the_news_service_and_the_runner(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, data_source="live")
    routes = routes_transport({FNG: fng()})
    hub = Hub()  # sentiment reads the headlines news published there
    ctx = build_context(settings, Fetcher(httpx.AsyncClient(transport=routes), retries=0, replay=True), hub=hub)
    hub.publish("news", NewsPayload(timestamp=now_iso(), fetched_at=now_iso(),
                                    articles=FakeNews(HEADLINES).latest_articles()).model_dump(mode="json"))
    async with SentimentRunner(settings, loader=lambda: (_ for _ in ()).throw(OSError("offline")),
                               retry_delays=()) as runner:
        ctx.sentiment = runner
        (svc,) = build(ctx)
        assert set(ctx.pools) == {"fear_greed", "social"}
        payload = await svc.collect()
    assert payload is not None
    assert payload["social_volume"] == 3 and payload["model"] == "vader"
    assert payload["fear_greed"]["value"] == 25


# -- one backend's mean, the texts' own fetch time --------------------------------------------------------

MODEL = "mrm8488/distilroberta-finetuned-financial-news-sentiment-analysis"


async def test_model_and_lexicon_scores_are_never_averaged_together() -> None:
    """The runner answers with VADER for a batch the model failed on: the score is the model's alone, VADER's
    mean is kept apart, and by-source means are the model's too."""
    async def half_model(texts: list[str]) -> list[ArticleSentiment]:
        return [ArticleSentiment(label="bullish", score=0.8, model=MODEL),
                ArticleSentiment(label="bearish", score=-0.5, model="vader"),
                ArticleSentiment(label="bullish", score=0.6, model=MODEL)][:len(texts)]

    svc, _ = service({FNG: fng()}, news=FakeNews(HEADLINES), score=half_model)
    payload = await svc.collect()
    SentimentPayload.model_validate(payload)
    assert payload["sentiment_score"] == 0.7 and payload["overall_sentiment"] == "bullish"  # not (0.8-0.5+0.6)/3
    assert (payload["backend"], payload["model"]) == ("transformers", MODEL)
    assert payload["sentiment_by_source"] == {"CoinDesk": 0.8, "The Block": 0.6}  # CoinDesk's VADER -0.5 left out
    assert payload["label_counts"] == {"bullish": 2} and payload["social_volume"] == 3
    assert payload["sentiment_by_backend"] == {
        "lexicon": {"mean": -0.5, "overall": "bearish", "count": 1, "model": "vader",
                    "by_source": {"CoinDesk": -0.5}, "label_counts": {"bearish": 1}},
        "transformers": {"mean": 0.7, "overall": "bullish", "count": 2, "model": MODEL,
                         "by_source": {"CoinDesk": 0.8, "The Block": 0.6}, "label_counts": {"bullish": 2}},
    }
    assert "1 of 3 texts were scored by VADER" in payload["message"]


async def test_the_lexicon_makes_the_score_only_when_no_model_scored() -> None:
    svc, _ = service({FNG: fng()}, news=FakeNews(HEADLINES))
    payload = await svc.collect()
    assert payload["backend"] == "lexicon" and set(payload["sentiment_by_backend"]) == {"lexicon"}
    lexicon = payload["sentiment_by_backend"]["lexicon"]
    assert (lexicon["mean"], lexicon["count"], lexicon["by_source"]) == (
        payload["sentiment_score"], 3, payload["sentiment_by_source"])


async def test_fetched_at_is_when_the_texts_were_fetched_not_when_they_were_scored() -> None:
    news = FakeNews(HEADLINES)
    news.fetched_at = time.time() - 600  # the news update of ten minutes ago; its feeds still answer
    svc, _ = service({FNG: fng()}, news=news)
    payload = await svc.collect()
    assert payload["status"] == "ok" and payload["fetched_at"] == iso(news.fetched_at)
    assert payload["age_seconds"] >= 600 and payload["texts_fetched_at"] == {"news": iso(news.fetched_at)}

    svc, _ = service({FNG: fng(), REDDIT: ok(recorded(REDDIT_BODY))}, news=news)
    before = time.time()
    payload = await svc.collect()
    reddit = payload["texts_fetched_at"]["reddit"]
    assert iso(before) <= reddit and set(payload["texts_fetched_at"]) == {"news", "reddit"}
    assert payload["fetched_at"] == iso(news.fetched_at)  # the oldest of the texts scored


async def test_texts_whose_fetch_time_is_unknown_have_none_made_up() -> None:
    news = FakeNews(HEADLINES)
    news.fetched_at = None  # a news update that does not say when it was fetched
    svc, _ = service({FNG: fng()}, news=news)
    payload = await svc.collect()
    assert payload["sentiment_score"] is not None and payload["social_volume"] == 3
    assert payload["fetched_at"] is None and payload["age_seconds"] is None and payload["texts_fetched_at"] == {}


async def test_the_tab_shows_one_backends_score_and_the_other_apart() -> None:
    async def half_model(texts: list[str]) -> list[ArticleSentiment]:
        return [ArticleSentiment(label="bullish", score=0.8, model=MODEL),
                ArticleSentiment(label="bearish", score=-0.5, model="vader"),
                ArticleSentiment(label="bullish", score=0.6, model=MODEL)][:len(texts)]

    svc, _ = service({FNG: fng()}, news=FakeNews(HEADLINES), score=half_model)
    html = render_sentiment(dict(await svc.collect()), None, View(now=time.time()))
    assert "+0.70" in html and "mean of 2 texts" in html  # the model's two, not all three
    assert "1 text was scored by <b>vader</b> (lexicon) instead, mean -0.50" in html
    svc, _ = service({FNG: fng()}, news=FakeNews([]))
    html = render_sentiment(dict(await svc.collect()), None, View(now=time.time()))
    assert "no score" in html and "0 texts" not in html
