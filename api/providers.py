"""GET /api/providers: every provider as declared (category, URLs, key, budget) with its health now."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from models.messages import now_iso
from models.rest import Providers
from sources.fetcher import Fetcher, Runtime, health_view


def describe(runtime: Runtime, now: float) -> dict[str, Any]:
    provider = runtime.provider
    rate = provider.effective_rate
    return {
        "id": provider.id,
        "name": provider.name,
        "category": provider.category,
        "base_url": provider.base_url,
        "endpoints": list(provider.endpoints),
        "docs": provider.docs or None,
        "key": None if provider.key_setting is None else {
            "setting": provider.key_setting.upper(),
            "required": provider.key_required,
            "configured": provider.key is not None,  # never the key itself
        },
        "budget": None if rate is None else {"calls": rate.calls, "per_seconds": rate.per, "burst": rate.burst},
        "health": health_view(runtime, now),
    }


def build_providers_router(fetcher: Fetcher) -> APIRouter:
    router = APIRouter(tags=["providers"])

    @router.get("/api/providers", summary="Every provider: what it is, its budget and its health",
                response_model=None, responses={200: {"model": Providers}})
    async def providers() -> dict[str, Any]:
        now = fetcher.now()
        items = [describe(runtime, now) for runtime in fetcher.runtimes.values()]
        categories: dict[str, int] = {}
        for item in items:
            categories[item["category"]] = categories.get(item["category"], 0) + 1
        return {"status": "success", "count": len(items), "endpoint_count": sum(len(i["endpoints"]) for i in items),
                "categories": categories, "providers": items, "timestamp": now_iso()}

    return router
