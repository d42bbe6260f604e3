"""The strip above every tab: a replay notice, a warning when the market cross-check distrusts a price, the
headline figures, and how healthy the providers are."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import gradio as gr

from models.states import PriceState
from ui.format import NA, badge, count, esc, money, number, percent, price
from ui.widgets import KIND, Payload, View, kpi, status_badge, wrap

#: The coins with a card of their own, whatever the market data lists.
HEADLINE_COINS = (("bitcoin", "Bitcoin"), ("ethereum", "Ethereum"))


def render_header(market: Payload | None, sentiment: Payload | None, health: Payload | None,
                  ws: Mapping[str, Any], view: View, modes: Iterable[object]) -> str:
    """The strip at the top: replay notice, price warnings, the headline figures, and how healthy the providers
    are."""
    banner = ""
    if "replay" in set(modes):
        banner = ('<div class="banner">Replay mode: the figures below are <b>recorded provider responses</b> '
                  "served through the live code path, not today's market.</div>")
    banner += price_warning(market)
    cards = []
    quote = (market or {}).get("quote_currency") or "USD"
    checks = {c.get("id"): c.get("check") or {} for c in (market or {}).get("coins") or []}
    for coin_id, label in HEADLINE_COINS:
        value = ((market or {}).get("prices") or {}).get(coin_id)
        change = ((market or {}).get("price_changes") or {}).get(coin_id)
        sub = f"{percent(change)} 24 h" if change is not None else ("waiting for data" if market is None else NA)
        state = (checks.get(coin_id) or {}).get("state")
        if value is not None and state in (PriceState.DISPUTED, PriceState.UNCONFIRMED):
            sub += " · " + badge(str(state), "bad" if state == PriceState.DISPUTED else "warn")
        cards.append(kpi(label, price(value, quote) if market else '<span class="na">waiting</span>', sub,
                         kind="bad" if value is not None and state == PriceState.DISPUTED else ""))
    global_market = (market or {}).get("global_market") or {}
    cards.append(kpi("Market cap", money(global_market.get("total_market_cap_usd")) if global_market else NA,
                     f"{percent(global_market.get('market_cap_change_24h'))} 24 h" if global_market else
                     "no global figures yet"))
    cards.append(_mood(sentiment))
    cards.append(_providers(health))
    cards.append(kpi("WebSocket clients", count(ws.get("total_connections")),
                     f"{count(ws.get('updates_published'))} updates published"))
    return f'{banner}<div class="kpis">{"".join(cards)}</div>'


def price_warning(market: Payload | None) -> str:
    """A headline warning while the market cross-check flags a price (providers disagreeing, a de-peg)."""
    alerts = ((market or {}).get("consensus") or {}).get("alerts") or []
    if not alerts:
        return ""
    shown = "; ".join(esc(a.get("message")) for a in alerts[:3])
    more = f" (and {count(len(alerts) - 3)} more on the Market tab)" if len(alerts) > 3 else ""
    return f'<div class="fresh nodata">{badge("PRICE CHECK", "bad")} {shown}{more}</div>'


def _mood(sentiment: Payload | None) -> str:
    """The Fear & Greed index when a provider gave it; the mean score of the news otherwise."""
    fear = (sentiment or {}).get("fear_greed") or {}
    if fear:
        return kpi("Fear & Greed", f"{fear.get('value')}", esc(fear.get("classification") or ""))
    score = number((sentiment or {}).get("sentiment_score"))
    return kpi("News mood", f"{score:+.2f}" if score is not None else NA,
               esc((sentiment or {}).get("overall_sentiment") or "no score yet"))


def _providers(health: Payload | None) -> str:
    if not health:
        return kpi("Providers", '<span class="na">waiting</span>', "first health check pending")
    overall = str(health.get("overall_health"))
    return kpi("Providers", f"{health.get('healthy_count')}/{health.get('total_providers')}",
               f"healthy · {status_badge(overall)}", kind=KIND.get(overall, ""))


def layout() -> gr.HTML:
    """The header's component, above the tabs; filled in by the page's first refresh."""
    return gr.HTML(wrap('<p class="empty">Loading…</p>'), js_on_load=None, elem_id="header")
