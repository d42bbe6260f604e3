"""The Gradio dashboard at ``/``: reads the hub's latest updates (the very cache the WebSocket API serves) and the
history store, never a provider. Missing or stale data is said in words, never shown as zeros.

This module assembles the page; each tab (its sections' HTML and its components) is a module of ``ui.tabs``,
and the pieces they share (freshness lines, tables, badges) are in ``ui.widgets``.

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
from typing import TYPE_CHECKING, Any

import gradio as gr

from models.catalog import SERVICE_NAMES
from models.messages import LatestUpdates
from ui.history import SeriesStore
from ui.tabs import chain, connections, header, market, news, providers, sentiment, whales
from ui.tabs.market import Coins, PriceChart, chosen_coin
from ui.widgets import View, wrap

if TYPE_CHECKING:
    from inference.runner import SentimentRunner

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

#: Every service of the catalogue: the page shows them all (or says why one is missing).
SHOWN_SERVICES = SERVICE_NAMES

TITLE = """<div class="dash titlebar">
<svg class="logo" viewBox="0 0 40 40" aria-hidden="true"><rect width="40" height="40" rx="10" fill="#4f46e5"/>
<polyline points="7,27 15,19 21,24 33,11" fill="none" stroke="#fff" stroke-width="3.2" stroke-linecap="round"
 stroke-linejoin="round"/><circle cx="33" cy="11" r="2.6" fill="#34d399"/></svg>
<div><h1>Crypto API Monitor</h1>
<p>Live crypto data from free public providers, with failover and health checks, over WebSocket and REST.</p></div>
<div class="links"><a href="/docs">REST API</a><a href="/asyncapi">WebSocket API</a>
<a href="/ws/endpoints">WebSocket endpoints</a><a href="/healthz">Health</a></div></div>"""

#: The sections a refresh sends, in the order of the outputs it updates.
SECTIONS = ("header", "market_top", "market_table", "market_side", "whales", "news", "sentiment", "chain",
            "providers", "connections")


@dataclass(frozen=True)
class Rendered:
    """Every section's HTML at one moment, plus what the chart and coin picker need."""

    sections: dict[str, str]
    market: Mapping[str, Any] | None
    coins: Coins  # (label, coin id), in market-cap order
    names: Mapping[str, str]  # provider id -> name


class Snapshot:
    """Renders the sections from the hub at most once per ``ttl`` seconds, whoever asks (every visitor's timer
    ticks; the work is done once)."""

    def __init__(self, hub: LatestUpdates, ws_stats: Callable[[], Mapping[str, Any]], ttl: float = 1.0) -> None:
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


def latest_payloads(hub: LatestUpdates) -> dict[str, Mapping[str, Any] | None]:
    """The payload of every service's latest update (None for a service that has published nothing yet)."""
    updates = {service: hub.latest(service) for service in SHOWN_SERVICES}
    return {service: update.data if update is not None else None for service, update in updates.items()}


def render_all(hub: LatestUpdates, ws_stats: Callable[[], Mapping[str, Any]], now: float) -> Rendered:
    payloads = latest_payloads(hub)
    view = make_view(payloads, now)
    stats = ws_stats()
    market_data = payloads["market_data"]
    modes = {(p or {}).get("data_source") for p in payloads.values()}
    renderers: dict[str, Callable[[], str]] = {
        "header": lambda: header.render_header(market_data, payloads["sentiment"], payloads["health_checker"],
                                               stats, view, modes),
        "market_top": lambda: market.market_summary(market_data, view),
        "market_table": lambda: market.market_table(market_data, view),
        "market_side": lambda: market.market_side(market_data, view),
        "whales": lambda: whales.render_whales(payloads["whale_tracking"], view),
        "news": lambda: news.render_news(payloads["news"], view),
        "sentiment": lambda: sentiment.render_sentiment(payloads["sentiment"], payloads["huggingface"], view),
        "chain": lambda: chain.render_chain(payloads["explorers"], payloads["rpc_nodes"], payloads["onchain"],
                                            view),
        "providers": lambda: providers.render_providers(payloads["health_checker"], payloads["pool_manager"],
                                                        payloads["scheduler"], view),
        "connections": lambda: connections.render_connections(stats, payloads["persistence"], view),
    }
    sections = {name: _drawn(name, render) for name, render in renderers.items()}
    return Rendered({k: wrap(v) for k, v in sections.items()}, market_data, market.coin_choices(market_data),
                    view.names)


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


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


