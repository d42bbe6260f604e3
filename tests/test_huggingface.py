"""The huggingface stream: Hub search normalisers, the registry's own refresh schedule, the disk cache an
offline restart shows, and the sentiment model's state and figures. No network: the Hub answers through an
httpx.MockTransport, as every provider does in tests."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from inference.runner import SentimentRunner
from models.huggingface import HfRepoItem, HuggingfacePayload
from services.huggingface import REFRESH_EVERY, RETRY_EVERY, HuggingfaceService, build, merge
from sources.errors import AnswerError
from sources.fetcher import Fetcher
from sources.pools import Pool
from sources.providers.huggingface import HuggingFaceApi
from tests.support.clock import FakeClock
from tests.support.context import build_context
from tests.support.recordings import recorded
from tests.support.settings import make_settings
from tests.support.tiny_model import build_tiny_model

MODELS = "https://huggingface.co/api/models"
DATASETS = "https://huggingface.co/api/datasets"
QUERY = "crypto sentiment"
# An answer with expand=downloads,likes,pipeline_tag,lastModified,gated (built from the documented fields).
EXPANDED = [{"_id": "61a0", "id": "mrm8488/distilroberta-finetuned-financial-news-sentiment-analysis",
             "downloads": 300, "likes": 40, "pipeline_tag": "text-classification",
             "lastModified": "2024-01-21T15:17:58.000Z", "gated": False},
            {"_id": "61a1", "id": "ElKulako/cryptobert", "downloads": 900, "likes": 120,
             "pipeline_tag": "text-classification", "gated": "manual"}]


def ok(body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.Response(200, content=content, headers={"content-type": "application/json"})


class FakeHfApi:
    """A fake of the Hugging Face Hub's API: answers by path, and records every request."""

    def __init__(self, models: Any = None, datasets: Any = None) -> None:
        self.answers: dict[str, Any] = {MODELS: models, DATASETS: datasets}
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            answer = self.answers.get(str(request.url).split("?", 1)[0])
            if answer is None:
                raise httpx.ConnectError("offline", request=request)
            return answer if isinstance(answer, httpx.Response) else ok(answer)
        return httpx.MockTransport(handle)


def make_service(hf_api: FakeHfApi, tmp_path: Path, runner: Any = None, query: str = QUERY,
                 clock: FakeClock | None = None) -> HuggingfaceService:
    # budgets=False: a second refresh in a test must not wait for the Hub budget's tokens
    fetcher = Fetcher(httpx.AsyncClient(transport=hf_api.transport()), retries=0, backoff=0.001, budgets=False)
    return HuggingfaceService(Pool("huggingface", [HuggingFaceApi()], fetcher), fetcher, query=query,
                              cache_file=tmp_path / "huggingface" / "registry.json", runner=runner,
                              data_source="live", clock=clock or FakeClock())


# -- normalisers ----------------------------------------------------------------------------------------

def test_models_recorded() -> None:
    items = HuggingFaceApi.normalize_models(orjson.loads(recorded("sentiment/hub-models-2.json")))
    assert [i.id for i in items] == ["moonshotai/Kimi-K2-Thinking", "MiniMaxAI/MiniMax-M2"]
    assert (items[1].downloads, items[1].likes, items[1].pipeline_tag) == (846249, 1178, "text-generation")
    assert items[0].last_modified is None and items[0].gated is None  # not in an answer without expand


def test_models_expanded_fields() -> None:
    first, second = HuggingFaceApi.normalize_models(EXPANDED)
    assert first.last_modified == "2024-01-21T15:17:58.000Z" and first.gated is False
    assert second.gated is True and second.last_modified is None


@pytest.mark.parametrize("body", [{"error": "Invalid sort parameter"}, {"models": []}, "text"],
                         ids=["error-body", "object", "string"])
def test_models_error_body_and_changed_shape(body: Any) -> None:
    with pytest.raises(AnswerError):
        HuggingFaceApi.normalize_models(body)


def test_odd_entries_are_skipped() -> None:
    items = HuggingFaceApi.normalize_models([{"downloads": 5}, {"id": "a/b", "downloads": "many",
                                                                "lastModified": "not a date"}, {"id": "c/d"}])
    assert [i.id for i in items] == ["c/d"]  # no id, and a date that is no date, are skipped


def test_datasets_built_body() -> None:
    items = HuggingFaceApi.normalize_datasets(orjson.loads(recorded("sentiment/hub-datasets.built.json")))
    assert [i.id for i in items] == ["ElKulako/stocktwits-crypto", "takala/financial_phrasebank", "no-tags/dataset"]
    assert items[0].pipeline_tag == "text-classification" and items[0].gated is False
    assert items[1].gated is True  # "auto"
    assert (items[2].pipeline_tag, items[2].downloads, items[2].gated) == (None, None, None)


def test_merge_keeps_each_item_once_most_downloaded_first() -> None:
    a, b, c = HfRepoItem(id="a", downloads=1), HfRepoItem(id="b", downloads=5), HfRepoItem(id="c")
    assert [i.id for i in merge([[a, b], [b, c, a]], limit=10)] == ["b", "a", "c"]
    assert [i.id for i in merge([[a, b, c]], limit=1)] == ["b"]


# -- the service ----------------------------------------------------------------------------------------

