"""The freshness block every data payload (or section of one) carries, so a client can always tell live data from
stale data from no data.

``status`` is ``ok``, ``stale`` (the last good values, with their age and since when every provider fails) or
``no_data`` (every provider failed and nothing was ever fetched: the payload's collections are then empty, never
zero-filled, and ``message`` says why). ``providers`` says, per provider, how its latest attempt went and since when.

Age is the provider's: ``age_seconds`` counts from ``data_time`` (the time the provider put on the data) where it
gives one, so an old quote served fresh is still old; past ``max_age_seconds`` the data is ``stale`` even though
the provider answered. In replay, ages run from ``recorded_at`` (when the answer was captured), not from today.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from models.states import DataStatus, SourceStatus


class SourceState(BaseModel):
    status: SourceStatus
    error: str | None = None
    since: str | None = None
    last_success: str | None = None
    #: Replay only: when the recorded answer this provider gave was captured.
    recorded_at: str | None = None


class Freshness(BaseModel):
    status: DataStatus = DataStatus.OK
    data_source: Literal["live", "replay"] = "live"
    fetched_at: str | None = None
    age_seconds: float | None = None
    stale_since: str | None = None
    message: str | None = None
    providers: dict[str, SourceState] = Field(default_factory=dict)
    #: The provider's own time of the data shown (its newest), where the provider gives one.
    data_time: str | None = None
    #: Data older than this (counted from ``data_time``, else from ``fetched_at``) is shown as ``stale``.
    max_age_seconds: float | None = None
    #: Replay only: when the provider answer shown was captured; ages are counted from then.
    recorded_at: str | None = None

    def fields(self) -> dict[str, Any]:
        """The block's fields as they are (no copy, no re-validation), to build a payload that carries them:
        ``MarketDataPayload(**freshness.fields(), ...)``."""
        return {name: getattr(self, name) for name in Freshness.model_fields}

    def with_note(self, *notes: str | None) -> Freshness:
        """The same block with ``notes`` added to its message."""
        message = "; ".join(n for n in (self.message, *notes) if n)
        return self.model_copy(update={"message": message or None})
