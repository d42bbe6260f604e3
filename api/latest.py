"""GET /api/{service}: the latest update of a service, the very text WebSocket subscribers got."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from api.errors import require_service
from models.messages import LatestUpdates


def build_latest_router(latest: LatestUpdates) -> APIRouter:
    router = APIRouter(tags=["data"])

    @router.get("/api/{service}", summary="The latest update of a service")
    async def latest_update(service: str) -> Response:
        update = latest.latest(require_service(service))
        if update is None:
            raise HTTPException(503, detail={"message": f"No update published for {service!r} yet",
                                             "service": service})
        return Response(update.text, media_type="application/json")

    return router
