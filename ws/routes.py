"""The endpoint table made routes: every WebSocket path of the spec, and its REST companions under ``/ws``.

(``/api/{service}``, the latest update as REST, is in api/latest.py.)

Register these before Gradio is mounted at ``/``: Starlette matches routes in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, WebSocket
from starlette.types import Receive, Scope, Send

from models.catalog import ENDPOINTS, SERVICES, Endpoint, endpoints_serving, websocket_base_url
from models.messages import now_iso
from models.rest import WsEndpoints, WsRuntime, WsServices, WsStats
from ws.manager import ConnectionManager


def _ws_handler(manager: ConnectionManager, endpoint: Endpoint, path: str) -> Callable[[WebSocket], Any]:
    async def handler(websocket: WebSocket) -> None:
        await manager.serve(websocket, endpoint, path)

    handler.__name__ = "ws_" + (path.strip("/").replace("/", "_") or "root")
    return handler


def websocket_handlers(manager: ConnectionManager) -> dict[str, Callable[[WebSocket], Any]]:
    """Every WebSocket path of the spec (aliases too) and its handler."""
    return {path: _ws_handler(manager, endpoint, path)
            for endpoint in ENDPOINTS for path in (endpoint.path, *endpoint.aliases)}


class WebSocketFastPath(FastAPI):
    """FastAPI, with a WebSocket connection to one of :attr:`websocket_paths` handed straight to its handler.

    Through the middleware stack and the router, each connection kept some 25 coroutines suspended inside one
    another for its whole life (one per middleware and routing layer) and ~160 objects the cyclic collector scans:
    at 5,000 connections its full passes took 0.1-0.6 s each, with the loop stopped, and a reconnect storm makes
    several. The layers skipped do nothing for a WebSocket on these paths (errors close it with 1011 either way);
    the routes stay registered for the documents and for any other path."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.websocket_paths: dict[str, Callable[[WebSocket], Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            handler = self.websocket_paths.get(scope["path"])
            if handler is not None and not scope.get("root_path"):
                await handler(WebSocket(scope, receive, send))
                return
        await super().__call__(scope, receive, send)


def build_router(manager: ConnectionManager, intervals: dict[str, float],
                 handlers: dict[str, Callable[[WebSocket], Any]] | None = None) -> APIRouter:
    """``intervals``: each service's effective update interval in seconds (after INTERVAL_SCALE); ``handlers``:
    those of :func:`websocket_handlers`, when the caller also hands them to :class:`WebSocketFastPath`."""
    router = APIRouter()
    for path, handler in (handlers or websocket_handlers(manager)).items():
        # Starlette's plain route: FastAPI's dependency machinery would cost ~8 KiB per connection.
        router.add_websocket_route(path, handler)

    @router.get("/ws/stats", tags=["websocket"], summary="Active connections and subscriptions",
                response_model=None, responses={200: {"model": WsStats}})
    async def ws_stats() -> dict[str, Any]:
        return {"status": "success", "data": manager.stats(), "timestamp": now_iso()}

    @router.get("/ws/runtime", tags=["websocket"], summary="Tasks, queue depths and event-loop lag (for soaks)",
                response_model=None, responses={200: {"model": WsRuntime}})
    async def ws_runtime() -> dict[str, Any]:
        return {"status": "success", "data": manager.runtime(), "timestamp": now_iso()}

    @router.get("/ws/services", tags=["websocket"], summary="Every service with its group and interval",
                response_model=None, responses={200: {"model": WsServices}})
    async def ws_services() -> dict[str, Any]:
        services = {
            s.name: {
                "name": s.name,
                "group": s.group.value,
                "description": s.description,
                "update_interval": s.interval,
                "effective_interval": intervals.get(s.name, s.interval),
                "endpoints": endpoints_serving(s.name),
                "has_data": manager.hub.latest(s.name) is not None,
            }
            for s in SERVICES
        }
        groups: dict[str, list[str]] = {}
        for s in SERVICES:
            groups.setdefault(s.group.value, []).append(s.name)
        return {"status": "success", "data": {"services": services, "groups": groups,
                                              "special": {"system": "System messages and connection management",
                                                          "all": "Subscribe to all services at once"}},
                "timestamp": now_iso()}

    @router.get("/ws/endpoints", tags=["websocket"], summary="Every WebSocket URL",
                response_model=None, responses={200: {"model": WsEndpoints}})
    async def ws_endpoints(request: Request) -> dict[str, Any]:
        base = websocket_base_url(request.headers, scheme=request.url.scheme, host=request.url.netloc)
        endpoints = []
        for endpoint in ENDPOINTS:
            for path in (endpoint.path, *endpoint.aliases):
                endpoints.append({
                    "path": path,
                    "url": base + path,
                    "description": endpoint.description,
                    "services": list(endpoint.services),
                    "auto_subscribe": list(endpoint.auto_subscribe),
                    "alias_of": endpoint.path if path != endpoint.path else None,
                })
        return {"status": "success", "data": {"base_url": base, "endpoints": endpoints}, "timestamp": now_iso()}

    return router
