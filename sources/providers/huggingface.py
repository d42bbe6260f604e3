"""The Hugging Face Hub's search API: models and datasets, read by huggingface_hub's own ``ModelInfo`` /
``DatasetInfo`` (the endpoints ``HfApi.list_models`` and ``list_datasets`` call, with the same parameters), fetched
through the project's fetcher like every other provider (rate budget, retries, breaker, health, replay)."""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import Any

from huggingface_hub.hf_api import DatasetInfo, ModelInfo

from models.huggingface import HfRepoItem
from models.messages import iso
from sources.errors import AnswerError
from sources.fetcher import Fetcher, Provider
from sources.limits import Rate
from sources.pools import SHAPE_ERRORS
from sources.providers.values import json_count

log = logging.getLogger(__name__)

PER_QUERY = 20
MODEL_FIELDS = ("downloads", "likes", "pipeline_tag", "lastModified", "gated")
DATASET_FIELDS = ("downloads", "likes", "lastModified", "gated", "tags")


def _gated(value: Any) -> bool | None:
    """The Hub says ``false``, ``"auto"`` or ``"manual"``."""
    if value is None:
        return None
    return value is not False and value != "false"


class HuggingFaceApi(Provider):
    id = "huggingface_hub"
    name = "Hugging Face Hub"
    category = "ai"
    base_url = "https://huggingface.co/api"
    endpoints = ("/models", "/datasets")
    docs = "https://huggingface.co/docs/hub/api"
    # Anonymous Hub API calls: 500 per 5 minutes per IP; a refresh makes 2 + the number of queries.
    rate = Rate(20, 300, burst=8)
    probe_path = "/models"
    probe_params = MappingProxyType({"limit": "1"})
    probe_interval = 3600.0

    async def search_models(self, fetcher: Fetcher, query: str, limit: int = PER_QUERY) -> list[HfRepoItem]:
        params = {"search": query, "pipeline_tag": "text-classification", "sort": "downloads", "limit": str(limit),
                  "expand": list(MODEL_FIELDS)}
        return self.normalize_models(await fetcher.get_json(self, "/models", params, max_wait=30.0))

    async def search_datasets(self, fetcher: Fetcher, query: str, limit: int = PER_QUERY) -> list[HfRepoItem]:
        params = {"search": query, "sort": "downloads", "limit": str(limit), "expand": list(DATASET_FIELDS)}
        return self.normalize_datasets(await fetcher.get_json(self, "/datasets", params, max_wait=30.0))

    @staticmethod
    def _items(raw: Any) -> list[Any]:
        if isinstance(raw, dict) and "error" in raw:
            raise AnswerError(f"huggingface hub error: {raw['error']}")
        if not isinstance(raw, list):
            raise AnswerError(f"huggingface hub: expected a list, got {type(raw).__name__}: {str(raw)[:120]}")
        return raw

    @classmethod
    def normalize_models(cls, raw: Any) -> list[HfRepoItem]:
        items = []
        for entry in cls._items(raw):
            try:
                info = ModelInfo(**entry)
            except (*SHAPE_ERRORS, ValueError) as exc:  # one odd entry is skipped, not the whole list
                log.debug("huggingface hub: skipped a model entry (%s)", exc)
                continue
            items.append(HfRepoItem(id=str(info.id), downloads=json_count(info.downloads),
                                    likes=json_count(info.likes), pipeline_tag=info.pipeline_tag,
                                    last_modified=iso(info.last_modified), gated=_gated(info.gated)))
        return items

    @classmethod
    def normalize_datasets(cls, raw: Any) -> list[HfRepoItem]:
        """Datasets have no pipeline tag; their first ``task_categories:`` tag stands in for it."""
        items = []
        for entry in cls._items(raw):
            try:
                info = DatasetInfo(**entry)
            except (*SHAPE_ERRORS, ValueError) as exc:
                log.debug("huggingface hub: skipped a dataset entry (%s)", exc)
                continue
            task = next((t.split(":", 1)[1] for t in info.tags or () if t.startswith("task_categories:")), None)
            items.append(HfRepoItem(id=str(info.id), downloads=json_count(info.downloads),
                                    likes=json_count(info.likes), pipeline_tag=task,
                                    last_modified=iso(info.last_modified), gated=_gated(info.gated)))
        return items
