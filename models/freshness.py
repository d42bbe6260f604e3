"""The freshness block every data payload (or section of one) carries, so a client can always tell live data from
stale data from no data.

``status`` is ``ok``, ``stale`` (the last good values, with their age and since when every provider fails) or
``no_data`` (every provider failed and nothing was ever fetched: the payload's collections are then empty, never
zero-filled, and ``message`` says why). ``providers`` says, per provider, how its latest attempt went and since when.
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


class Freshness(BaseModel):
    status: DataStatus = DataStatus.OK
    data_source: Literal["live", "replay"] = "live"
    fetched_at: str | None = None
    age_seconds: float | None = None
    stale_since: str | None = None
    message: str | None = None
    providers: dict[str, SourceState] = Field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """The block's fields as they are (no copy, no re-validation), to build a payload that carries them:
        ``MarketDataPayload(**freshness.fields(), ...)``."""
        return {name: getattr(self, name) for name in Freshness.model_fields}

    def with_note(self, *notes: str | None) -> Freshness:
        """The same block with ``notes`` added to its message."""
        message = "; ".join(n for n in (self.message, *notes) if n)
        return self.model_copy(update={"message": message or None})
