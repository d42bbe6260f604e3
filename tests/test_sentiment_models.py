"""Sentiment backends and the runner: label mapping, the real transformers path on a tiny local model,
the VADER fallback, batching, caching and bounded torch threads. Offline (HF_HUB_OFFLINE=1, conftest)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
import torch

from config import Settings
from inference.backends import LexiconBackend, TransformersBackend
from inference.presets import PRESETS, UnmappedLabels, label_map, resolve_model, verdict
from inference.runner import SentimentRunner
from models.news import ArticleSentiment
from tests.support.settings import make_settings
from tests.support.tiny_model import build_tiny_model, expected_probabilities

HUB_MODEL = "mrm8488/distilroberta-finetuned-financial-news-sentiment-analysis"
#: A Hub id no cache holds (a real one may be cached where the benchmark ran): with HF_HUB_OFFLINE=1 it cannot load.
UNREACHABLE = "crypto-api-monitor-tests/never-downloaded-sentiment-model"
HEADLINES = ["Bitcoin price rises to a record high", "Ether falls as ETF outflows mount", "The crypto market"]


@pytest.fixture(scope="module")
def tiny3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny3"), ("negative", "neutral", "positive"), "positive")


def settings_for(tmp_path: Path, model: str, **overrides: Any) -> Settings:
    return make_settings(tmp_path, sentiment_model=model, **overrides)


class Recording:
    """A backend that records its batches (and the thread and torch threads it ran with)."""

    kind: Literal["transformers", "lexicon"] = "transformers"

    def __init__(self, name: str = "recording/model", fail: bool = False) -> None:
        self.name = name
        self.labels = {"up": "bullish", "down": "bearish"}
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.torch_threads: set[int] = set()
        self.fail = fail

    def score_batch(self, texts: Sequence[str]) -> list[ArticleSentiment]:
        self.batches.append(list(texts))
        self.threads.add(threading.current_thread().name)
        self.torch_threads.add(torch.get_num_threads())
        if self.fail:
            raise RuntimeError("index out of range in self")
        return [ArticleSentiment(label="bullish", score=0.5, model=self.name) for _ in texts]


# -- label mapping and scores ---------------------------------------------------------------------------

@pytest.mark.parametrize(("id2label", "known", "expected"), [
    ({0: "negative", 1: "neutral", 2: "positive"}, None,
     {"negative": "bearish", "neutral": "neutral", "positive": "bullish"}),
    ({0: "Bearish", 1: "Neutral", 2: "Bullish"}, None,
     {"Bearish": "bearish", "Neutral": "neutral", "Bullish": "bullish"}),
    ({0: "positive", 1: "negative", 2: "neutral"}, None,  # finbert's order
     {"positive": "bullish", "negative": "bearish", "neutral": "neutral"}),
    ({0: "NEGATIVE", 1: "POSITIVE"}, None, {"NEGATIVE": "bearish", "POSITIVE": "bullish"}),
    ({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, PRESETS["twitter"].labels,
     {"LABEL_0": "bearish", "LABEL_1": "neutral", "LABEL_2": "bullish"}),
], ids=["3-class", "cryptobert", "finbert", "2-class", "LABEL_n-preset"])
def test_label_map(id2label: dict[int, str], known: Any, expected: dict[str, str]) -> None:
    assert label_map(id2label, "m", known) == expected


@pytest.mark.parametrize("id2label", [
    {0: "LABEL_0", 1: "LABEL_1"},  # a generic binary head: which one is positive is not ours to guess
    {0: "neutral", 1: "positive"},
    {0: "joy", 1: "anger"},
    {},
    None,
])
def test_labels_that_cannot_be_mapped_are_refused(id2label: Any) -> None:
    with pytest.raises(UnmappedLabels):
        label_map(id2label, "some/model")


def test_verdict_uses_every_class_probability() -> None:
    mapping = label_map({0: "negative", 1: "neutral", 2: "positive"}, "m")
    v = verdict({"negative": 0.2, "neutral": 0.5, "positive": 0.3}, mapping, "m")
    assert (v.label, v.score, v.model) == ("neutral", 0.1, "m")
    binary = label_map({0: "NEGATIVE", 1: "POSITIVE"}, "b")
    v = verdict({"NEGATIVE": 0.9, "POSITIVE": 0.1}, binary, "b")
    assert (v.label, v.score) == ("bearish", -0.8)


def test_resolve_model_presets() -> None:
    assert resolve_model("finance-news").model_id == HUB_MODEL
    assert resolve_model("ElKulako/cryptobert") is PRESETS["crypto-social"]
    assert resolve_model("cardiffnlp/twitter-roberta-base-sentiment").labels["LABEL_2"] == "bullish"
    assert resolve_model("/models/mine").model_id == "/models/mine"


def test_lexicon_backend() -> None:
    lexicon = LexiconBackend()
    good, bad, flat = lexicon.score_batch(["Great gains, wonderful news", "Terrible loss, awful fraud", "Tuesday"])
    assert good.label == "bullish" and good.score > 0.05 and good.model == "vader"
    assert bad.label == "bearish" and bad.score < -0.05
    assert flat.label == "neutral" and flat.score == 0


# -- the real transformers path on tiny local models -----------------------------------------------------

@pytest.mark.parametrize(("labels", "favour", "label"), [
    (("negative", "neutral", "positive"), "positive", "bullish"),
    (("Bearish", "Neutral", "Bullish"), "Neutral", "neutral"),
    (("Bearish", "Neutral", "Bullish"), "Bearish", "bearish"),
    (("NEGATIVE", "POSITIVE"), "NEGATIVE", "bearish"),
    (("NEGATIVE", "POSITIVE"), "POSITIVE", "bullish"),
], ids=["3-class-positive", "cryptobert-neutral", "cryptobert-bearish", "2-class-negative", "2-class-positive"])
def test_transformers_backend_maps_the_models_labels(tmp_path: Path, labels: tuple[str, ...], favour: str,
                                                      label: str) -> None:
    path = build_tiny_model(tmp_path / "m", labels, favour)
    backend = TransformersBackend.load(str(path))
    verdicts = backend.score_batch(HEADLINES)
    p = expected_probabilities(labels, favour)
    bullish = sum(v for k, v in p.items() if k.lower() in ("positive", "bullish"))
    bearish = sum(v for k, v in p.items() if k.lower() in ("negative", "bearish"))
    assert len(verdicts) == len(HEADLINES)
    for v in verdicts:
        assert v.label == label and v.model == str(path)
        assert v.score == pytest.approx(bullish - bearish, abs=1e-4) and -1 <= v.score <= 1
    assert set(backend.labels) == set(labels)


def test_transformers_backend_refuses_unmapped_labels(tmp_path: Path) -> None:
    path = build_tiny_model(tmp_path / "m", ("LABEL_0", "LABEL_1"), "LABEL_1")
    with pytest.raises(UnmappedLabels, match="LABEL_0"):
        TransformersBackend.load(str(path))


def test_long_texts_are_truncated_not_fatal(tiny3: Path) -> None:
    backend = TransformersBackend.load(str(tiny3))
    (v,) = backend.score_batch(["bitcoin " * 5000])  # far beyond the tiny model's 64 positions
    assert v.label == "bullish"


# -- the runner -----------------------------------------------------------------------------------------

async def test_runner_serves_the_configured_model(tmp_path: Path, tiny3: Path) -> None:
    settings = settings_for(tmp_path, str(tiny3))
    async with SentimentRunner(settings) as runner:
        await asyncio.wait_for(runner.loaded.wait(), 30)
        state = runner.state
        assert (state.id, state.backend, state.state, state.error) == (str(tiny3), "transformers", "ready", None)
        assert state.labels == {"negative": "bearish", "neutral": "neutral", "positive": "bullish"}
        assert state.loaded_at and state.loaded_at.endswith("Z")
        verdicts = await runner.score(HEADLINES)
        assert [v.model for v in verdicts] == [str(tiny3)] * 3 and {v.label for v in verdicts} == {"bullish"}
        assert await runner.annotate(HEADLINES[:1]) == verdicts[:1]
        stats = runner.stats
        assert stats.texts_scored == 3 and stats.batches == 1 and stats.cache_hits == 1
        assert stats.mean_latency_ms and stats.mean_latency_ms > 0 and stats.p95_batch_ms


async def test_unreachable_hub_model_falls_back_to_vader_and_says_so(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, UNREACHABLE)
    async with SentimentRunner(settings, retry_delays=()) as runner:
        await asyncio.wait_for(runner.loaded.wait(), 30)
        state = runner.state
        assert (state.id, state.backend, state.state) == (UNREACHABLE, "lexicon", "failed")
        assert state.error and "OSError" in state.error and state.labels == {}
        verdicts = await runner.score(["Wonderful gains for bitcoin holders"])
        assert verdicts[0].model == "vader" and verdicts[0].label == "bullish"
        assert all(UNREACHABLE not in v.model for v in verdicts)


async def test_vader_answers_while_the_model_loads_then_the_model(tmp_path: Path) -> None:
    release = threading.Event()
    model = Recording()

    def slow_loader() -> Recording:
        release.wait(10)
        return model

    async with SentimentRunner(settings_for(tmp_path, "recording/model"), loader=slow_loader) as runner:
        assert runner.state.state == "loading" and runner.state.backend == "lexicon"
        (early,) = await runner.score(["Great news"])
        assert early.model == "vader"
        release.set()
        await asyncio.wait_for(runner.loaded.wait(), 10)
        assert runner.state.state == "ready" and runner.state.backend == "transformers"
        assert runner.state.labels == {"up": "bullish", "down": "bearish"}
        (late,) = await runner.score(["Great news"])  # a lexicon verdict in the cache does not stick
        assert late.model == "recording/model"


async def test_a_failed_load_is_retried(tmp_path: Path) -> None:
    attempts: list[int] = []

    def flaky() -> Recording:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")
        return Recording()

    async with SentimentRunner(settings_for(tmp_path, "x/y"), loader=flaky, retry_delays=(0.01,)) as runner:
        await asyncio.wait_for(runner.loaded.wait(), 10)
        for _ in range(3000):  # polling with a generous bound
            if runner.state.state == "ready":
                break
            await asyncio.sleep(0.01)
        assert runner.state.state == "ready" and len(attempts) == 2


async def test_unmapped_labels_are_not_retried(tmp_path: Path) -> None:
    path = build_tiny_model(tmp_path / "m", ("LABEL_0", "LABEL_1"), None)
    async with SentimentRunner(settings_for(tmp_path, str(path)), retry_delays=(0.01,)) as runner:
        await asyncio.wait_for(runner.loaded.wait(), 30)
        for _ in range(3000):  # polling with a generous bound, not a pause
            if runner.state.state == "failed":
                break
            await asyncio.sleep(0.01)
        assert runner.state.state == "failed" and "UnmappedLabels" in (runner.state.error or "")
        assert (await runner.score(["bitcoin"]))[0].model == "vader"


async def test_the_token_never_shows_in_the_state(tmp_path: Path) -> None:
    def leaky() -> Recording:
        raise OSError("401 for https://huggingface.co with token hf_secret123")

    settings = settings_for(tmp_path, "gated/model", hf_token="hf_secret123")
    async with SentimentRunner(settings, loader=leaky, retry_delays=()) as runner:
        await asyncio.wait_for(runner.loaded.wait(), 10)
        assert runner.state.error and "hf_secret123" not in runner.state.error and "***" in runner.state.error


async def test_texts_are_batched_up_to_the_batch_size(tmp_path: Path) -> None:
    model = Recording()
    settings = settings_for(tmp_path, "r/m", sentiment_batch_size=4, sentiment_batch_window_ms=100)
    async with SentimentRunner(settings, loader=lambda: model) as runner:
        await asyncio.wait_for(runner.loaded.wait(), 10)
        await runner.score([f"text {i}" for i in range(10)])
        assert [len(b) for b in model.batches] == [4, 4, 2]
        # concurrent callers inside one window share a forward pass
        model.batches.clear()
        await asyncio.gather(runner.score(["a", "b"]), runner.score(["c"]))
        assert [sorted(b) for b in model.batches] == [["a", "b", "c"]]
        assert runner.stats.batches == 4 and runner.stats.texts_scored == 13
        assert model.threads == {"sentiment_0"}  # one worker thread, never the event loop's


async def test_verdicts_are_cached_by_text(tmp_path: Path) -> None:
    model = Recording()
    async with SentimentRunner(settings_for(tmp_path, "r/m"), loader=lambda: model) as runner:
        await asyncio.wait_for(runner.loaded.wait(), 10)
        first = await runner.score(["same", "same", "other"])  # a text asked twice is scored once
        assert model.batches == [["same", "other"]]
        again = await runner.score(["other", "same"])
        assert again == [first[2], first[0]] and len(model.batches) == 1
        assert runner.stats.cache_hits == 2 and runner.stats.texts_scored == 2


async def test_the_cache_is_bounded(tmp_path: Path) -> None:
    model = Recording()
    async with SentimentRunner(settings_for(tmp_path, "r/m"), loader=lambda: model, cache_size=2) as runner:
        await asyncio.wait_for(runner.loaded.wait(), 10)
        await runner.score(["a", "b", "c"])
        await runner.score(["a"])  # "a" was evicted
        assert model.batches[-1] == ["a"]


async def test_a_batch_the_model_fails_on_is_answered_by_vader(tmp_path: Path) -> None:
    model = Recording(fail=True)
    async with SentimentRunner(settings_for(tmp_path, "r/m"), loader=lambda: model) as runner:
        await asyncio.wait_for(runner.loaded.wait(), 10)
        (v,) = await runner.score(["Great gains"])
        assert v.model == "vader" and runner.state.state == "ready"


async def test_torch_threads_are_bounded_in_the_worker(tmp_path: Path) -> None:
    model = Recording()
    async with SentimentRunner(settings_for(tmp_path, "r/m", torch_threads=1), loader=lambda: model) as runner:
        await asyncio.wait_for(runner.loaded.wait(), 10)
        await runner.score(["x"])
        assert model.torch_threads == {1}


async def test_scoring_needs_a_running_runner(tmp_path: Path) -> None:
    runner = SentimentRunner(settings_for(tmp_path, "r/m"), loader=Recording)
    with pytest.raises(RuntimeError, match="not running"):
        await runner.score(["x"])


def test_an_uncached_hub_model_offline_fails_at_once_without_importing_transformers(tmp_path: Path) -> None:
    """The server imports transformers before it listens only when the model can load; offline and uncached, the
    load fails with a plain reason (and the server starts as fast as without a model)."""
    assert not TransformersBackend.can_load(UNREACHABLE)
    assert TransformersBackend.can_load(str(tmp_path))  # a local folder: up to transformers to judge
    with pytest.raises(OSError, match="not in the local cache and HF_HUB_OFFLINE is set"):
        TransformersBackend.load(UNREACHABLE)
