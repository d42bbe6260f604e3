"""scheduler: every job's next run, last result and duration, from the one scheduler (services/jobs.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.base import BuildContext, Service
from services.jobs import Scheduler


class SchedulerService(Service):
    name = "scheduler"

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    async def collect(self) -> Mapping[str, Any]:
        return self.scheduler.snapshot()


def build(ctx: BuildContext) -> list[Service]:
    return [SchedulerService(ctx.scheduler)]
