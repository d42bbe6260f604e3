"""The dashboard's sections as HTML, each a pure function of the payloads the hub holds (plus the time now).

Every section opens with what its data is worth: live, replayed, stale (the last good values, with their
age and why), no data (and why), or not yet received. Figures a provider did not give read ``n/a``; nothing
is zero-filled. Text from providers (titles, names, errors) is escaped; links are made only of http(s) URLs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.catalog import ENDPOINTS
from ui.format import (
    NA,
    badge,
    count,
    duration,
    esc,
    integer,
    link,
    milliseconds,
    money,
    number,
    percent,
    price,
    short_address,
    si,
    when,
)
from ui.format import epoch as to_epoch

Payload = Mapping[str, Any]

#: A provider state that means "it did not answer", and how to say it.
FAILING = {"error": "error", "rate_limited": "rate limited", "circuit_open": "paused after repeated failures"}
#: Badge colour per status word the payloads use.
KIND = {"ok": "ok", "healthy": "ok", "scheduled": "ok", "published": "ok", "done": "ok", "nothing_new": "info",
        "running": "info", "degraded": "warn", "slow": "warn", "stale": "warn", "partial": "warn", "paused": "warn",
        "rate_limited": "warn", "unhealthy": "bad", "error": "bad", "circuit_open": "bad", "no_data": "bad",
        "disabled": "off", "missing_api_key": "off", "unchecked": "off", "not_tried": "off", "waiting": "off",
        "bullish": "bull", "bearish": "bear", "neutral": "neutral"}


@dataclass(frozen=True)
class View:
    """What every section needs besides its payload."""

    now: float
    names: Mapping[str, str] = field(default_factory=dict)  # provider id -> its name
    intervals: Mapping[str, float] = field(default_factory=dict)  # service -> seconds between its runs
    running: frozenset[str] | None = None  # services with a collection job; None until the scheduler reports

    def name(self, provider_id: object) -> str:
        return self.names.get(str(provider_id), str(provider_id)) if provider_id else "none"


def status_badge(status: object) -> str:
    word = str(status or "unknown")
    return badge(word.replace("_", " "), KIND.get(word, "off"))


# -- freshness ------------------------------------------------------------------------------------------

def waiting(label: str, service: str, view: View) -> str:
    """Nothing received yet: either it is coming, or this server does not run that service."""
    if view.running is not None and service not in view.running:
        return (f'<div class="fresh off"><b>{esc(label)}</b>: not collected on this server '
                f'(the <code>{esc(service)}</code> service is not running), so there is nothing to show.</div>')
    return f'<div class="fresh waiting"><b>{esc(label)}</b>: waiting for the first update…</div>'


def failing_providers(data: Payload, view: View) -> list[str]:
    lines = []
    for provider_id, state in (data.get("providers") or {}).items():
        status = (state or {}).get("status")
        if status in FAILING:
            error = state.get("error")
            why = f" ({esc(error)})" if error else ""
            since = f", since {when(state.get('since'), view.now)}" if state.get("since") else ""
            lines.append(f"<li><b>{esc(view.name(provider_id))}</b>: {FAILING[status]}{why}{since}</li>")
    return lines


def freshness(label: str, service: str, data: Payload | None, view: View, source: object = None) -> str:
    """One line saying how good a data payload is, and why when it is not; ``label`` names what it holds."""
    if data is None:
        return waiting(label, service, view)
    status = data.get("status") or "ok"
    replay = data.get("data_source") == "replay"
    source = source if source is not None else data.get("source")
    origin = f" from <b>{esc(view.name(source))}</b>" if source else ""
    fetched = when(data.get("fetched_at"), view.now, missing="never")
    mode = badge("REPLAY", "info") + " recorded responses" if replay else badge("LIVE", "ok")
    failing = failing_providers(data, view)
    message = data.get("message")
    if status == "no_data":
        text = f"{badge('NO DATA', 'bad')} <b>{esc(label)}</b>: {esc(message or 'every provider failed')}"
        return _fresh_block("nodata", text, failing, open_details=True)
    if status == "stale":
        text = (f"{badge('STALE', 'warn')} <b>{esc(label)}</b>: the last good values{origin}, fetched {fetched}"
                f"{', failing since ' + when(data.get('stale_since'), view.now) if data.get('stale_since') else ''}.")
        return _fresh_block("stale", text, failing, open_details=True)
    if status == "partial":
        text = f"{badge('PARTIAL', 'warn')} <b>{esc(label)}</b>: some parts have no data; each says why below."
        return _fresh_block("partial", text, failing, open_details=False)
    overdue = _overdue(data.get("fetched_at"), service, view)
    if overdue:
        text = (f"{badge('OLD', 'warn')} <b>{esc(label)}</b>{origin}: fetched {fetched}, "
                f"though it should refresh every {duration(view.intervals.get(service))}.")
        return _fresh_block("stale", text, failing, open_details=False)
    note = f'<div class="msg">{esc(message)}</div>' if message else ""
    text = f"{mode} <b>{esc(label)}</b>{origin} · fetched {fetched}{note}"
    return _fresh_block("ok", text, failing, open_details=False)


def checked(label: str, service: str, data: Payload | None, view: View, stamp: str = "timestamp") -> str:
    """The freshness line of a monitoring payload (no provider behind it): when it was last produced."""
    if data is None:
        return waiting(label, service, view)
    mode = badge("REPLAY", "info") + " " if data.get("data_source") == "replay" else ""
    if _overdue(data.get(stamp), service, view):
        return (f'<div class="fresh stale">{badge("OLD", "warn")} <b>{esc(label)}</b>: last updated '
                f'{when(data.get(stamp), view.now)}, though it should refresh every '
                f'{duration(view.intervals.get(service))}.</div>')
    return f'<div class="fresh ok">{mode}<b>{esc(label)}</b> · updated {when(data.get(stamp), view.now)}</div>'


def _overdue(timestamp: object, service: str, view: View) -> bool:
    """Not refreshed for three of its intervals (and a minute): a snapshot from before a restart, or a stuck job."""
    interval, moment = view.intervals.get(service), to_epoch(timestamp)
    if interval is None or moment is None:
        return False
    return view.now - moment > max(3 * interval, interval + 60)


def _fresh_block(kind: str, text: str, failing: list[str], open_details: bool) -> str:
    details = ""
    if failing:
        summary = f"{len(failing)} provider{'s' if len(failing) > 1 else ''} not answering"
        details = (f'<details{" open" if open_details else ""}><summary>{summary}</summary>'
                   f'<ul>{"".join(failing)}</ul></details>')
    return f'<div class="fresh {kind}">{text}{details}</div>'


SOURCE_WORDS = {"ok": ("answered", "ok"), "not_tried": ("standby", "off"), "error": ("failed", "bad"),
                "rate_limited": ("rate limited", "warn"), "waiting": ("not due yet", "off"),
                "circuit_open": ("paused", "bad"),
                "missing_api_key": ("no API key", "off")}


def sources_line(data: Payload | None, view: View) -> str:
    """Every provider behind a payload and how its latest attempt went: the failover chain, visible."""
    providers = (data or {}).get("providers") or {}
    if not providers:
        return ""
    items = []
    for provider_id, state in providers.items():
        word, kind = SOURCE_WORDS.get(str((state or {}).get("status")), ("unknown", "off"))
        items.append(f'<span class="src"><span class="dot {kind}"></span>{esc(view.name(provider_id))} '
                     f"<small>{word}</small></span>")
    return f'<p class="sources">Sources: {"".join(items)}</p>'


# -- building blocks ------------------------------------------------------------------------------------

def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, optional: Iterable[int] = (),
          numeric: Iterable[int] = (), empty: str = "Nothing to show.", caption: str = "",
          tall: bool = False) -> str:
    """A table of already-escaped cells. ``optional`` columns are hidden on narrow screens."""
    hidden, right = set(optional), set(numeric)

    def cls(i: int) -> str:
        names = [n for n, on in (("opt", i in hidden), ("num", i in right)) if on]
        return f' class="{" ".join(names)}"' if names else ""

    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
                   for row in rows)
    if not body:
        return f'<p class="empty">{empty}</p>'
    head = "".join(f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(headers))
    cap = f"<caption>{caption}</caption>" if caption else ""
    return (f'<div class="table-wrap{" tall" if tall else ""}"><table class="grid">{cap}<thead><tr>{head}</tr>'
            f"</thead><tbody>{body}</tbody></table></div>")


def breakable(identifier: str) -> str:
    """An identifier such as ``explorers_ethereum`` that may wrap after its underscores on a narrow screen."""
    return "_<wbr>".join(esc(part) for part in identifier.split("_"))


def kpi(label: str, value: str, sub: str = "", kind: str = "") -> str:
    return (f'<div class="kpi {kind}"><div class="kpi-label">{esc(label)}</div><div class="kpi-value">{value}</div>'
            f'<div class="kpi-sub">{sub}</div></div>')


def chips(items: Iterable[str], empty: str) -> str:
    inner = "".join(f'<span class="chip">{item}</span>' for item in items)
    return f'<div class="chips">{inner}</div>' if inner else f'<p class="empty">{empty}</p>'


def heading(text: str, sub: str = "") -> str:
    return f'<h3 class="sec">{esc(text)}{f" <small>{sub}</small>" if sub else ""}</h3>'


def gauge(value: float | None, low: float, high: float, caption: str, value_text: str) -> str:
    """A half-circle gauge (inline SVG) from red at ``low`` to green at ``high``; an empty arc when None."""
    def point(fraction: float, radius: float) -> tuple[float, float]:
        angle = math.pi * (1 - fraction)
        return 60 + radius * math.cos(angle), 60 - radius * math.sin(angle)

    segments = []
    colours = ("#dc2626", "#f97316", "#a3a3a3", "#84cc16", "#16a34a")
    for i, colour in enumerate(colours):
        (x1, y1), (x2, y2) = point(i / 5 + 0.006, 48), point((i + 1) / 5 - 0.006, 48)
        segments.append(f'<path d="M{x1:.2f},{y1:.2f} A48,48 0 0,1 {x2:.2f},{y2:.2f}" stroke="{colour}" '
                        f'stroke-width="11" fill="none" opacity="{1 if value is not None else 0.25}"/>')
    needle = ""
    if value is not None:
        fraction = min(1.0, max(0.0, (value - low) / (high - low)))
        x, y = point(fraction, 40)
        needle = (f'<line x1="60" y1="60" x2="{x:.2f}" y2="{y:.2f}" stroke="currentColor" stroke-width="3" '
                  f'stroke-linecap="round"/><circle cx="60" cy="60" r="4" fill="currentColor"/>')
    return (f'<figure class="gauge"><svg viewBox="0 0 120 68" role="img" aria-label="{esc(caption)}">'
            f'{"".join(segments)}{needle}</svg><div class="gauge-value">{value_text}</div>'
            f"<figcaption>{caption}</figcaption></figure>")


def sentiment_badge(verdict: Payload | None) -> str:
    if not verdict:
        return badge("not scored yet", "off")
    label, score = verdict.get("label"), number(verdict.get("score"))
    text = f"{label} {score:+.2f}" if score is not None else str(label)
    model = esc(verdict.get("model") or "unknown")
    return f'<span title="scored by {model}">{badge(text, KIND.get(str(label), "off"))}</span>'


# -- header ---------------------------------------------------------------------------------------------

def render_header(market: Payload | None, sentiment: Payload | None, health: Payload | None,
                  ws: Mapping[str, Any], view: View, modes: Iterable[object]) -> str:
    """The strip at the top: replay notice, the headline figures, and how healthy the providers are."""
    banner = ""
    if "replay" in set(modes):
        banner = ('<div class="banner">Replay mode: the figures below are <b>recorded provider responses</b> '
                  "served through the live code path, not today's market.</div>")
    cards = []
    quote = (market or {}).get("quote_currency") or "USD"
    for coin_id, label in (("bitcoin", "Bitcoin"), ("ethereum", "Ethereum")):
        value = ((market or {}).get("prices") or {}).get(coin_id)
        change = ((market or {}).get("price_changes") or {}).get(coin_id)
        sub = f"{percent(change)} 24 h" if change is not None else ("waiting for data" if market is None else NA)
        cards.append(kpi(label, price(value, quote) if market else '<span class="na">waiting</span>', sub))
    global_market = (market or {}).get("global_market") or {}
    cards.append(kpi("Market cap", money(global_market.get("total_market_cap_usd")) if global_market else NA,
                     f"{percent(global_market.get('market_cap_change_24h'))} 24 h" if global_market else
                     "no global figures yet"))
    fear = (sentiment or {}).get("fear_greed") or {}
    score = number((sentiment or {}).get("sentiment_score"))
    if fear:
        cards.append(kpi("Fear & Greed", f"{fear.get('value')}", esc(fear.get("classification") or "")))
    else:
        cards.append(kpi("News mood", f"{score:+.2f}" if score is not None else NA,
                         esc((sentiment or {}).get("overall_sentiment") or "no score yet")))
    if health:
        overall = str(health.get("overall_health"))
        cards.append(kpi("Providers", f"{health.get('healthy_count')}/{health.get('total_providers')}",
                         f"healthy · {status_badge(overall)}", kind=KIND.get(overall, "")))
    else:
        cards.append(kpi("Providers", '<span class="na">waiting</span>', "first health check pending"))
    cards.append(kpi("WebSocket clients", count(ws.get("total_connections")),
                     f"{count(ws.get('updates_published'))} updates published"))
    return f'{banner}<div class="kpis">{"".join(cards)}</div>'


# -- market ---------------------------------------------------------------------------------------------

def market_rows(data: Payload | None, view: View) -> list[list[str]]:
    """One row per coin: rank, coin, price, change, volume, market cap, source; n/a where not given."""
    if not data or data.get("status") == "no_data":
        return []
    quote = data.get("quote_currency") or "USD"
    prices, changes = data.get("prices") or {}, data.get("price_changes") or {}
    volumes, caps = data.get("volumes") or {}, data.get("market_caps") or {}
    source = esc(view.name(data.get("source")))
    rows = []
    for coin in data.get("coins") or []:
        cid = coin.get("id")
        if cid not in prices:
            continue
        rank = coin.get("rank")
        rows.append([str(rank) if rank is not None else NA,
                     f'<b>{esc(coin.get("name") or cid)}</b> <span class="sym">{esc(coin.get("symbol") or "")}</span>',
                     price(prices.get(cid), quote), percent(changes.get(cid)), money(volumes.get(cid), quote),
                     money(caps.get(cid)), source])
    return rows


def market_summary(data: Payload | None, view: View) -> str:
    """How fresh the prices are, and the whole-market figures."""
    top = freshness("Prices", "market_data", data, view)
    if not data or data.get("status") == "no_data":
        return top
    note = ""
    if data.get("quote_currency") == "USDT":
        note = '<p class="note">Prices and volumes are in USDT (Binance pairs), not converted to USD.</p>'
    return top + sources_line(data, view) + _global_figures(data, view) + note


def market_table(data: Payload | None, view: View) -> str:
    if not data or data.get("status") == "no_data":
        return '<p class="empty">No prices to show.</p>'
    window = "Since 00:00 UTC" if data.get("price_change_window") == "utc_day" else "24 h"
    stale = data.get("status") == "stale"  # the last good values, shown dimmed under the banner saying so
    return ('<div class="stale-data">' if stale else "<div>") + heading(
        "Prices", f"{count(len(data.get('prices') or {}))} coins by market cap"
        + (" · last good values" if stale else "")) + table(
        ["#", "Coin", "Price", window, "Volume 24 h", "Market cap", "Source"], market_rows(data, view),
        optional=(0, 4, 6), numeric=(2, 3, 4, 5), tall=True, empty="The provider answered without prices.") + "</div>"


def market_side(data: Payload | None, view: View) -> str:
    """What sits under the chart: the coins people search most."""
    if not data or data.get("status") == "no_data":
        return ""
    return _trending(data, view) or heading("Trending") + chips([], "No trending list from the providers yet.")


def _global_figures(data: Payload, view: View) -> str:
    figures = data.get("global_market")
    if not figures:
        return ""
    # The total market cap is in the page's header, above every tab.
    cards = [kpi("Volume 24 h", money(figures.get("total_volume_usd")), "all coins"),
             kpi("BTC dominance", percent(figures.get("btc_dominance"), signed=False), "of the market cap"),
             kpi("ETH dominance", percent(figures.get("eth_dominance"), signed=False), "of the market cap"),
             kpi("Active coins", count(figures.get("active_cryptocurrencies")),
                 f"{esc(view.name(figures.get('source')))} · {when(figures.get('fetched_at'), view.now)}")]
    return f'<div class="kpis small">{"".join(cards)}</div>'


def _trending(data: Payload, view: View) -> str:
    trending = data.get("trending") or []
    if not trending:
        return ""
    items = [f'{esc(t.get("name"))} <span class="sym">{esc(t.get("symbol"))}</span>'
             + (f' <small>#{esc(t["market_cap_rank"])}</small>' if t.get("market_cap_rank") else "")
             for t in trending]
    return heading("Trending", f"searched most, {when(data.get('trending_fetched_at'), view.now)}") + \
        chips(items, "Nothing trending.")


# -- whales ---------------------------------------------------------------------------------------------

def whale_rows(data: Payload | None, view: View) -> list[list[str]]:
    if not data or data.get("status") == "no_data":
        return []
    rows = []
    for tx in data.get("large_transactions") or []:
        amount = number(tx.get("amount"))
        if amount is None:
            amount_text = NA
        else:
            shown = f"{amount:,.0f}" if abs(amount) >= 1000 else f"{amount:,.4g}"
            amount_text = f"{shown} {esc(tx.get('symbol') or '')}"
        route = f"{esc(short_address(tx.get('from')))} → {esc(short_address(tx.get('to')))}"
        tx_hash = str(tx.get("hash") or "")
        rows.append([when(tx.get("timestamp"), view.now, missing="unknown"), esc(tx.get("chain") or ""),
                     f"<b>{money(tx.get('value'))}</b>", amount_text, route,
                     link(tx.get("explorer_url"), short_address(tx_hash)), esc(view.name(tx.get("source")))])
    return rows


def render_whales(data: Payload | None, view: View) -> str:
    top = freshness("Large transactions", "whale_tracking", data, view)
    if not data or data.get("status") == "no_data":
        return top
    threshold = money(data.get("alert_threshold"))
    window = duration(data.get("window_seconds"))
    rows = whale_rows(data, view)
    prices_used = data.get("prices_used") or {}
    valued = ", ".join(f"{esc(symbol)} at {price(value)}" for symbol, value in prices_used.items())
    note = (f'<p class="note">Transactions over {threshold} in the last {window}'
            f'{f"; amounts valued with {valued} (market_data)" if valued else ""}.</p>')
    if not rows:
        return (f'{top}{sources_line(data, view)}{note}<p class="empty">No transaction over {threshold} seen '
                f"in the last {window}.</p>")
    values = [v for v in (number(tx.get("value")) for tx in data.get("large_transactions") or []) if v is not None]
    total = data.get("total_volume")
    cards = [kpi("Transactions", count(len(rows)), f"over {threshold}"),
             kpi("Their total", money(total) if total is not None else NA, f"in the last {window}"),
             kpi("Largest", money(max(values)) if values else NA)]
    listing = table(["When", "Chain", "Value", "Amount", "From → To", "Transaction", "Source"], rows,
                    optional=(3, 4, 6), numeric=(2, 3))
    wallets = data.get("whale_wallets") or []
    wallet_table = ""
    if wallets:
        wallet_table = heading("Busiest whale wallets") + table(
            ["Address", "Chain", "Volume", "Transactions"],
            [[esc(short_address(w.get("address"))), esc(w.get("chain") or ""), money(w.get("volume_usd")),
              count(w.get("transactions"))] for w in wallets], numeric=(2, 3))
    return (f'{top}{sources_line(data, view)}<div class="kpis small">{"".join(cards)}</div>{note}{listing}'
            f"{wallet_table}")


# -- news -----------------------------------------------------------------------------------------------

def render_news(data: Payload | None, view: View, limit: int = 40) -> str:
    top = freshness("News", "news", data, view, source=None)
    if not data or data.get("status") == "no_data":
        return top
    articles = list(data.get("articles") or [])[:limit]
    if not articles:
        return top + sources_line(data, view) + '<p class="empty">The feeds answered with no articles.</p>'
    items = []
    for article in articles:
        published = when(article.get("published_at"), view.now, missing="date unknown")
        summary = article.get("summary")
        headline = link(article.get("url"), article.get("title") or "untitled")
        items.append(
            f'<li class="article"><div class="article-head">{headline}'
            f"</div><div class=\"article-meta\">{sentiment_badge(article.get('sentiment'))} "
            f"<b>{esc(article.get('source') or 'unknown source')}</b> · {published}</div>"
            + (f'<div class="article-summary">{esc(_cut(summary, 220))}</div>' if summary else "") + "</li>")
    sources = ", ".join(esc(s) for s in data.get("sources") or [])
    return (f"{top}{sources_line(data, view)}<p class=\"note\">{len(articles)} latest headlines"
            f"{f' from {sources}' if sources else ''}.</p><ul class=\"articles\">{''.join(items)}</ul>")


def _cut(text: object, length: int) -> str:
    words = str(text)
    return words if len(words) <= length else words[: length - 1].rsplit(" ", 1)[0] + "…"


# -- sentiment ------------------------------------------------------------------------------------------

def render_sentiment(data: Payload | None, model: Payload | None, view: View) -> str:
    top = freshness("Sentiment", "sentiment", data, view, source=None)
    model_line = _model_line(model, data)
    if not data or data.get("status") == "no_data":
        return top + model_line
    score = number(data.get("sentiment_score"))
    overall = data.get("overall_sentiment")
    volume = data.get("social_volume") or 0
    score_text = (f"{score:+.2f} {badge(str(overall), KIND.get(str(overall), 'off'))}" if score is not None
                  else '<span class="na">no score</span>')
    caption = (f"mean of {count(volume)} texts, -1 bearish … +1 bullish" if score is not None
               else "no texts were scored, so there is no score")
    gauges = [gauge(score, -1, 1, caption, score_text)]
    fear = data.get("fear_greed")
    if fear:
        gauges.append(gauge(number(fear.get("value")), 0, 100,
                            f"Fear &amp; Greed (0 fear … 100 greed) · {esc(view.name(fear.get('source')))} · "
                            f"{when(fear.get('timestamp'), view.now, missing='date unknown')}",
                            f"{esc(fear.get('value'))} {esc(fear.get('classification') or '')}"))
    else:
        gauges.append(gauge(None, 0, 100, "Fear &amp; Greed index not available", NA))
    by_source = data.get("sentiment_by_source") or {}
    bars = "".join(_bar(name, value) for name, value in sorted(by_source.items(), key=lambda kv: -kv[1]))
    counts = data.get("label_counts") or {}
    count_chips = chips([f"{badge(label, KIND.get(label, 'off'))} {count(n)}" for label, n in counts.items()],
                        "No labels yet.")
    topics = chips([esc(t) for t in data.get("trending_topics") or []], "No topics stand out in the texts.")
    bars_block = f'<div class="bars">{bars}</div>' if bars else '<p class="empty">No source scored yet.</p>'
    return (f'{top}{sources_line(data, view)}<div class="mood">{"".join(gauges)}'
            f'<div class="card">{heading("Verdicts", f"{count(volume)} texts")}{count_chips}'
            f'{heading("Trending topics")}{topics}</div></div>{model_line}'
            f'{heading("Mean score by source", "-1 bearish … +1 bullish")}{bars_block}')


def _bar(name: str, value: object) -> str:
    score = number(value)
    if score is None:
        return ""
    width = min(50.0, abs(score) * 50)
    side = "pos" if score >= 0 else "neg"
    return (f'<div class="bar-row"><span class="bar-name">{esc(name)}</span><span class="bar-track">'
            f'<span class="bar {side}" style="width:{width:.1f}%"></span></span>'
            f'<span class="bar-value">{score:+.2f}</span></div>')


def _model_line(model: Payload | None, data: Payload | None) -> str:
    """Which model scored the texts, and the configured model's state (loading, ready, failed and why)."""
    parts = []
    if data and data.get("model"):
        backend = data.get("backend")
        parts.append(f"Texts scored by <b>{esc(data.get('model'))}</b>{f' ({esc(backend)})' if backend else ''}")
    state = (model or {}).get("sentiment_model") if model else None
    if state:
        words = {"ready": "ready", "loading": "loading…", "failed": "could not be loaded"}
        line = (f"Model <b>{esc(state.get('id'))}</b>: {status_badge(state.get('state'))} "
                f"{esc(words.get(str(state.get('state')), ''))}; answering now: <b>{esc(state.get('backend'))}</b>")
        if state.get("error"):
            line += f' <span class="err">{esc(_cut(state.get("error"), 140))}</span>'
        parts.append(line)
    return f'<p class="note">{" · ".join(parts)}</p>' if parts else ""


