"""The Gradio dashboard at ``/``: reads the hub's latest updates (the very cache the WebSocket API serves) and the
history store, never a provider. Missing or stale data is said in words, never shown as zeros.

One timer refreshes the page. Each tick renders the sections (at most once a second for all visitors
together, see :class:`Snapshot`) and sends a visitor only the sections whose HTML changed since its last tick;
times inside them are kept current by the page's own script (``dashboard.js``).

``app.py`` mounts it with the look defined here::

    gr.mount_gradio_app(app, build_ui(hub, manager.stats, store=store, runner=runner), path="/",
                        footer_links=["api"], theme=THEME, css=CSS, head=HEAD)
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from ui.format import epoch, esc
from ui.history import PriceHistory, SeriesStore
from ui.sections import (
    API_INTRO,
    EXAMPLE_MESSAGE,
    View,
    example_client,
    heading,
    market_side,
    market_summary,
    market_table,
    render_api_urls,
    render_chain,
    render_connections,
    render_header,
    render_news,
    render_providers,
    render_sentiment,
    render_whales,
    websocket_base,
)
from ui.sentiment_panel import build_sentiment_panel
from ws.hub import Hub

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent

#: System fonts only: the page must load nothing from the internet (a Space may have none, and a font CDN
#: failing is a console error on every visit).
THEME = gr.themes.Soft(
    primary_hue="indigo", secondary_hue="emerald", neutral_hue="slate",
    font=("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial",
          "sans-serif"),
    font_mono=("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"),
)
CSS = (HERE / "dashboard.css").read_text(encoding="utf-8")
#: Gradio scopes ``css`` to its content area, so the page frame (its padding on phones) is styled here.
FRAME_CSS = "@media (max-width: 720px) { .gradio-container .main.app { padding: 10px 8px !important; } }"
HEAD = (f"<style>{FRAME_CSS}</style>\n"
        f"<script>\n{(HERE / 'dashboard.js').read_text(encoding='utf-8')}</script>")

SHOWN_SERVICES = ("market_data", "explorers", "news", "sentiment", "whale_tracking", "rpc_nodes", "onchain",
                 "health_checker", "pool_manager", "scheduler", "huggingface", "persistence")
DEFAULT_COIN = "bitcoin"

TITLE = """<div class="dash titlebar">
<svg class="logo" viewBox="0 0 40 40" aria-hidden="true"><rect width="40" height="40" rx="10" fill="#4f46e5"/>
<polyline points="7,27 15,19 21,24 33,11" fill="none" stroke="#fff" stroke-width="3.2" stroke-linecap="round"
 stroke-linejoin="round"/><circle cx="33" cy="11" r="2.6" fill="#34d399"/></svg>
<div><h1>Crypto API Monitor</h1>
<p>Live crypto data from free public providers, with failover and health checks, over WebSocket and REST.</p></div>
<div class="links"><a href="/docs">REST API</a><a href="/ws/endpoints">WebSocket endpoints</a>
<a href="/healthz">Health</a></div></div>"""


@dataclass(frozen=True)
class Rendered:
    """Every section's HTML at one moment, plus what the chart and coin picker need."""

    sections: dict[str, str]
    market: Mapping[str, Any] | None
    coins: tuple[tuple[str, str], ...]  # (label, coin id), in market-cap order
    names: Mapping[str, str]  # provider id -> name


class Snapshot:
    """Renders the sections from the hub at most once per ``ttl`` seconds, whoever asks (every visitor's timer
    ticks; the work is done once)."""

    def __init__(self, hub: Hub, ws_stats: Callable[[], Mapping[str, Any]], ttl: float = 1.0) -> None:
        self.hub = hub
        self.ws_stats = ws_stats
        self.ttl = ttl
        self._at = 0.0
        self._last: Rendered | None = None

    def get(self) -> Rendered:
        now = time.time()
        if self._last is None or now - self._at >= self.ttl:
            self._last, self._at = render_all(self.hub, self.ws_stats, now), now
        return self._last


def make_view(payloads: Mapping[str, Mapping[str, Any] | None], now: float) -> View:
    """Provider names from the health report, intervals and running services from the scheduler's."""
    health = payloads.get("health_checker") or {}
    names = {pid: str(p.get("name") or pid) for pid, p in (health.get("providers") or {}).items()}
    scheduler = payloads.get("scheduler")
    intervals: dict[str, float] = {}
    running: frozenset[str] | None = None
    if scheduler:
        for job in scheduler.get("jobs") or []:
            service = str(job.get("id", "")).removesuffix("_collection")
            if isinstance(job.get("interval_seconds"), int | float):
                intervals[service] = float(job["interval_seconds"])
        running = frozenset(intervals)
    return View(now=now, names=names, intervals=intervals, running=running)


