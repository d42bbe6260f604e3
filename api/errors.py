"""Errors every REST route answers alike, their models (declared in the OpenAPI document), and the parameters
several routes share.

Bodies: ``{"detail": "<text>"}`` (404 of a coin, 413, 503 of sentiment), ``{"detail": {"message", ...}}`` (an
unknown service, no update yet) and, for every 422, FastAPI's validation-error list (``{"detail": [{"loc",
"msg", "type", "input"}]}``): a bad parameter this API checks itself is reported the same way as one pydantic
checks.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import HTTPException, Path
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from models.catalog import SERVICE_NAMES
from models.wire import ServiceName


class ErrorMessage(BaseModel):
    detail: str = Field(examples=["Request body larger than 465536 bytes"])


class UnknownServiceDetail(BaseModel):
    message: str = Field(examples=["Unknown service: 'prices'"])
    available_services: list[ServiceName]


class UnknownService(BaseModel):
    detail: UnknownServiceDetail


class NoUpdateYetDetail(BaseModel):
    message: str = Field(examples=["No update published for 'news' yet"])
    service: ServiceName


class NoUpdateYet(BaseModel):
    detail: NoUpdateYetDetail


#: A path parameter naming one of the twelve services: an enum in the document; any other name is a 404.
Service = Annotated[str, Path(description="One of the twelve services",
                              json_schema_extra={"enum": list(SERVICE_NAMES)},
                              openapi_examples={"market_data": {"value": "market_data"}, "news": {"value": "news"}})]

UNKNOWN_SERVICE: dict[int | str, dict[str, Any]] = {
    404: {"model": UnknownService, "description": "Not one of the twelve services"}}


def validation_error(description: str) -> dict[str, Any]:
    """A declared 422: ``description``, with FastAPI's validation-error body."""
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}}


def require_service(service: str) -> str:
    """``service`` when it names one of the twelve; else the 404 every route gives, listing the names."""
    if service not in SERVICE_NAMES:
        raise HTTPException(404, detail={"message": f"Unknown service: {service!r}",
                                         "available_services": list(SERVICE_NAMES)})
    return service


def invalid(loc: tuple[str | int, ...], message: str, value: Any) -> RequestValidationError:
    """A 422 for a value this API checks itself, in the shape of FastAPI's own (``loc``: ("query", "since"), ...)."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message, "input": value}])
