"""The contracts: the REST API's (``GET /openapi.json``, its pages ``/docs`` and ``/redoc``) and the WebSocket API's
(``GET /asyncapi.json``, ``/asyncapi.yaml`` and ``/asyncapi``, an HTML page of it).

FastAPI builds the OpenAPI document on the first request for it, on the event loop: with the models of every
update that takes over a second, during which no client is served. Here it is built in a worker thread instead
(the app is created with ``openapi_url=None`` and these routes serve the document and FastAPI's pages).

The document is generated (models/asyncapi.py) from the models the server sends; its server entry is this server
as the client reached it (``ws``/``wss`` and host, behind proxies too). Like ``/openapi.json`` and ``/docs``,
these routes are not in the OpenAPI document itself.
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
from collections.abc import Callable
from typing import Any

import orjson
import yaml
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.asyncapi_page import render
from models.asyncapi import build_asyncapi
from models.catalog import websocket_base_url

#: Stand-ins for this server's address in the YAML and HTML, which are built once: the address comes from the
#: request (any Host header), and rendering per address would let anyone make the server render again and again.
HOST, PROTOCOL = "host-of-this-server.invalid", "protocol-of-this-server"


@functools.cache
def _document() -> dict[str, Any]:
    return build_asyncapi(HOST, PROTOCOL)


@functools.cache
def _template(kind: str) -> str:
    if kind == "yaml":
        return yaml.safe_dump(_document(), sort_keys=False, allow_unicode=True, width=120)
    return render(_document())


def document_for(host: str, protocol: str) -> dict[str, Any]:
    """The document with this server's address as the client reached it."""
    this = {**_document()["servers"]["this"], "host": host, "protocol": protocol}
    return {**_document(), "servers": {"this": this}}


def rendered(host: str, protocol: str, kind: str) -> bytes:
    """The document as ``json``, ``yaml`` or ``html``, for a server at ``protocol://host``."""
    if kind == "json":
        return orjson.dumps(document_for(host, protocol))
    quote = json.dumps if kind == "yaml" else html.escape  # a JSON string is a YAML (1.1 and 1.2) scalar
    return _template(kind).replace(HOST, quote(host)).replace(PROTOCOL, quote(protocol)).encode()


def _address(request: Request) -> tuple[str, str]:
    base = websocket_base_url(request.headers, scheme=request.url.scheme, host=request.url.netloc)
    protocol, host = base.split("://", 1)
    return host, protocol


async def _render(request: Request, kind: str) -> bytes:
    host, protocol = _address(request)
    # The first call builds the document (~0.3 s of pydantic schema generation): off the event loop.
    return await asyncio.to_thread(rendered, host, protocol, kind)


def build_contracts_router(openapi: Callable[[], dict[str, Any]], title: str) -> APIRouter:
    """``openapi``: the app's ``openapi`` (builds the document once, then returns it)."""
    router = APIRouter(include_in_schema=False)
    building = asyncio.Lock()

    @router.get("/openapi.json")
    async def openapi_json() -> JSONResponse:
        async with building:  # one build at a time; later calls find it built
            return JSONResponse(await asyncio.to_thread(openapi))

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{title} - Swagger UI",
                                   oauth2_redirect_url="/docs/oauth2-redirect")

    @router.get("/docs/oauth2-redirect")
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{title} - ReDoc")

    @router.get("/asyncapi.json")
    async def asyncapi_json(request: Request) -> Response:
        return Response(await _render(request, "json"), media_type="application/json")

    @router.get("/asyncapi.yaml")
    async def asyncapi_yaml(request: Request) -> Response:
        return Response(await _render(request, "yaml"), media_type="application/yaml")

    @router.get("/asyncapi")
    async def asyncapi_page(request: Request) -> HTMLResponse:
        return HTMLResponse(await _render(request, "html"))

    return router