def render_all(hub: Hub, ws_stats: Callable[[], Mapping[str, Any]], now: float) -> Rendered:
    payloads = {service: hub.latest_data(service) for service in SHOWN_SERVICES}
    view = make_view(payloads, now)
    stats = ws_stats()
    market = payloads["market_data"]
    modes = {(p or {}).get("data_source") for p in payloads.values()}
    renderers: dict[str, Callable[[], str]] = {
        "header": lambda: render_header(market, payloads["sentiment"], payloads["health_checker"], stats, view,
                                        modes),
        "market_top": lambda: market_summary(market, view),
        "market_table": lambda: market_table(market, view),
        "market_side": lambda: market_side(market, view),
        "whales": lambda: render_whales(payloads["whale_tracking"], view),
        "news": lambda: render_news(payloads["news"], view),
        "sentiment": lambda: render_sentiment(payloads["sentiment"], payloads["huggingface"], view),
        "chain": lambda: render_chain(payloads["explorers"], payloads["rpc_nodes"], payloads["onchain"], view),
        "providers": lambda: render_providers(payloads["health_checker"], payloads["pool_manager"],
                                              payloads["scheduler"], view),
        "connections": lambda: render_connections(stats, payloads["persistence"], view),
    }
    sections = {name: _drawn(name, render) for name, render in renderers.items()}
    coins: tuple[tuple[str, str], ...] = ()
    if market and market.get("prices"):
        prices = market["prices"]
        coins = tuple((f"{c.get('name')} ({c.get('symbol')})", str(c["id"])) for c in market.get("coins") or []
                      if c.get("id") in prices)
    return Rendered({k: wrap(v) for k, v in sections.items()}, market, coins, view.names)


#: Sections whose last drawing failed: the traceback is logged once per failing streak, not every second.
_undrawable: set[str] = set()


def _drawn(name: str, render: Callable[[], str]) -> str:
    """One section's HTML; a section that cannot be drawn from an odd payload says so, and the others (and the
    page's timer) carry on: one exception here would otherwise stop every section of every visitor's page."""
    try:
        html = render()
    except Exception:
        if name not in _undrawable:
            _undrawable.add(name)
            log.exception("dashboard: the %s section could not be drawn", name)
        return '<p class="empty">This section could not be drawn from the latest update (the server log says why).</p>'
    _undrawable.discard(name)
    return html


def wrap(html: str) -> str:
    return f'<div class="dash">{html}</div>'


# -- the chart ----------------------------------------------------------------------------------------

def chart_data(timestamps: list[str], prices: list[float]) -> dict[str, Any]:
    """The line plot's value in the shape Gradio sends to the browser (its ``PlotData``): times as epoch
    milliseconds, which the browser shows in its own time zone."""
    rows = [[int(moment * 1000), value] for stamp, value in zip(timestamps, prices, strict=True)
            if (moment := epoch(stamp)) is not None]
    return {"columns": ["time", "price"], "data": rows, "datatypes": {"time": "temporal", "price": "quantitative"},
            "mark": "line"}


def chart_note(label: str, points: int, first: str | None, last: str | None, source: str | None,
               quote: str) -> str:
    if points == 0:
        return wrap(f'<p class="empty">No stored prices of {esc(label)} yet: the chart fills in as market '
                    "updates arrive.</p>")
    span = ""
    start, end = epoch(first), epoch(last)
    if start is not None and end is not None and points > 1:
        seconds = end - start
        span = (f" over {seconds / 3600:.1f} h" if seconds >= 3600 else f" over {seconds / 60:.0f} min"
                if seconds >= 120 else f" over {seconds:.0f} s")
    origin = f", the latest from {esc(source)}" if source else ""
    return wrap(f'<p class="note">{esc(label)} in {esc(quote)}: {points} stored prices{span}{origin}, '
                "one per market update.</p>")


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


# -- the page -------------------------------------------------------------------------------------------

