"""GET /healthz: is this server up, in which mode, how many clients it holds, and (``details``) its role in a
group of replicas, its id, Redis's state and the requests it made to providers since start."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter

from models.messages import now_iso
from models.rest import Health


def build_health_router(data_source: Literal["live", "replay"], connections: Callable[[], int],
                        details: Callable[[], dict[str, Any]] = dict,
                        storage: Callable[[], dict[str, Any]] | None = None) -> APIRouter:
    """``details``: more fields (the fan-out's role, replica and Redis state; provider calls). ``storage``: whether
    the history is being written (the store's ``write_brief``); a failing disk never stops the server (it streams
    on), so ``status`` stays ``ok`` and ``storage`` says what fails since when."""
    router = APIRouter(tags=["system"])

    @router.get("/healthz", summary="Liveness of this server", response_model=None,
                responses={200: {"model": Health}})
    async def healthz() -> dict[str, Any]:
        answer: dict[str, Any] = {"status": "ok", "data_source": data_source, "connections": connections(),
                                  **details(), "timestamp": now_iso()}
        if storage is not None:
            answer["storage"] = storage()
        return answer

    return router