async def test_registry_from_the_hub(tmp_path: Path) -> None:
    hf_api = FakeHfApi(models=EXPANDED, datasets=recorded("sentiment/hub-datasets.built.json"))
    payload = await make_service(hf_api, tmp_path).collect()
    HuggingfacePayload.model_validate(payload)
    json.dumps(payload)
    assert payload.keys() >= {"total_models", "total_datasets", "available_models", "available_datasets",
                              "last_refresh", "timestamp"}
    assert payload["available_models"] == ["ElKulako/cryptobert",
                                           "mrm8488/distilroberta-finetuned-financial-news-sentiment-analysis"]
    assert payload["total_models"] == 2 and payload["total_datasets"] == 3
    assert payload["available_datasets"][0] == "takala/financial_phrasebank"
    assert payload["registry_status"] == "ok" and payload["message"] is None
    assert payload["last_refresh"].endswith("Z") and payload["registry_age_seconds"] < 5
    assert payload["sentiment_model"] is None and payload["inference"]["texts_scored"] == 0
    # the searches asked: the configured query and the crypto / finance ones, sorted by downloads
    searches = [(r.url.path, r.url.params.get("search")) for r in hf_api.requests]
    assert searches[0] == ("/api/models", QUERY) and ("/api/datasets", QUERY) in searches
    assert len(searches) == 7
    first = hf_api.requests[0].url.params
    assert first["sort"] == "downloads" and first["pipeline_tag"] == "text-classification"
    assert first.get_list("expand") == ["downloads", "likes", "pipeline_tag", "lastModified", "gated"]


async def test_the_registry_is_refreshed_on_its_own_schedule(tmp_path: Path) -> None:
    hf_api = FakeHfApi(models=EXPANDED, datasets=[])
    clock = FakeClock()
    svc = make_service(hf_api, tmp_path, clock=clock)
    await svc.collect()
    asked = len(hf_api.requests)
    clock.advance(REFRESH_EVERY - 1)
    await svc.collect()
    assert len(hf_api.requests) == asked  # not every tick
    clock.advance(1)
    await svc.collect()
    assert len(hf_api.requests) == 2 * asked


async def test_an_offline_restart_shows_the_disk_cache_with_its_age(tmp_path: Path) -> None:
    await make_service(FakeHfApi(models=EXPANDED, datasets=[]), tmp_path).collect()
    assert (tmp_path / "huggingface" / "registry.json").exists()
    restarted = make_service(FakeHfApi(), tmp_path)  # the Hub cannot be reached
    payload = await restarted.collect()
    assert payload["registry_status"] == "stale" and payload["total_models"] == 2
    assert payload["available_models"][0] == "ElKulako/cryptobert"
    assert payload["registry_age_seconds"] >= 0 and payload["last_refresh"]
    assert "disk cache" in payload["message"] and "huggingface_hub" in payload["message"]


async def test_a_failed_refresh_keeps_the_last_list_stale_and_retries_sooner(tmp_path: Path) -> None:
    hf_api = FakeHfApi(models=EXPANDED, datasets=[])
    clock = FakeClock()
    svc = make_service(hf_api, tmp_path, clock=clock)
    await svc.collect()
    hf_api.answers[MODELS] = httpx.Response(429, headers={"retry-after": "30"})
    clock.advance(REFRESH_EVERY)
    payload = await svc.collect()
    assert payload["registry_status"] == "stale" and payload["total_models"] == 2
    assert "disk cache" not in payload["message"] and "429" in payload["message"]
    clock.advance(RETRY_EVERY)  # sooner than a refresh
    assert RETRY_EVERY < REFRESH_EVERY
    hf_api.answers[MODELS] = ok(EXPANDED)
    svc.fetcher.runtime("huggingface_hub").health.rate_limited_until = 0  # the cool-down is over
    assert (await svc.collect())["registry_status"] == "ok"


async def test_no_list_at_all_is_no_data_with_the_reason(tmp_path: Path) -> None:
    payload = await make_service(FakeHfApi(models={"error": "Internal Error"}), tmp_path).collect()
    assert payload["registry_status"] == "no_data" and payload["total_models"] is None
    assert payload["available_models"] == [] and payload["last_refresh"] is None
    assert "Internal Error" in payload["message"]


async def test_a_cache_of_another_query_or_corrupt_is_ignored(tmp_path: Path) -> None:
    await make_service(FakeHfApi(models=EXPANDED, datasets=[]), tmp_path, query="other").collect()
    assert make_service(FakeHfApi(), tmp_path).registry is None
    (tmp_path / "huggingface" / "registry.json").write_text("{not json")
    assert make_service(FakeHfApi(), tmp_path, query="other").registry is None


async def test_the_model_state_and_inference_figures(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "model")
    async with SentimentRunner(make_settings(tmp_path, sentiment_model=str(model))) as runner:
        await asyncio.wait_for(runner.loaded.wait(), 30)
        await runner.score(["bitcoin price rises", "ether falls"])
        payload = await make_service(FakeHfApi(models=EXPANDED, datasets=[]), tmp_path, runner=runner).collect()
    state = payload["sentiment_model"]
    assert (state["id"], state["backend"], state["state"]) == (str(model), "transformers", "ready")
    assert payload["inference"]["texts_scored"] == 2 and payload["inference"]["mean_latency_ms"] > 0


async def test_build(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, data_source="live")
    hf_api = FakeHfApi(models=EXPANDED, datasets=[])
    ctx = build_context(settings, Fetcher(httpx.AsyncClient(transport=hf_api.transport()), retries=0))
    (svc,) = build(ctx)
    assert set(ctx.pools) == {"huggingface"}
    payload = await svc.collect()
    assert payload is not None
    assert payload["total_models"] == 2 and (settings.data_dir / "huggingface" / "registry.json").exists()
