"""news' and sentiment's payloads: articles with their headline's sentiment, and the scores of the texts."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from models.freshness import Freshness


class ArticleSentiment(BaseModel):
    label: Literal["bullish", "neutral", "bearish"]
    score: float  # -1 (bearish) .. 1 (bullish)
    model: str  # the model id or backend that really produced it


class Article(BaseModel):
    id: str  # stable hash of the normalised URL (or title), for de-duplication
    title: str
    source: str  # publisher name, e.g. "CoinDesk"
    url: str
    published_at: str | None
    categories: list[str] = Field(default_factory=list)
    summary: str | None = None
    feed: str | None = None  # provider id it came from
    sentiment: ArticleSentiment | None = None


class NewsPayload(Freshness):
    articles: list[Article] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    timestamp: str



class FearGreed(BaseModel):
    value: int  # 0 (extreme fear) .. 100 (extreme greed)
    classification: str
    timestamp: str | None
    source: str


class BackendSentiment(BaseModel):
    """The texts one sentiment backend scored. Backends score on different scales (VADER's compound score is not a
    model's probability margin), so their scores are never averaged together."""

    mean: float  # -1 .. 1
    overall: Literal["bullish", "neutral", "bearish"]
    count: int  # texts this backend scored
    model: str  # the model id, or "vader"
    by_source: dict[str, float] = Field(default_factory=dict)
    label_counts: dict[str, int] = Field(default_factory=dict)


class SentimentPayload(Freshness):
    """``sentiment_score``, ``overall_sentiment``, ``sentiment_by_source``, ``label_counts`` and ``model`` are one
    backend's (``backend``: the model's when it scored any text, else the lexicon's); ``sentiment_by_backend``
    holds each backend's own. ``fetched_at`` is when the texts were fetched (the oldest of ``texts_fetched_at``),
    not when they were scored."""

    overall_sentiment: Literal["bullish", "neutral", "bearish"] | None = None
    sentiment_score: float | None = None  # -1 .. 1, None without texts
    social_volume: int | None = None  # texts scored, by any backend; None (not 0) when none were
    trending_topics: list[str] = Field(default_factory=list)
    sentiment_by_source: dict[str, float] = Field(default_factory=dict)
    timestamp: str
    fear_greed: FearGreed | None = None
    label_counts: dict[str, int] = Field(default_factory=dict)
    model: str | None = None  # the model that made the score: a model id, or "vader"
    backend: Literal["transformers", "lexicon"] | None = None  # the backend that made the score
    sentiment_by_backend: dict[str, BackendSentiment] = Field(default_factory=dict)
    texts_fetched_at: dict[str, str] = Field(default_factory=dict)  # "news" / "reddit" -> when fetched
