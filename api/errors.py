"""Errors every REST route answers alike."""

from __future__ import annotations

from fastapi import HTTPException

from models.catalog import SERVICE_NAMES


def require_service(service: str) -> str:
    """``service`` when it names one of the twelve; else the 404 every route gives, listing the names."""
    if service not in SERVICE_NAMES:
        raise HTTPException(404, detail={"message": f"Unknown service: {service!r}",
                                         "available_services": list(SERVICE_NAMES)})
    return service
