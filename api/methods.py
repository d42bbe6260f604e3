"""405 Method Not Allowed, with ``Allow``, for a method a documented REST path does not take.

Without it such a request falls through to Gradio (mounted at ``/``), which answers 404 as if the path did not
exist. The paths and their methods are those of the OpenAPI document: the FastAPI routes in it, read at the first
request (once every router is included; cheap, unlike building the document, which takes a second). This route
goes after the REST routes and before Gradio, and is not in the document itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Match, NoMatchFound, compile_path
from starlette.types import Receive, Scope, Send


class MethodNotAllowed(BaseRoute):
    def __init__(self, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self._routes = routes
        self._paths: list[tuple[re.Pattern[str], frozenset[str]]] | None = None

    def _allowed(self, path: str) -> frozenset[str] | None:
        """The methods the document declares for ``path``; None when it declares no such path.

        As OpenAPI matches paths: a concrete path (``/api/sentiment``) wins over a templated one that also
        matches (``/api/{service}``); the templates are tried fewest parameters first."""
        if self._paths is None:
            declared: dict[str, set[str]] = {}
            for route in iter_route_contexts(self._routes()):
                if isinstance(route.original_route, APIRoute) and route.include_in_schema and route.path_format:
                    declared.setdefault(route.path_format, set()).update(route.methods or ())
            self._paths = [(compile_path(template)[0], frozenset(methods))
                           for template, methods in sorted(declared.items(), key=lambda item: item[0].count("{"))]
        return next((methods for regex, methods in self._paths if regex.match(path)), None)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            allowed = self._allowed(scope["path"])
            if allowed is not None and scope["method"] not in allowed:
                return Match.FULL, {"allow": ", ".join(sorted(allowed))}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"detail": "Method Not Allowed"}, status_code=405, headers={"allow": scope["allow"]})
        await response(scope, receive, send)
