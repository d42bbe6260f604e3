"""``POST /api/sentiment``: score texts with the server's sentiment runner.

``{"texts": ["...", ...]}`` gets one verdict per text, in order: a label (bullish / neutral / bearish), a score
in [-1, 1], and the model or backend that really produced it (the configured Hub model, or ``vader`` while it
loads or when it could not be had); ``sentiment_model`` says the model's state at that moment.

Bad requests get a clear error: 422 for an empty list, a text that is not a string or is blank; 413 for more
texts than ``SENTIMENT_MAX_TEXTS`` or a text longer than ``SENTIMENT_MAX_CHARS`` characters.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, StrictStr, create_model

from api.errors import ErrorMessage, invalid, validation_error
from models.huggingface import ModelState
from models.news import ArticleSentiment

if TYPE_CHECKING:
    from config import Settings
    from inference.runner import SentimentRunner

#: A text with a character that is not white space (as Python's str.isspace() has it), written so that Python's
#: re and ECMA-262 (the JSON Schema pattern dialect) read it alike: the document's pattern is this very test.
NOT_BLANK = ("[^\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f"
             "\\u205f\\u3000]")
_NOT_BLANK = re.compile(NOT_BLANK)


class SentimentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[StrictStr] = Field(min_length=1, description="The texts to score (headlines, posts, sentences)",
                                   examples=[["Bitcoin ETF inflows hit a record", "Exchange halts withdrawals"]])


def request_model(max_texts: int, max_chars: int) -> type[SentimentRequest]:
    """The request as this server's limits make it, for the document: the limits are checked by the route (413
    for too many or too long texts, 422 for a blank one), declared here as maxItems, maxLength and pattern."""
    text = Annotated[StrictStr, Field(json_schema_extra={"maxLength": max_chars, "pattern": NOT_BLANK})]
    field = Field(min_length=1, json_schema_extra={"maxItems": max_texts},
                  description="The texts to score (headlines, posts, sentences)",
                  examples=[["Bitcoin ETF inflows hit a record", "Exchange halts withdrawals"]])
    return create_model("SentimentRequest", __base__=SentimentRequest, texts=(list[text], field))


class SentimentResponse(BaseModel):
    results: list[ArticleSentiment]
    sentiment_model: ModelState


def build_sentiment_router(runner: SentimentRunner, settings: Settings) -> APIRouter:
    router = APIRouter(tags=["sentiment"])

    async def score(request: SentimentRequest) -> SentimentResponse:
        texts = request.texts
        if len(texts) > settings.sentiment_max_texts:
            raise HTTPException(413, detail=f"Too many texts: {len(texts)} (at most "
                                            f"{settings.sentiment_max_texts} per request)")
        for i, text in enumerate(texts):
            if len(text) > settings.sentiment_max_chars:
                raise HTTPException(413, detail=f"Text {i} is {len(text)} characters long (at most "
                                                f"{settings.sentiment_max_chars})")
            if not _NOT_BLANK.search(text):
                raise invalid(("body", "texts", i), f"Text {i} is empty", text)
        try:
            results = await runner.score(texts)
        except RuntimeError as exc:
            raise HTTPException(503, detail=f"Sentiment scoring is unavailable: {exc}") from None
        return SentimentResponse(results=results, sentiment_model=runner.state)

    # The body as this server's limits make it (the document declares them; the route checks them)
    score.__annotations__["request"] = request_model(settings.sentiment_max_texts, settings.sentiment_max_chars)
    router.post("/api/sentiment", summary="Score the sentiment of texts", response_model=SentimentResponse,
                responses={400: {"model": ErrorMessage, "description": "A body that could not be read (not UTF-8)"},
                           413: {"model": ErrorMessage, "description": "Too many texts, a text too long, or a "
                                 "body over the size limit"},
                           422: validation_error("Not a JSON object of texts, or a blank text"),
                           503: {"model": ErrorMessage, "description": "The sentiment runner is not running"}})(score)
    return router