# -- chain ----------------------------------------------------------------------------------------------

def render_chain(explorers: Payload | None, rpc: Payload | None, onchain: Payload | None, view: View) -> str:
    return (heading("Explorers") + _explorers(explorers, view) + heading("RPC nodes") + _rpc(rpc, view)
            + heading("On-chain") + _onchain(onchain, view))


def _explorers(data: Payload | None, view: View) -> str:
    if data is None:
        return waiting("Explorers", "explorers", view)
    btc, eth = data.get("bitcoin") or {}, data.get("ethereum") or {}
    btc_rows = []
    if btc.get("status") != "no_data":
        fees = btc.get("fees") or {}
        fee_text = " · ".join(f"{esc(k.replace('_', ' '))} {number(v):g}" for k, v in fees.items()
                              if number(v) is not None) or NA
        btc_rows = [("Block height", integer(btc.get("height"))), ("Fees, sat/vB", fee_text),
                    ("Mempool", f"{count(btc.get('mempool_count'))} txs, "
                                f"{si(btc.get('mempool_vsize'), 'vB')}" if btc.get("mempool_count") is not None
                     else NA),
                    ("Hashrate", si(btc.get("hashrate"), "H/s")), ("Difficulty", si(btc.get("difficulty"), "")),
                    ("Last block", when(btc.get("last_block_time"), view.now, missing="n/a"))]
    eth_rows = []
    if eth.get("status") != "no_data":
        oracle = eth.get("gas_oracle") or {}
        eth_rows = [("Latest block", integer(eth.get("block_number"))),
                    ("Gas price", _gwei(eth.get("gas_price_gwei"))), ("Base fee", _gwei(eth.get("base_fee_gwei"))),
                    ("Gas oracle", " · ".join(f"{esc(k)} {_gwei(v)}" for k, v in oracle.items()) or NA),
                    ("Last block", when(eth.get("last_block_time"), view.now, missing="n/a"))]
    return (f'<div class="cols">'
            f'<div class="card">{freshness("Bitcoin", "explorers", btc, view)}{_facts(btc_rows)}</div>'
            f'<div class="card">{freshness("Ethereum", "explorers", eth, view)}{_facts(eth_rows)}</div></div>')