def build_ui(hub: Hub, ws_stats: Callable[[], Mapping[str, Any]], store: SeriesStore | None = None,
             runner: Any = None, refresh_seconds: float = 3.0) -> gr.Blocks:
    """The dashboard. ``store`` feeds the price chart's history; ``runner`` (the sentiment runner) lets a visitor
    score their own text; without either the page says what it cannot show."""
    snapshot = Snapshot(hub, ws_stats)
    history = PriceHistory(store)
    order = ("header", "market_top", "market_table", "market_side", "whales", "news", "sentiment", "chain",
             "providers", "connections")

    with gr.Blocks(title="Crypto API Monitor", analytics_enabled=False) as ui:
        gr.HTML(TITLE, js_on_load=None)
        header = gr.HTML(wrap('<p class="empty">Loading…</p>'), js_on_load=None, elem_id="header")
        html: dict[str, gr.HTML] = {"header": header}
        with gr.Tabs():
            with gr.Tab("Market", id="market", elem_id="tab-market"):
                html["market_top"] = gr.HTML(js_on_load=None, elem_id="market-top")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2, min_width=300):
                        html["market_table"] = gr.HTML(js_on_load=None, elem_id="market-table")
                    with gr.Column(scale=1, min_width=280):
                        coin = gr.Dropdown(choices=[("Bitcoin (BTC)", DEFAULT_COIN)], value=DEFAULT_COIN,
                                           label="Price history", elem_id="coin-picker", filterable=True)
                        chart = gr.LinePlot(x="time", y="price", x_title="time", y_title="price",
                                            y_axis_format="$,.6~g", height=300, show_label=False,
                                            elem_id="price-chart")
                        note = gr.HTML(js_on_load=None, elem_id="chart-note")
                        html["market_side"] = gr.HTML(js_on_load=None, elem_id="market-side")
            with gr.Tab("Whales", id="whales", elem_id="tab-whales"):
                html["whales"] = gr.HTML(js_on_load=None, elem_id="whales")
            with gr.Tab("News", id="news", elem_id="tab-news"):
                html["news"] = gr.HTML(js_on_load=None, elem_id="news")
            with gr.Tab("Sentiment", id="sentiment", elem_id="tab-sentiment"):
                html["sentiment"] = gr.HTML(js_on_load=None, elem_id="sentiment")
                if runner is not None:
                    with gr.Column(elem_id="score-text"):
                        build_sentiment_panel(runner)
                else:
                    gr.HTML(wrap(heading("Sentiment of a text") + '<p class="empty">Scoring your own text is not '
                                 "available on this server: no sentiment model runs here.</p>"), js_on_load=None)
            with gr.Tab("Chain", id="chain", elem_id="tab-chain"):
                html["chain"] = gr.HTML(js_on_load=None, elem_id="chain")
            with gr.Tab("Providers", id="providers", elem_id="tab-providers"):
                html["providers"] = gr.HTML(js_on_load=None, elem_id="providers")
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
        seen = gr.State({})
        timer = gr.Timer(refresh_seconds)

        section_outputs = [html[name] for name in order]

        async def chart_for(coin_id: str | None, rendered: Rendered,
                            shown: str | None = None) -> tuple[Any, str, str] | None:
            """The chart's data, its note, and a key that changes when either would; None when the key is
            ``shown`` (what the visitor has), so an unchanged chart of 720 points is not rebuilt every tick."""
            labels = {cid: text for text, cid in rendered.coins}
            if coin_id not in labels:  # only coins the market data has: a caller cannot make us read any series
                coin_id = DEFAULT_COIN if DEFAULT_COIN in labels or not labels else rendered.coins[0][1]
            label = labels.get(coin_id, coin_id)
            series = await history.series(coin_id, rendered.market)
            key = f"{coin_id}|{len(series.prices)}|{series.timestamps[-1] if series.timestamps else ''}"
            if key == shown:
                return None
            stamps, prices = list(series.timestamps), list(series.prices)
            quote = str((rendered.market or {}).get("quote_currency") or "USD")
            source = rendered.names.get(str(series.sources[-1]), series.sources[-1]) if series.sources else None
            text = chart_note(label, len(prices), stamps[0] if stamps else None, stamps[-1] if stamps else None,
                              str(source) if source else None, quote)
            return (chart_data(stamps, prices) if prices else None), text, key

        async def refresh(coin_id: str | None, last: dict[str, str]) -> list[Any]:
            rendered = snapshot.get()
            sent = dict(last)
            updates: list[Any] = []
            for name in order:
                digest = _digest(rendered.sections[name])
                updates.append(gr.skip() if sent.get(name) == digest else rendered.sections[name])
                sent[name] = digest
            chart_update = await chart_for(coin_id, rendered, shown=sent.get("chart"))
            if chart_update is None:
                updates += [gr.skip(), gr.skip()]
            else:
                frame, text, sent["chart"] = chart_update
                updates += [frame, text]
            coins_key = _digest(repr(rendered.coins))
            if rendered.coins and sent.get("coins") != coins_key:
                ids = [cid for _, cid in rendered.coins]
                chosen = coin_id if coin_id in ids else (DEFAULT_COIN if DEFAULT_COIN in ids else ids[0])
                updates.append(gr.Dropdown(choices=list(rendered.coins), value=chosen))
                sent["coins"] = coins_key
            else:
                updates.append(gr.skip())
            return [*updates, sent]

        async def pick(coin_id: str | None) -> tuple[Any, str]:
            frame, text, _ = await chart_for(coin_id, snapshot.get()) or (None, "", "")
            return frame, text

        def describe_api(request: gr.Request) -> tuple[str, str]:
            base = websocket_base({k.lower(): v for k, v in request.headers.items()})
            return wrap(render_api_urls(base)), example_client(base)

        outputs = [*section_outputs, chart, note, coin, seen]
        events: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "undocumented",
                                  "concurrency_limit": None}
        timer.tick(refresh, inputs=[coin, seen], outputs=outputs, trigger_mode="always_last", **events)
        ui.load(refresh, inputs=[coin, seen], outputs=outputs, **events)
        ui.load(describe_api, outputs=[urls, client], **events)
        coin.input(pick, inputs=[coin], outputs=[chart, note], **events)
    return ui


__all__ = ["CSS", "HEAD", "THEME", "build_ui"]
