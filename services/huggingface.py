"""huggingface: the Hub's crypto and finance sentiment models and datasets, and the sentiment model's state.

The registry comes from the Hub's search API (the endpoints ``huggingface_hub.HfApi.list_models`` and
``list_datasets`` call, with the same parameters), fetched through the project's fetcher like every other
provider (rate budget, retries, breaker, health, replay), and each item is read by huggingface_hub's own
``ModelInfo`` / ``DatasetInfo``. It is refreshed every :data:`REFRESH_EVERY` seconds (every
:data:`RETRY_EVERY` after a failure), not on every 60 s tick, and kept on disk under ``DATA_DIR``: a restart
without network still shows the last list, marked ``stale`` with its age.

``total_models`` / ``total_datasets`` count the relevant items listed (the Hub gives no total for a search).
Every update also carries the sentiment runner's model state (loading / ready / failed and why, and which
backend answers) and its inference figures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from models.huggingface import HfRepoItem, HuggingfacePayload, InferenceStats
from models.messages import iso, now_iso
from models.states import DataStatus
from services.base import BuildContext, Service, why_failed
from services.cadence import Cadence
from sources.fetcher import Fetcher
from sources.limits import Clock
from sources.pools import SHAPE_ERRORS, Pool
from sources.providers.huggingface import HuggingFaceApi

if TYPE_CHECKING:
    from inference.runner import SentimentRunner

log = logging.getLogger(__name__)

REFRESH_EVERY = 1800.0
RETRY_EVERY = 300.0
MODELS_SHOWN = 25
DATASETS_SHOWN = 15
#: Searches besides HF_REGISTRY_QUERY: models are also filtered to text classification.
MODEL_QUERIES = ("financial sentiment", "finbert", "cryptobert")
DATASET_QUERIES = ("financial sentiment", "crypto tweets")
CACHE_VERSION = 1


def merge(lists: Sequence[Sequence[HfRepoItem]], limit: int) -> list[HfRepoItem]:
    """Items of several searches, once each, most downloaded first."""
    seen: dict[str, HfRepoItem] = {}
    for items in lists:
        for item in items:
            seen.setdefault(item.id, item)
    return sorted(seen.values(), key=lambda i: (-(i.downloads or 0), i.id))[:limit]


class HfListing:
    """The last registry list: its items, when the Hub gave it, and whether it came from the disk cache."""

    def __init__(self, models: list[HfRepoItem], datasets: list[HfRepoItem], fetched_at: float,
                 from_disk: bool) -> None:
        self.models = models
        self.datasets = datasets
        self.fetched_at = fetched_at
        self.from_disk = from_disk


class HuggingfaceService(Service):
    name = "huggingface"

    def __init__(self, pool: Pool[HuggingFaceApi], fetcher: Fetcher, *, query: str, cache_file: Path,
                 runner: SentimentRunner | None, data_source: Literal["live", "replay"],
                 refresh_every: float = REFRESH_EVERY, retry_every: float = RETRY_EVERY,
                 clock: Clock = time.monotonic) -> None:
        self.pool = pool
        self.fetcher = fetcher
        self.query = query
        self.cache_file = cache_file
        self.runner = runner
        self.data_source = data_source
        self.cadence = Cadence(refresh_every, retry=retry_every, clock=clock)
        self.registry = self._read_cache()
        self._failure: str | None = None

    async def collect(self) -> Mapping[str, Any]:
        if self.cadence.due():
            await self._refresh()
        payload = HuggingfacePayload(total_models=None, total_datasets=None, last_refresh=None,
                                     timestamp=now_iso(), data_source=self.data_source)
        registry = self.registry
        if registry is None:
            payload.registry_status = DataStatus.NO_DATA
            payload.message = (f"No registry list yet: {self._failure}" if self._failure
                               else "No registry list yet: the Hub has not been asked.")
        else:
            payload.total_models, payload.total_datasets = len(registry.models), len(registry.datasets)
            payload.models, payload.datasets = registry.models, registry.datasets
            payload.available_models = [m.id for m in registry.models]
            payload.available_datasets = [d.id for d in registry.datasets]
            payload.last_refresh = iso(registry.fetched_at)
            payload.registry_age_seconds = round(max(0.0, time.time() - registry.fetched_at), 1)
            if registry.from_disk or self._failure:
                payload.registry_status = DataStatus.STALE
                why = f"the Hub did not answer ({self._failure})" if self._failure else "not refreshed yet"
                origin = " (from the disk cache)" if registry.from_disk else ""
                payload.message = f"Showing the registry list of {payload.last_refresh}{origin}: {why}."
        if self.runner is not None:
            payload.sentiment_model = self.runner.state
            payload.inference = self.runner.stats
        else:
            payload.inference = InferenceStats()
        return payload.model_dump(mode="json")

    async def _refresh(self) -> None:
        result = await self.pool.fetch(self._search)
        self.cadence.done(result.ok and result.value is not None)
        if not result.ok or result.value is None:
            self._failure = why_failed(result.sources)
            return
        models, datasets = result.value
        self._failure = None
        self.registry = HfListing(models, datasets, result.fetched_at or time.time(), from_disk=False)
        await asyncio.to_thread(self._write_cache, self.registry)

    async def _search(self, hub: HuggingFaceApi) -> tuple[list[HfRepoItem], list[HfRepoItem]]:
        model_lists = [await hub.search_models(self.fetcher, q) for q in (self.query, *MODEL_QUERIES)]
        dataset_lists = [await hub.search_datasets(self.fetcher, q) for q in (self.query, *DATASET_QUERIES)]
        return merge(model_lists, MODELS_SHOWN), merge(dataset_lists, DATASETS_SHOWN)

    # -- the disk cache -------------------------------------------------------------------------------
    def _read_cache(self) -> HfListing | None:
        try:
            raw = json.loads(self.cache_file.read_text(encoding="utf-8"))
            if raw.get("version") != CACHE_VERSION or raw.get("query") != self.query:
                return None  # another query's list is not this one's
            return HfListing([HfRepoItem.model_validate(m) for m in raw["models"]],
                            [HfRepoItem.model_validate(d) for d in raw["datasets"]],
                            float(raw["fetched_at"]), from_disk=True)
        except FileNotFoundError:
            return None
        except (OSError, *SHAPE_ERRORS) as exc:
            log.warning("huggingface: ignoring the registry cache %s (%s)", self.cache_file, exc)
            return None

    def _write_cache(self, registry: HfListing) -> None:
        body = {"version": CACHE_VERSION, "query": self.query, "fetched_at": registry.fetched_at,
                "models": [m.model_dump(mode="json") for m in registry.models],
                "datasets": [d.model_dump(mode="json") for d in registry.datasets]}
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            partial = self.cache_file.with_suffix(".tmp")
            partial.write_text(json.dumps(body, indent=1), encoding="utf-8")
            os.replace(partial, self.cache_file)  # a crash mid-write never leaves half a file
        except OSError as exc:
            log.warning("huggingface: could not keep the registry list on disk (%s)", exc)


def build(ctx: BuildContext) -> list[Service]:
    pool = ctx.pool("huggingface", [ctx.provider(HuggingFaceApi)])
    return [HuggingfaceService(pool, ctx.fetcher, query=ctx.settings.hf_registry_query,
                               cache_file=ctx.settings.data_dir / "huggingface" / "registry.json",
                               runner=ctx.sentiment, data_source=ctx.data_source)]