def _gwei(value: object) -> str:
    amount = number(value)
    if amount is None:
        return NA
    return f"{amount:.3g} gwei" if amount < 10 else f"{amount:,.1f} gwei"


def _facts(rows: Sequence[tuple[str, str]]) -> str:
    if not rows:
        return ""
    return '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _rpc(data: Payload | None, view: View) -> str:
    top = checked("RPC nodes", "rpc_nodes", data, view)
    if data is None:
        return top
    chains = data.get("chains") or {}
    summary = chips([f"<b>{esc(name)}</b> {c.get('healthy_nodes')}/{c.get('nodes')} up · block "
                     f"{integer(c.get('best_block'))}"
                     for name, c in chains.items()], "No chains declared.")
    rows = []
    for node_id, node in sorted((data.get("nodes") or {}).items(), key=lambda kv: (kv[1].get("chain", ""), kv[0])):
        reachable = bool(node.get("reachable"))
        lag = node.get("lag_blocks")
        chain_ok = node.get("chain_id_ok")
        state = badge("up", "ok") if reachable else badge("down", "bad")
        if reachable and chain_ok is False:
            state = badge("wrong chain", "bad")
        rows.append([esc(node.get("chain") or ""), f'<span title="{esc(node.get("url"))}">{esc(view.name(node_id))}'
                     f"</span>", state, milliseconds(node.get("latency_ms")), integer(node.get("block_number")),
                     (f"{lag} behind" if lag else "in sync") if lag is not None else NA,
                     f'<span class="err">{esc(_cut(node.get("error"), 120))}</span>' if node.get("error") else ""])
    nodes = table(["Chain", "Node", "State", "Latency", "Block", "Lag", "Error"], rows, optional=(0, 4, 6),
                  numeric=(3, 4, 5), empty="No nodes declared.")
    healthy = f'<p class="note">{data.get("healthy_count")} of {data.get("total_nodes")} nodes answer.</p>'
    return top + healthy + summary + nodes


