"""A stream module's build context, as app.py makes it, around a fetcher the test chose."""

from __future__ import annotations

from typing import Any

from config import Settings
from models.catalog import scaled_intervals
from services.base import BuildContext
from services.jobs import Scheduler
from sources.fetcher import Fetcher
from ws.hub import Hub


def build_context(settings: Settings, fetcher: Fetcher, intervals: dict[str, float] | None = None, *,
                  hub: Hub | None = None, **resources: Any) -> BuildContext:
    """``hub``: where the streams' ports read other streams' latest updates (a fresh, empty one by default)."""
    hub = hub or Hub()
    return BuildContext(settings, fetcher, intervals or scaled_intervals(settings.interval_scale), latest=hub,
                        scheduler=Scheduler(hub.publish), **resources)