# -- the refresh ----------------------------------------------------------------------------------------

class Refresher:
    """What one visitor's page is sent on each tick: only what changed since what it has (``seen``, a digest
    per section, the chart's key and the coin list's digest, kept in the visitor's ``gr.State``)."""

    def __init__(self, snapshot: Snapshot, chart: PriceChart) -> None:
        self.snapshot = snapshot
        self.chart = chart

    async def refresh(self, coin_id: str | None, seen: dict[str, str]) -> list[Any]:
        """The sections, the chart and its note, the coin picker, and the new ``seen``; ``gr.skip()`` for each
        output that has not changed."""
        rendered = self.snapshot.get()
        sent = dict(seen)
        updates = [self._section(rendered, name, sent) for name in SECTIONS]
        frame = await self.chart.frame(coin_id, rendered.coins, rendered.market, rendered.names,
                                       shown=sent.get("chart"))
        if frame is None:
            updates += [gr.skip(), gr.skip()]
        else:
            updates += [frame.data, frame.note]
            sent["chart"] = frame.key
        updates.append(self._coins(rendered, coin_id, sent))
        return [*updates, sent]

    async def pick(self, coin_id: str | None) -> tuple[Any, str]:
        """The chart of the coin the visitor just picked, whatever they were shown before."""
        rendered = self.snapshot.get()
        frame = await self.chart.frame(coin_id, rendered.coins, rendered.market, rendered.names)
        return (frame.data, frame.note) if frame is not None else (None, "")

    @staticmethod
    def _section(rendered: Rendered, name: str, sent: dict[str, str]) -> Any:
        digest = _digest(rendered.sections[name])
        unchanged = sent.get(name) == digest
        sent[name] = digest
        return gr.skip() if unchanged else rendered.sections[name]

    @staticmethod
    def _coins(rendered: Rendered, coin_id: str | None, sent: dict[str, str]) -> Any:
        """The coin picker's choices, sent again only when the market data lists other coins."""
        coins_key = _digest(repr(rendered.coins))
        if not rendered.coins or sent.get("coins") == coins_key:
            return gr.skip()
        sent["coins"] = coins_key
        return gr.Dropdown(choices=list(rendered.coins), value=chosen_coin(coin_id, rendered.coins))


# -- the page -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Page:
    """The components a refresh updates."""

    html: dict[str, gr.HTML]  # section name -> its component
    market_tab: market.MarketTab
    api_tab: connections.ConnectionsTab


def _layout(runner: SentimentRunner | None) -> Page:
    """The title, the header and the tabs, in the order the page shows them."""
    gr.HTML(TITLE, js_on_load=None)
    html: dict[str, gr.HTML] = {"header": header.layout()}
    with gr.Tabs():
        market_tab = market.layout(html)
        whales.layout(html)
        news.layout(html)
        sentiment.layout(html, runner)
        chain.layout(html)
        providers.layout(html)
        api = connections.layout(html)
    return Page(html, market_tab, api)


def build_ui(hub: LatestUpdates, ws_stats: Callable[[], Mapping[str, Any]], store: SeriesStore | None = None,
             runner: SentimentRunner | None = None, refresh_seconds: float = 3.0) -> gr.Blocks:
    """The dashboard. ``store`` feeds the price chart's history; ``runner`` (the sentiment runner) lets a visitor
    score their own text; without either the page says what it cannot show."""
    refresher = Refresher(Snapshot(hub, ws_stats), PriceChart(store))
    with gr.Blocks(title="Crypto API Monitor", analytics_enabled=False) as ui:
        page = _layout(runner)
        seen = gr.State({})
        timer = gr.Timer(refresh_seconds)
        coin, chart, note = page.market_tab.coin, page.market_tab.chart, page.market_tab.note
        outputs = [*(page.html[name] for name in SECTIONS), chart, note, coin, seen]
        events: dict[str, Any] = {"show_progress": "hidden", "api_visibility": "undocumented",
                                  "concurrency_limit": None}
        timer.tick(refresher.refresh, inputs=[coin, seen], outputs=outputs, trigger_mode="always_last", **events)
        ui.load(refresher.refresh, inputs=[coin, seen], outputs=outputs, **events)
        ui.load(connections.describe_api, outputs=[page.api_tab.urls, page.api_tab.client], **events)
        coin.input(refresher.pick, inputs=[coin], outputs=[chart, note], **events)
    return ui


__all__ = ["CSS", "HEAD", "THEME", "build_ui"]