def _onchain(data: Payload | None, view: View) -> str:
    if data is None:
        return waiting("On-chain figures", "onchain", view)
    tvl, protocols, stable = data.get("tvl") or {}, data.get("protocols") or {}, data.get("stablecoins") or {}
    tvl_block = freshness("Total value locked", "onchain", tvl, view)
    if tvl.get("status") != "no_data":
        tvl_block += kpi("DeFi TVL", money(tvl.get("total_tvl")), "all chains")
        tvl_block += table(["Chain", "TVL", "Token"],
                           [[esc(c.get("name")), money(c.get("tvl")), esc(c.get("token_symbol") or "")]
                            for c in (tvl.get("chains") or [])[:10]], numeric=(1,), empty="No chains listed.")
    proto_block = freshness("DeFi protocols", "onchain", protocols, view)
    if protocols.get("status") != "no_data":
        proto_block += table(["Protocol", "Category", "TVL", "1 d", "7 d"],
                             [[esc(p.get("name")), esc(p.get("category") or ""), money(p.get("tvl")),
                               percent(p.get("change_1d")), percent(p.get("change_7d"))]
                              for p in (protocols.get("top") or [])[:10]],
                             optional=(1, 4), numeric=(2, 3, 4), empty="No protocols listed.")
    stable_block = freshness("Stablecoins", "onchain", stable, view)
    if stable.get("status") != "no_data":
        stable_block += kpi("Stablecoins in circulation", money(stable.get("total_circulating_usd")))
        stable_block += table(["Stablecoin", "Circulating", "Peg"],
                              [[f'{esc(s.get("name"))} <span class="sym">{esc(s.get("symbol"))}</span>',
                                money(s.get("circulating_usd")), esc(s.get("peg_type") or "")]
                               for s in (stable.get("top") or [])[:10]], numeric=(1,), optional=(2,),
                              empty="No stablecoins listed.")
    gas = data.get("gas") or {}
    gas_line = chips([f"<b>{esc(chain)}</b> gas {_gwei(g.get('gas_price_gwei'))}, base fee "
                      f"{_gwei(g.get('base_fee_gwei'))}" for chain, g in gas.items()], "No gas figures.")
    return (f'<div class="cols"><div class="card">{tvl_block}</div><div class="card">{proto_block}</div></div>'
            f'<div class="cols"><div class="card">{stable_block}</div><div class="card">{heading("Gas")}'
            f"{gas_line}</div></div>")


