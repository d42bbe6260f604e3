"""``POST /api/sentiment``: score texts with the server's sentiment runner.

``{"texts": ["...", ...]}`` gets one verdict per text, in order: a label (bullish / neutral / bearish), a score
in [-1, 1], and the model or backend that really produced it (the configured Hub model, or ``vader`` while it
loads or when it could not be had); ``sentiment_model`` says the model's state at that moment.

Bad requests get a clear error: 422 for an empty list, a text that is not a string or is blank; 413 for more
texts than ``SENTIMENT_MAX_TEXTS`` or a text longer than ``SENTIMENT_MAX_CHARS`` characters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from models.huggingface import ModelState
from models.news import ArticleSentiment

if TYPE_CHECKING:
    from config import Settings
    from inference.runner import SentimentRunner


class SentimentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[StrictStr] = Field(min_length=1, description="The texts to score (headlines, posts, sentences)",
                                   examples=[["Bitcoin ETF inflows hit a record", "Exchange halts withdrawals"]])


class SentimentResponse(BaseModel):
    results: list[ArticleSentiment]
    sentiment_model: ModelState


def build_sentiment_router(runner: SentimentRunner, settings: Settings) -> APIRouter:
    router = APIRouter(tags=["sentiment"])

    @router.post("/api/sentiment", summary="Score the sentiment of texts", response_model=SentimentResponse,
                 responses={413: {"description": "Too many texts, or a text too long"},
                            503: {"description": "The sentiment runner is not running"}})
    async def score(request: SentimentRequest) -> SentimentResponse:
        texts = request.texts
        if len(texts) > settings.sentiment_max_texts:
            raise HTTPException(413, detail=f"Too many texts: {len(texts)} (at most "
                                            f"{settings.sentiment_max_texts} per request)")
        for i, text in enumerate(texts):
            if len(text) > settings.sentiment_max_chars:
                raise HTTPException(413, detail=f"Text {i} is {len(text)} characters long (at most "
                                                f"{settings.sentiment_max_chars})")
            if not text.strip():
                raise HTTPException(422, detail=f"Text {i} is empty")
        try:
            results = await runner.score(texts)
        except RuntimeError as exc:
            raise HTTPException(503, detail=f"Sentiment scoring is unavailable: {exc}") from None
        return SentimentResponse(results=results, sentiment_model=runner.state)

    return router
