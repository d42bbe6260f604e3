"""The Connections tab: the WebSocket clients and what they subscribe to, the stored history, and how to use the
WebSocket API from here: every URL as the visitor reaches this server, an example message and a client."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gradio as gr

from models.catalog import API_VERSION, ENDPOINTS, websocket_base_url
from ui.format import count, esc, when
from ui.widgets import Payload, View, checked, chips, facts, heading, kpi, table, wrap

#: Where the page says the API is when the request names no host (it always does, through a browser).
FALLBACK_HOST = "localhost:7860"


def render_connections(ws: Mapping[str, Any], persistence: Payload | None, view: View) -> str:
    cards = [kpi("Connected now", count(ws.get("total_connections"))),
             kpi("Since start", count(ws.get("connections_since_start")), "connections"),
             kpi("Updates published", count(ws.get("updates_published"))),
             kpi("Delivered", count(ws.get("updates_delivered")), f"{count(ws.get('updates_dropped'))} dropped")]
    closes = [("slow reader (1013)", ws.get("slow_consumer_disconnects")),
              ("over the rate limit (1008)", ws.get("rate_limit_disconnects")),
              ("message too large (1009)", ws.get("oversize_disconnects"))]
    closed = ", ".join(f"{count(n)} {why}" for why, n in closes if n is not None)
    subs = ws.get("subscription_counts") or {}
    sub_chips = chips([f"<b>{esc(service)}</b> {count(n)}" for service, n in sorted(subs.items())],
                      "No client is subscribed right now.")
    return (f'{heading("WebSocket clients")}<div class="kpis small">{"".join(cards)}</div>'
            f'<p class="note">Closed by the server: {closed or "none"}.</p>'
            f'{heading("Subscriptions by service")}{sub_chips}{heading("Storage")}{_storage(persistence, view)}')


def _storage(persistence: Payload | None, view: View) -> str:
    storage = checked("Stored history", "persistence", persistence, view)
    if persistence:
        backup = persistence.get("backup") or {}
        storage += facts([("Records", count(persistence.get("total_records"))),
                          ("Size", esc(persistence.get("storage_size") or "")),
                          ("Last save", when(persistence.get("last_save"), view.now, missing="nothing saved yet")),
                          ("Oldest record", when(persistence.get("oldest_record"), view.now, missing="none")),
                          ("Backup", "to a Hugging Face dataset" if backup.get("enabled") else "off")])
    return storage


API_INTRO = (heading("WebSocket API", f"v{API_VERSION}") +
             '<p class="note">Connect to any URL below; every message is <code>{"service", "type", "data", '
             '"timestamp"}</code>. Send the example message below to subscribe to prices. Also: '
             '<a href="/docs">REST API</a> · <a href="/ws/endpoints">/ws/endpoints</a> · '
             '<a href="/ws/stats">/ws/stats</a>.</p>')


def render_api_urls(base: str) -> str:
    """Every WebSocket URL of this server as the visitor reaches it."""
    rows = [[f"<code>{esc(base + path)}</code>", esc(ep.description)]
            for ep in ENDPOINTS for path in (ep.path, *ep.aliases)]
    return table(["URL", "What it serves"], rows, optional=(1,))


EXAMPLE_MESSAGE = json.dumps({"action": "subscribe", "service": "market_data", "id": 1}, indent=2)


def example_client(base: str) -> str:
    """A few lines of browser JavaScript that subscribe to prices on this very server."""
    return (f'const ws = new WebSocket("{base}/ws/master");\n'
            "ws.onopen = () => ws.send(JSON.stringify({action: \"subscribe\", service: \"market_data\"}));\n"
            "ws.onmessage = (event) => {\n"
            "  const message = JSON.parse(event.data);\n"
            "  if (message.type === \"update\") console.log(message.data.prices);\n"
            "};\n")


def describe_api(request: gr.Request) -> tuple[str, str]:
    """The URL table and the example client for the address the visitor used, through a proxy (a Space) or not:
    a URL they cannot reach from where they are would be no help."""
    base = websocket_base_url({k.lower(): v for k, v in request.headers.items()}, host=FALLBACK_HOST)
    return wrap(render_api_urls(base)), example_client(base)


@dataclass(frozen=True)
class ConnectionsTab:
    """The components filled in once per visit (the URLs depend on the visitor's address), not every tick."""

    urls: gr.HTML
    client: gr.Code


def layout(html: dict[str, gr.HTML]) -> ConnectionsTab:
    with gr.Tab("Connections", id="connections", elem_id="tab-connections"):
        html["connections"] = gr.HTML(js_on_load=None, elem_id="connections")
        gr.HTML(wrap(API_INTRO), js_on_load=None, elem_id="api")
        with gr.Row():
            gr.Code(EXAMPLE_MESSAGE, language="json", label="Example message: subscribe to prices",
                    interactive=False, lines=5, buttons=["copy"], wrap_lines=True, min_width=300,
                    elem_id="example-message")
            client = gr.Code(language="javascript", label="A browser client for this server",
                             interactive=False, lines=6, buttons=["copy"], wrap_lines=True, min_width=300,
                             elem_id="example-client")
        urls = gr.HTML(js_on_load=None, elem_id="ws-urls")
    return ConnectionsTab(urls, client)