# -- providers ------------------------------------------------------------------------------------------

def health_rows(data: Payload | None, view: View) -> list[list[str]]:
    if not data:
        return []
    rows = []
    providers = (data.get("providers") or {}).items()
    for _pid, p in sorted(providers, key=lambda kv: (kv[1].get("category", ""), kv[1].get("name", kv[0]))):
        detail = p.get("detail")
        word = str(p.get("status"))
        state = status_badge(word) + (f' <span class="opt">{status_badge(detail)}</span>'
                                      if detail not in (None, "ok", word) else "")
        error = p.get("error")
        rows.append([esc(p.get("category") or ""), f"<b>{esc(p.get('name') or _pid)}</b>", state,
                     milliseconds(p.get("response_time_ms")),
                     when(p.get("last_check"), view.now, missing="not checked yet"),
                     when(p.get("last_success"), view.now, missing="never"),
                     f'<span class="err" title="{esc(error)}">{esc(_cut(error, 90))}</span>' if error else ""])
    return rows


def pool_rows(data: Payload | None, view: View) -> list[list[str]]:
    if not data:
        return []
    rows = []
    for name, pool in (data.get("pools") or {}).items():
        sources = pool.get("sources") or {}
        members = " ".join(f'<span class="dot {KIND.get(str(state), "off")}" title="{esc(state)}"></span>'
                           f"{esc(view.name(sid))}" for sid, state in sources.items()) or esc(
            ", ".join(view.name(s) for s in pool.get("available_sources") or []))
        last = pool.get("last_failover") or {}
        last_text = (f"{esc(view.name(last.get('from_source')))} → {esc(view.name(last.get('to_source')))}, "
                     f"{when(last.get('at'), view.now)}" if last else "none")
        active = pool.get("active_source")
        rows.append([f"<b>{breakable(name)}</b>",
                     esc(view.name(active)) if active else '<span class="na">none yet</span>',
                     status_badge(pool.get("health")), f'<span class="members">{members}</span>',
                     count(pool.get("failover_count", 0)), last_text])
    return rows


