"""Formatting for people: money, percentages, counts and times as short HTML fragments, every value escaped.

A value a provider did not give is shown as ``n/a`` (never 0); a time is a ``<time data-rel>`` element whose
text the page's script keeps reading "12 s ago" or "in 3 s", so a rendered fragment stays the same until the
data behind it changes, and the server sends it again only then.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

#: The one ISO-8601 reader of the server (a time without an offset is UTC; None for anything else), re-exported
#: so a formatter's caller can read times the way the formatters do.
from models.messages import epoch as epoch

#: A value the provider does not give, said in words.
NA = '<span class="na" title="not given by the provider">n/a</span>'


def esc(value: object) -> str:
    """Text from anywhere (titles, errors and names come from the internet) made inert in HTML."""
    return html.escape(str(value), quote=True)


def number(value: object) -> float | None:
    """A finite float, or None for anything else (None, NaN, a string from a changed payload...)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    as_float = float(value)
    return as_float if math.isfinite(as_float) else None


def when(timestamp: object, now: float, missing: str = "never", upcoming: bool = False,
         every: float | None = None) -> str:
    """A ``<time>`` element, shown as "12 s ago" by the page's script, with the exact UTC time on hover.

    The text sent is the clock time ("06:04:57 UTC"; with the date when it is not within the day), which does
    not change from one refresh to the next: the page's script turns it into words, and keeps them current.
    ``upcoming`` marks a planned time (a job's next run): once passed, it reads "due" rather than "3 s ago",
    unless the job repeats ``every`` so many seconds: then the page rolls it on to the next run.
    """
    moment = epoch(timestamp)
    if moment is None:
        return f'<span class="na">{esc(missing)}</span>'
    at = datetime.fromtimestamp(moment, UTC)
    exact = at.strftime("%Y-%m-%d %H:%M:%S UTC")
    shown = at.strftime("%H:%M:%S UTC") if abs(now - moment) < 20 * 3600 else at.strftime("%Y-%m-%d %H:%M UTC")
    kind = "upcoming" if upcoming else "past"
    period = number(every)
    repeat = f' data-every="{period:g}"' if upcoming and period and period > 0 else ""
    return (f'<time data-rel="{kind}"{repeat} datetime="{at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]}Z" '
            f'title="{exact}">{shown}</time>')


def duration(seconds: object) -> str:
    value = number(seconds)
    if value is None:
        return NA
    if value < 60:
        return f"{value:g} s"
    if value < 3600:
        return f"{value / 60:g} min"
    return f"{value / 3600:g} h"


def _scaled(value: float, units: Iterable[tuple[str, float]]) -> str | None:
    for unit, size in units:
        if abs(value) >= size:
            return f"{value / size:,.2f}{unit}"
    return None


_BIG = (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3))


def money(value: object, quote: str | None = "USD") -> str:
    """An amount of money, shortened: ``$2.62T``, ``$95.13B``, ``$4,210.55``."""
    amount = number(value)
    if amount is None:
        return NA
    text = _scaled(amount, _BIG[:3]) or f"{amount:,.2f}"
    return _with_currency(text, quote)


def price(value: object, quote: str | None = "USD") -> str:
    """A unit price: cents from a dollar up (``$79,847.00``), four significant digits below (``$0.9998``)."""
    amount = number(value)
    if amount is None:
        return NA
    if abs(amount) >= 1:
        text = f"{amount:,.2f}"
    elif amount == 0:
        text = "0"
    else:
        text = f"{amount:.4g}" if abs(amount) >= 1e-4 else f"{amount:.3e}"
    return _with_currency(text, quote)


def _with_currency(text: str, quote: str | None) -> str:
    if quote in (None, "USD"):
        return f"-${text[1:]}" if text.startswith("-") else f"${text}"
    return f"{text} {esc(quote)}"


def percent(value: object, signed: bool = True) -> str:
    """A percentage, coloured by direction when signed: ``<span class="up">+2.31%</span>``."""
    amount = number(value)
    if amount is None:
        return NA
    if not signed:
        return f"{amount:.1f}%"
    direction = "up" if amount > 0 else "down" if amount < 0 else "flat"
    arrow = "▲" if amount > 0 else "▼" if amount < 0 else ""
    return f'<span class="{direction}">{arrow}{abs(amount):.2f}%</span>'


def integer(value: object) -> str:
    """A whole number in full, as a block height is read: ``121,830,774``."""
    amount = number(value)
    return NA if amount is None else f"{amount:,.0f}"


def milliseconds(value: object) -> str:
    amount = number(value)
    if amount is None:
        return NA
    return "<1 ms" if amount < 1 else f"{amount:,.0f} ms"


def count(value: object) -> str:
    """A count: ``1,234`` up to a million, then ``1.23M``."""
    amount = number(value)
    if amount is None:
        return NA
    return _scaled(amount, _BIG[:3]) or f"{amount:,.0f}"


def si(value: object, unit: str) -> str:
    """A physical quantity with an SI prefix: hashrate ``812.35 EH/s``."""
    amount = number(value)
    if amount is None:
        return NA
    prefixes = (("Z", 1e21), ("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3))
    for prefix, size in prefixes:
        if abs(amount) >= size:
            return f"{amount / size:,.2f} {prefix}{esc(unit)}"
    return f"{amount:,.2f} {esc(unit)}"


def safe_url(url: object) -> str | None:
    """``url`` if it is an absolute http(s) URL; anything else (``javascript:``...) is never made a link."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def link(url: object, text: str) -> str:
    """An escaped link opening in a new tab; plain escaped text when the URL is not a safe web address."""
    target = safe_url(url)
    if target is None:
        return esc(text)
    return f'<a href="{esc(target)}" target="_blank" rel="noopener noreferrer nofollow">{esc(text)}</a>'


def short_address(address: object) -> str:
    if not isinstance(address, str) or not address:
        return "unknown"
    return address if len(address) <= 14 else f"{address[:8]}…{address[-6:]}"


def badge(text: str, kind: str) -> str:
    """A small coloured label; ``kind`` is one of the stylesheet's: ok, warn, bad, off, info, bull, bear, neutral."""
    return f'<span class="badge {esc(kind)}">{esc(text)}</span>'
