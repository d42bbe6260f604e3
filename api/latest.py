"""GET /api/{service}: the latest update of a service, the very text WebSocket subscribers got."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from api.errors import UNKNOWN_SERVICE, NoUpdateYet, Service, require_service
from models.messages import LatestUpdates
from models.wire import AnyUpdate


def build_latest_router(latest: LatestUpdates) -> APIRouter:
    router = APIRouter(tags=["data"])

    @router.get("/api/{service}", summary="The latest update of a service", responses={
        200: {"model": AnyUpdate, "description": "The update, exactly as WebSocket subscribers got it"},
        **UNKNOWN_SERVICE, 503: {"model": NoUpdateYet, "description": "The service has published nothing yet"}})
    async def latest_update(service: Service) -> Response:
        update = latest.latest(require_service(service))
        if update is None:
            raise HTTPException(503, detail={"message": f"No update published for {service!r} yet",
                                             "service": service})
        return Response(update.text, media_type="application/json")

    return router
