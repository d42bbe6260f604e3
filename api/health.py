"""GET /healthz: is this server up, in which mode, and how many clients it holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter

from models.messages import now_iso
from models.rest import Health


def build_health_router(data_source: Literal["live", "replay"], connections: Callable[[], int]) -> APIRouter:
    router = APIRouter(tags=["system"])

    @router.get("/healthz", summary="Liveness of this server", response_model=None,
                responses={200: {"model": Health}})
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "data_source": data_source, "connections": connections(), "timestamp": now_iso()}

    return router
