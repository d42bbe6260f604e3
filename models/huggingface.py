"""huggingface's payload: the Hub's models and datasets, and the sentiment model's state and figures."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from models.states import DataStatus


class HfRepoItem(BaseModel):
    id: str
    downloads: int | None = None
    likes: int | None = None
    pipeline_tag: str | None = None
    last_modified: str | None = None
    gated: bool | None = None


class ModelState(BaseModel):
    id: str  # what SENTIMENT_MODEL names
    backend: str  # what answers now: "transformers" or "lexicon"
    state: Literal["loading", "ready", "failed"]
    error: str | None = None
    loaded_at: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)  # model label -> bullish/neutral/bearish


class InferenceStats(BaseModel):
    texts_scored: int = 0
    batches: int = 0
    cache_hits: int = 0
    mean_latency_ms: float | None = None  # per text
    p95_batch_ms: float | None = None


class HuggingfacePayload(BaseModel):
    total_models: int | None
    total_datasets: int | None
    available_models: list[str] = Field(default_factory=list)
    available_datasets: list[str] = Field(default_factory=list)
    last_refresh: str | None
    timestamp: str
    registry_status: DataStatus = DataStatus.OK
    registry_age_seconds: float | None = None
    message: str | None = None  # why the registry list is stale or missing
    data_source: Literal["live", "replay"] = "live"
    models: list[HfRepoItem] = Field(default_factory=list)
    datasets: list[HfRepoItem] = Field(default_factory=list)
    sentiment_model: ModelState | None = None
    inference: InferenceStats = Field(default_factory=InferenceStats)