def job_rows(data: Payload | None, view: View) -> list[list[str]]:
    if not data:
        return []
    rows = []
    for job in data.get("jobs") or []:
        failures = job.get("failures") or 0
        error = job.get("last_error")
        rows.append([f"<b>{breakable(str(job.get('id', '')).removesuffix('_collection'))}</b>",
                     status_badge(job.get("status")), duration(job.get("interval_seconds")),
                     when(job.get("next_run"), view.now, missing="not scheduled", upcoming=True,
                          every=job.get("interval_seconds")),
                     when(job.get("last_run"), view.now, missing="not yet"),
                     (status_badge(job.get("last_result")) if job.get("last_result") else '<span class="na">—</span>')
                     + (f' <span class="err" title="{esc(error)}">{esc(_cut(error, 60))}</span>' if error else ""),
                     milliseconds(job.get("last_duration_ms")),
                     f"{count(job.get('runs', 0))}" + (f' <span class="down">({failures} failed)</span>'
                                                       if failures else "")])
    return rows


def render_providers(health: Payload | None, pools: Payload | None, scheduler: Payload | None, view: View) -> str:
    parts = [heading("Provider health"), checked("Health checks", "health_checker", health, view)]
    if health:
        overall = str(health.get("overall_health"))
        parts.append(f'<p class="note">{status_badge(overall)} {health.get("healthy_count")} healthy, '
                     f'{health.get("degraded_count", 0)} slow or limited, {health.get("unhealthy_count")} failing, '
                     f'{health.get("disabled_count", 0)} disabled (no API key) of {health.get("total_providers")}.</p>')
        parts.append(table(["Category", "Provider", "Status", "Latency", "Last check", "Last success", "Error"],
                           health_rows(health, view), optional=(0, 5, 6), numeric=(3,), tall=True,
                           empty="No providers declared."))
    parts += [heading("Pools and failover"), checked("Pools", "pool_manager", pools, view)]
    if pools:
        parts.append(table(["Pool", "Active source", "Health", "Sources", "Failovers", "Last failover"],
                           pool_rows(pools, view), optional=(3, 5), numeric=(4,), empty="No pools."))
        recent = pools.get("recent_failovers") or []
        if recent:
            parts.append(heading("Recent failovers") + table(
                ["When", "Pool", "From", "To", "Why"],
                [[when(f.get("at"), view.now), esc(f.get("pool")), esc(view.name(f.get("from_source"))),
                  esc(view.name(f.get("to_source"))), esc(_cut(f.get("reason"), 120))] for f in recent[-10:][::-1]],
                optional=(4,)))
    parts += [heading("Scheduled jobs"), checked("Scheduler", "scheduler", scheduler, view)]
    if scheduler:
        parts.append(f'<p class="note">{"running" if scheduler.get("running") else "<b>stopped</b>"}: '
                     f'{scheduler.get("total_jobs")} jobs, {scheduler.get("active_jobs")} running right now.</p>')
        parts.append(table(["Job", "Status", "Every", "Next run", "Last run", "Last result", "Took", "Runs"],
                           job_rows(scheduler, view), optional=(1, 2, 4, 6, 7), numeric=(6,), empty="No jobs."))
    return "".join(parts)


