"""persistence: what the history store holds, from its real figures (the spec's keys, plus per service)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.messages import iso, now_iso
from models.payloads import PersistencePayload
from services.base import BuildContext, Service
from storage.dataset_backup import DatasetBackup
from storage.history import Store


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


class PersistenceService(Service):
    name = "persistence"

    def __init__(self, store: Store, backup: DatasetBackup | None = None) -> None:
        self.store = store
        self.backup = backup

    async def collect(self) -> Mapping[str, Any]:
        stats = self.store.stats
        size = stats.size_bytes()
        return PersistencePayload(
            storage_location=str(self.store.path.parent.resolve()),
            total_records=stats.total_records,
            storage_size=human_size(size),
            last_save=iso(stats.last_save),
            active_writers=int(self.store.writing) + int(bool(self.backup and self.backup.busy)),
            timestamp=now_iso(),
            storage_bytes=size,
            records_by_service=dict(sorted(stats.records_by_service.items())),
            oldest_record=iso(stats.oldest),
            retention={"max_age_days": self.store.retention_days, "max_per_service": self.store.retention_per_service},
            backup=self.backup.status() if self.backup else {"enabled": False},
        ).model_dump(mode="json")


def build(ctx: BuildContext) -> list[Service]:
    if ctx.store is None:
        return []
    return [PersistenceService(ctx.store, ctx.backup)]
