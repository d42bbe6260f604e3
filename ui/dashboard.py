"""The Gradio dashboard: reads the hub's latest updates (the very cache the WebSocket API serves), never a
provider. Missing or stale data is said in words, never shown as zeros."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gradio as gr

from ws.hub import Hub

Row = list[Any]


def _money(value: float | None) -> str:
    if value is None:
        return "n/a"
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6)):
        if abs(value) >= size:
            return f"${value / size:,.2f}{unit}"
    return f"${value:,.2f}" if abs(value) >= 1 else f"${value:.6g}"


def _freshness(service: str, data: Mapping[str, Any] | None) -> str:
    if data is None:
        return f"**{service}**: waiting for the first update."
    status = data.get("status", "ok")
    source = data.get("source") or ""
    replay = " (replayed recordings)" if data.get("data_source") == "replay" else ""
    if status == "no_data":
        return f"**{service}**: no data. {data.get('message', '')}"
    if status == "stale":
        return (f"**{service}**: STALE, {data.get('age_seconds')} s old, from {source}{replay}. "
                f"{data.get('message', '')}")
    return f"**{service}**: live from **{source}**{replay}, fetched {data.get('fetched_at') or data.get('timestamp')}"


def market_rows(data: Mapping[str, Any] | None) -> list[Row]:
    if not data:
        return []
    prices, changes = data.get("prices", {}), data.get("price_changes", {})
    volumes, caps = data.get("volumes", {}), data.get("market_caps", {})
    rows = []
    for coin in data.get("coins", []):
        cid = coin["id"]
        change = changes.get(cid)
        rows.append([coin.get("rank") or "", f"{coin['name']} ({coin['symbol']})", _money(prices.get(cid)),
                     f"{change:+.2f}%" if change is not None else "n/a", _money(volumes.get(cid)),
                     _money(caps.get(cid))])
    return rows


def health_rows(data: Mapping[str, Any] | None) -> list[Row]:
    if not data:
        return []
    rows = []
    for _pid, p in sorted(data.get("providers", {}).items(), key=lambda kv: (kv[1]["category"], kv[0])):
        latency = p.get("response_time_ms")
        rows.append([p["category"], p["name"], p["status"], p["detail"],
                     f"{latency:.0f} ms" if latency is not None else "n/a", p.get("last_check") or "never",
                     p.get("error") or ""])
    return rows


def pool_rows(data: Mapping[str, Any] | None) -> list[Row]:
    if not data:
        return []
    return [[name, p.get("active_source") or "none", p["health"], ", ".join(p["available_sources"]),
             p.get("failover_count", 0)] for name, p in data.get("pools", {}).items()]


def job_rows(data: Mapping[str, Any] | None) -> list[Row]:
    if not data:
        return []
    return [[j["id"], j["status"], j.get("next_run") or "", j.get("last_result") or "",
             j.get("last_duration_ms") if j.get("last_duration_ms") is not None else "", j.get("runs", 0)]
            for j in data.get("jobs", [])]


def build_ui(hub: Hub, ws_stats: Callable[[], Mapping[str, Any]], refresh_seconds: float = 3.0) -> gr.Blocks:
    with gr.Blocks(title="Crypto API Monitor") as ui:
        gr.Markdown("# Crypto API Monitor\nLive crypto data from free public providers, with health and failover. "
                    "WebSocket API: `/ws/master` (see `/ws/endpoints`), REST: `/docs`.")
        with gr.Tab("Market"):
            market_note = gr.Markdown()
            market = gr.Dataframe(headers=["#", "Coin", "Price", "24h", "Volume 24h", "Market cap"],
                                  interactive=False, max_height=600)
        with gr.Tab("Providers"):
            health_note = gr.Markdown()
            health = gr.Dataframe(headers=["Category", "Provider", "Status", "Detail", "Latency", "Last check",
                                           "Error"], interactive=False)
            pools = gr.Dataframe(headers=["Pool", "Active source", "Health", "Sources", "Failovers"],
                                 interactive=False)
            jobs = gr.Dataframe(headers=["Job", "Status", "Next run", "Last result", "Duration ms", "Runs"],
                                interactive=False)
        with gr.Tab("Connections"):
            connections = gr.JSON(label="WebSocket statistics")

        def refresh() -> tuple[Any, ...]:
            m, h = hub.latest_data("market_data"), hub.latest_data("health_checker")
            overall = (f"Overall **{h['overall_health']}**: {h['healthy_count']} healthy, "
                       f"{h['unhealthy_count']} unhealthy of {h['total_providers']}") if h else "Waiting for checks."
            stats = dict(ws_stats())
            stats.pop("clients", None)
            return (_freshness("market_data", m), market_rows(m), overall, health_rows(h),
                    pool_rows(hub.latest_data("pool_manager")), job_rows(hub.latest_data("scheduler")), stats)

        outputs = [market_note, market, health_note, health, pools, jobs, connections]
        gr.Timer(refresh_seconds).tick(refresh, outputs=outputs, show_progress="hidden")
        ui.load(refresh, outputs=outputs)
    return ui