# -- connections ----------------------------------------------------------------------------------------

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
    storage = checked("Stored history", "persistence", persistence, view)
    if persistence:
        backup = persistence.get("backup") or {}
        storage += _facts([("Records", count(persistence.get("total_records"))),
                           ("Size", esc(persistence.get("storage_size") or "")),
                           ("Last save", when(persistence.get("last_save"), view.now, missing="nothing saved yet")),
                           ("Oldest record", when(persistence.get("oldest_record"), view.now, missing="none")),
                           ("Backup", "to a Hugging Face dataset" if backup.get("enabled") else "off")])
    return (f'{heading("WebSocket clients")}<div class="kpis small">{"".join(cards)}</div>'
            f'<p class="note">Closed by the server: {closed or "none"}.</p>'
            f'{heading("Subscriptions by service")}{sub_chips}{heading("Storage")}{storage}')


def websocket_base(headers: Mapping[str, str], fallback_host: str = "localhost:7860") -> str:
    """``ws(s)://host`` as the visitor reached the page, through a proxy (a Space) or not."""
    scheme = headers.get("x-forwarded-proto", "http").split(",")[0].strip()
    address = headers.get("x-forwarded-host") or headers.get("host") or fallback_host
    return f"{'wss' if scheme == 'https' else 'ws'}://{address.split(',')[0].strip()}"


API_INTRO = (heading("WebSocket API", "v2.0.0") +
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
