"""POST /api/sentiment and the dashboard's sentiment panel, over a runner serving a tiny local model (or
VADER when the configured model cannot be loaded)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import httpx
import pytest
from fastapi import FastAPI

from api.sentiment import build_sentiment_router
from config import Settings
from inference.runner import SentimentRunner
from tests.support.settings import make_settings
from tests.support.tiny_model import build_tiny_model
from ui.sentiment_panel import build_sentiment_panel, panel_verdict

URL = "/api/sentiment"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), ("negative", "neutral", "positive"), "positive")


@pytest.fixture
def settings(tmp_path: Path, tiny: Path) -> Settings:
    return make_settings(tmp_path, sentiment_model=str(tiny), sentiment_max_texts=3, sentiment_max_chars=50)


@pytest.fixture
async def runner(settings: Settings) -> AsyncIterator[SentimentRunner]:
    async with SentimentRunner(settings) as running:
        await asyncio.wait_for(running.loaded.wait(), 30)
        yield running


def client(runner: SentimentRunner, settings: Settings) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(build_sentiment_router(runner, settings))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_each_text_gets_a_label_a_score_and_its_model(runner: SentimentRunner, settings: Settings,
                                                            tiny: Path) -> None:
    async with client(runner, settings) as http:
        response = await http.post(URL, json={"texts": ["Bitcoin price rises", "Ether falls"]})
    assert response.status_code == 200
    body = response.json()
    assert [r["model"] for r in body["results"]] == [str(tiny)] * 2
    assert all(r["label"] == "bullish" and -1 <= r["score"] <= 1 for r in body["results"])
    assert body["sentiment_model"]["state"] == "ready" and body["sentiment_model"]["backend"] == "transformers"


@pytest.mark.parametrize(("body", "status", "detail"), [
    ({"texts": []}, 422, "at least 1"),
    ({}, 422, "Field required"),
    ({"texts": "one text"}, 422, "valid list"),
    ({"texts": ["fine", 42]}, 422, "valid string"),
    ({"texts": ["fine", None]}, 422, "valid string"),
    ({"texts": ["fine"], "model": "other"}, 422, "Extra inputs"),
    ({"texts": ["fine", "   "]}, 422, "Text 1 is empty"),
    ({"texts": ["a", "b", "c", "d"]}, 413, "Too many texts: 4 (at most 3"),
    ({"texts": ["short", "x" * 51]}, 413, "Text 1 is 51 characters long (at most 50)"),
], ids=["empty-list", "no-texts", "not-a-list", "a-number", "a-null", "extra-key", "blank", "too-many", "too-long"])
async def test_bad_requests_get_clear_errors(runner: SentimentRunner, settings: Settings, body: Any, status: int,
                                             detail: str) -> None:
    async with client(runner, settings) as http:
        response = await http.post(URL, json=body)
    assert response.status_code == status
    assert detail in str(response.json()["detail"])


async def test_the_answer_names_vader_when_the_model_could_not_be_loaded(tmp_path: Path) -> None:
    # HF_HUB_OFFLINE=1 and an id no cache holds: it cannot load
    settings = make_settings(tmp_path, sentiment_model="crypto-api-monitor-tests/never-downloaded")
    async with SentimentRunner(settings, retry_delays=()) as runner:
        await asyncio.wait_for(runner.loaded.wait(), 30)
        async with client(runner, settings) as http:
            body = (await http.post(URL, json={"texts": ["Wonderful gains"]})).json()
    assert body["results"][0]["model"] == "vader"
    assert body["sentiment_model"]["id"] == "crypto-api-monitor-tests/never-downloaded"
    assert body["sentiment_model"]["state"] == "failed"


async def test_a_stopped_runner_is_a_503(settings: Settings) -> None:
    async with client(SentimentRunner(settings), settings) as http:
        response = await http.post(URL, json={"texts": ["x"]})
    assert response.status_code == 503 and "not running" in response.json()["detail"]


# -- the panel ------------------------------------------------------------------------------------------

async def test_panel_verdict_names_the_model(runner: SentimentRunner, tiny: Path) -> None:
    text = await panel_verdict(runner, "Bitcoin price rises")
    assert "**Bullish**" in text and f"`{tiny}`" in text and "transformers model" in text
    assert await panel_verdict(runner, "  ") == "Type a text first."
    assert "at most 50" in await panel_verdict(runner, "x" * 60)


async def test_panel_says_why_vader_answered(tmp_path: Path) -> None:
    def unreachable() -> Any:
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    settings = make_settings(tmp_path, sentiment_model="ElKulako/cryptobert")
    async with SentimentRunner(settings, loader=unreachable, retry_delays=()) as runner:
        await asyncio.wait_for(runner.loaded.wait(), 10)
        text = await panel_verdict(runner, "Wonderful gains")
    assert "`vader` (lexicon)" in text and "`ElKulako/cryptobert` could not be loaded" in text


async def test_the_panel_builds_inside_blocks(settings: Settings) -> None:
    # inside a running loop, as in the server: Gradio otherwise makes an event loop of its own and leaks it
    with gr.Blocks() as blocks:
        build_sentiment_panel(SentimentRunner(settings))
    kinds = {type(block).__name__ for block in blocks.blocks.values()}
    assert {"Textbox", "Button", "Markdown"} <= kinds


def test_a_huge_body_is_refused_before_it_is_read(tmp_path: Path) -> None:
    from app import create_app
    from tests.support.server import serve

    settings = make_settings(tmp_path, sentiment_max_texts=2, sentiment_max_chars=10)
    with serve(lambda: create_app(settings), settings) as server:
        huge = b'{"texts": ["' + b"x" * 200_000 + b'"]}'
        declared = httpx.post(server.base + "/api/sentiment", content=huge,
                              headers={"content-type": "application/json"})
        assert declared.status_code == 413 and "larger than" in declared.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield huge[:100_000]
            yield huge[100_000:]

        streamed = httpx.post(server.base + "/api/sentiment", content=chunks(),
                              headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        small = httpx.post(server.base + "/api/sentiment", json={"texts": ["up only"]})
        assert small.status_code == 200
