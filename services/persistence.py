"""persistence: what the history store holds, from its real figures (the spec's keys, plus per service).

The figures are those of the current mode's history only (``data_source``, ``history_file``): live and replayed
updates are kept in separate files, and replay has no Hub backup (``backup.reason`` says so)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from models.messages import iso, now_iso
from models.monitoring import PersistencePayload
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
            backup=self.backup.status() if self.backup else self._no_backup(),
            data_source=self.store.mode,
            history_file=self.store.path.name,
            writes=self.store.write_status(),
        ).model_dump(mode="json")

    def _no_backup(self) -> dict[str, str | bool | None]:
        if self.store.mode == "replay":
            return {"enabled": False, "reason": "replayed updates are never backed up to the Hub"}
        return {"enabled": False}


def build(ctx: BuildContext) -> list[Service]:
    if ctx.store is None:
        return []
    return [PersistenceService(ctx.store, ctx.backup)]
