"""The pieces every tab is built of: what a section needs to know (:class:`View`), how a state word is coloured,
the line saying how fresh a payload is, and small HTML blocks (tables, KPI cards, chips, a gauge).

Every tab's section opens with what its data is worth: live, replayed, stale (the last good values, with their
age and why), no data (and why), or not yet received. The vocabulary tables below are keyed by the enums of
``models.states``, so a state word the server renames cannot silently lose its colour here; being ``StrEnum``s,
they match the plain strings the payloads carry. Cells and texts passed in are already escaped; what comes from
a payload is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from models.messages import epoch
from models.states import DataStatus, HealthDetail, HealthStatus, SourceStatus
from ui.format import badge, duration, esc, number, when

Payload = Mapping[str, Any]

#: A provider state that means "it did not answer", and how to say it.
FAILING: dict[str, str] = {SourceStatus.ERROR: "error", SourceStatus.RATE_LIMITED: "rate limited",
                           SourceStatus.CIRCUIT_OPEN: "paused after repeated failures"}

#: Badge colour per status word the payloads use. ``ok``, ``error``, ``rate_limited``, ``circuit_open`` and
#: ``missing_api_key`` are words of several enums (equal as strings), so each is listed once. Words without an
#: enum: the scheduler's job states and results, a pool's or the whole health report's ``degraded``, and the
#: sentiment labels.
KIND: dict[str, str] = {
    DataStatus.OK: "ok", DataStatus.STALE: "warn", DataStatus.PARTIAL: "warn", DataStatus.NO_DATA: "bad",
    HealthStatus.HEALTHY: "ok", HealthStatus.UNHEALTHY: "bad", HealthStatus.DISABLED: "off",
    HealthDetail.SLOW: "warn", HealthDetail.UNCHECKED: "off",
    SourceStatus.ERROR: "bad", SourceStatus.RATE_LIMITED: "warn", SourceStatus.CIRCUIT_OPEN: "bad",
    SourceStatus.MISSING_API_KEY: "off", SourceStatus.NOT_TRIED: "off", SourceStatus.WAITING: "off",
    "degraded": "warn",
    "scheduled": "ok", "published": "ok", "done": "ok", "nothing_new": "info", "running": "info", "paused": "warn",
    "bullish": "bull", "bearish": "bear", "neutral": "neutral",
}

#: How a provider's latest attempt reads in a "Sources:" line, and the colour of its dot.
SOURCE_WORDS: dict[str, tuple[str, str]] = {
    SourceStatus.OK: ("answered", "ok"), SourceStatus.NOT_TRIED: ("standby", "off"),
    SourceStatus.ERROR: ("failed", "bad"), SourceStatus.RATE_LIMITED: ("rate limited", "warn"),
    SourceStatus.WAITING: ("not due yet", "off"), SourceStatus.CIRCUIT_OPEN: ("paused", "bad"),
    SourceStatus.MISSING_API_KEY: ("no API key", "off"),
}


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


def sentiment_badge(verdict: Payload | None) -> str:
    """An article's verdict with the model that gave it on hover: a score is only as good as its model."""
    if not verdict:
        return badge("not scored yet", "off")
    label, score = verdict.get("label"), number(verdict.get("score"))
    text = f"{label} {score:+.2f}" if score is not None else str(label)
    model = esc(verdict.get("model") or "unknown")
    return f'<span title="scored by {model}">{badge(text, KIND.get(str(label), "off"))}</span>'


def wrap(html: str) -> str:
    """A section as the page shows it: inside the ``.dash`` scope the stylesheet is written for."""
    return f'<div class="dash">{html}</div>'


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
    status = data.get("status") or DataStatus.OK
    replay = data.get("data_source") == "replay"
    source = source if source is not None else data.get("source")
    origin = f" from <b>{esc(view.name(source))}</b>" if source else ""
    fetched = when(data.get("fetched_at"), view.now, missing="never")
    mode = badge("REPLAY", "info") + " recorded responses" if replay else badge("LIVE", "ok")
    failing = failing_providers(data, view)
    message = data.get("message")
    if status == DataStatus.NO_DATA:
        text = f"{badge('NO DATA', 'bad')} <b>{esc(label)}</b>: {esc(message or 'every provider failed')}"
        return _fresh_block("nodata", text, failing, open_details=True)
    if status == DataStatus.STALE:
        text = (f"{badge('STALE', 'warn')} <b>{esc(label)}</b>: the last good values{origin}, fetched {fetched}"
                f"{', failing since ' + when(data.get('stale_since'), view.now) if data.get('stale_since') else ''}.")
        return _fresh_block("stale", text, failing, open_details=True)
    if status == DataStatus.PARTIAL:
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
    interval, moment = view.intervals.get(service), epoch(timestamp)
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


def facts(rows: Sequence[tuple[str, str]]) -> str:
    """A short list of named figures (already formatted); nothing at all when there are none."""
    if not rows:
        return ""
    return '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def cut(text: object, length: int) -> str:
    """``text`` shortened at a word to at most ``length`` characters: provider errors can be pages long."""
    words = str(text)
    return words if len(words) <= length else words[: length - 1].rsplit(" ", 1)[0] + "…"


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
