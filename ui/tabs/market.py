"""The Market tab: how fresh the prices are, how they stand against other providers (the cross-check, with its
alerts), the whole-market figures, a table of coins, the trending list, and a price chart of one coin read from the
history store (see :mod:`ui.history`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gradio as gr

from models.messages import epoch
from models.states import DataStatus, PriceState
from ui.format import NA, badge, count, esc, money, percent, price, when
from ui.history import PriceHistory, SeriesStore
from ui.widgets import Payload, View, chips, freshness, heading, kpi, sources_line, table, wrap

#: The coin the chart shows until the visitor picks another (or the market data lacks it).
DEFAULT_COIN = "bitcoin"

Coins = tuple[tuple[str, str], ...]  # (label, coin id), in market-cap order


# -- sections -------------------------------------------------------------------------------------------

def market_rows(data: Payload | None, view: View) -> list[list[str]]:
    """One row per coin: rank, coin, price, change, volume, market cap, source, cross-check; n/a where not
    given."""
    if not data or data.get("status") == DataStatus.NO_DATA:
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
                     money(caps.get(cid)), source, price_check(coin.get("check"), view)])
    return rows


def price_check(check: Payload | None, view: View) -> str:
    """A coin's cross-check in a word (confirmed by how many, disputed by how much, unconfirmed; de-peg), with the
    other providers' prices in its tooltip."""
    if not check:
        return '<span class="na" title="no cross-check has run yet">n/a</span>'
    state = check.get("state")
    if state == PriceState.CONFIRMED:
        word = badge(f"{check.get('quorum')}/{check.get('sources')} agree", "ok")
    elif state == PriceState.DISPUTED:
        word = badge(f"spread {percent(check.get('spread_pct'), signed=False)}", "bad")
    else:
        word = badge("unconfirmed", "warn")
    if check.get("depeg"):
        word += " " + badge("de-peg", "bad")
    others = [f"{view.name(o.get('source'))} {price(o.get('price'), o.get('quote_currency'))}"
              for o in check.get("others") or []]
    tip = "; ".join(others) or check.get("note") or ""
    if check.get("note") and others:
        tip += f" ({check['note']})"
    return f'<span title="{esc(tip)}">{word}</span>' if tip else word


def market_summary(data: Payload | None, view: View) -> str:
    """How fresh the prices are, and the whole-market figures."""
    top = freshness("Prices", "market_data", data, view)
    if not data or data.get("status") == DataStatus.NO_DATA:
        return top
    note = ""
    if data.get("quote_currency") == "USDT":
        note = '<p class="note">Prices and volumes are in USDT (Binance pairs), not converted to USD.</p>'
    return (top + price_alerts(data) + sources_line(data, view) + cross_check_line(data, view)
            + _global_figures(data, view) + note)


def price_alerts(data: Payload | None) -> str:
    """The prices the cross-check does not trust (providers disagreeing over the threshold, a de-peg), or
    nothing."""
    alerts = ((data or {}).get("consensus") or {}).get("alerts") or []
    if not alerts:
        return ""
    items = "".join(f"<li>{esc(a.get('message'))}</li>" for a in alerts)
    return (f'<div class="fresh nodata">{badge("PRICE CHECK", "bad")} <b>{count(len(alerts))} price'
            f'{"s" if len(alerts) > 1 else ""} not to trust</b><ul>{items}</ul></div>')


def cross_check_line(data: Payload, view: View) -> str:
    """How many prices other providers confirmed, against whom, and how old each check is."""
    consensus = data.get("consensus")
    if not consensus:
        return ""
    checks = []
    for source in consensus.get("sources") or []:
        name = esc(view.name(source.get("source")))
        if not source.get("fetched_at"):
            checks.append(f"{name} <small>no answer yet</small>")
            continue
        age = when(source.get("recorded_at") or source.get("fetched_at"), view.now)
        verb = "recorded" if source.get("recorded_at") else "fetched"
        used = "" if source.get("compared") else ", not of the moment shown"
        checks.append(f"{name} <small>{verb} {age}{used}</small>")
    counts = (f"{count(consensus.get('confirmed'))} confirmed, {count(consensus.get('disputed'))} disputed, "
              f"{count(consensus.get('unconfirmed'))} unconfirmed")
    return (f'<p class="sources">Cross-check ({counts}; over '
            f"{percent(consensus.get('threshold_pct'), signed=False)} apart is disputed): {', '.join(checks)}</p>")


def market_table(data: Payload | None, view: View) -> str:
    if not data or data.get("status") == DataStatus.NO_DATA:
        return '<p class="empty">No prices to show.</p>'
    window = "Since 00:00 UTC" if data.get("price_change_window") == "utc_day" else "24 h"
    stale = data.get("status") == DataStatus.STALE  # the last good values, dimmed under the banner saying so
    return ('<div class="stale-data">' if stale else "<div>") + heading(
        "Prices", f"{count(len(data.get('prices') or {}))} coins by market cap"
        + (" · last good values" if stale else "")) + table(
        ["#", "Coin", "Price", window, "Volume 24 h", "Market cap", "Source", "Checked"], market_rows(data, view),
        optional=(0, 4, 6), numeric=(2, 3, 4, 5), tall=True, empty="The provider answered without prices.") + "</div>"


def market_side(data: Payload | None, view: View) -> str:
    """What sits under the chart: the coins people search most."""
    if not data or data.get("status") == DataStatus.NO_DATA:
        return ""
    return _trending(data, view) or heading("Trending") + chips([], "No trending list from the providers yet.")


def _global_figures(data: Payload, view: View) -> str:
    figures = data.get("global_market")
    if not figures:
        return ""
    # The total market cap is in the page's header, above every tab.
    stale = figures.get("status") == DataStatus.STALE
    dated = figures.get("updated_at") or figures.get("fetched_at")  # the provider's own time where it gives one
    origin = f"{esc(view.name(figures.get('source')))} · {when(dated, view.now)}"
    cards = [kpi("Volume 24 h", money(figures.get("total_volume_usd")), "all coins"),
             kpi("BTC dominance", percent(figures.get("btc_dominance"), signed=False), "of the market cap"),
             kpi("ETH dominance", percent(figures.get("eth_dominance"), signed=False), "of the market cap"),
             kpi("Active coins", count(figures.get("active_cryptocurrencies")),
                 origin + (" · " + badge("stale", "warn") if stale else ""), kind="warn" if stale else "")]
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


def coin_choices(data: Payload | None) -> Coins:
    """The coins the chart may show: those the market data has a price of, in its order."""
    if not data or not data.get("prices"):
        return ()
    prices = data["prices"]
    return tuple((f"{c.get('name')} ({c.get('symbol')})", str(c["id"])) for c in data.get("coins") or []
                 if c.get("id") in prices)


def chosen_coin(coin_id: str | None, coins: Coins) -> str:
    """``coin_id`` when the market data has it, else the default coin, else the first one listed: only coins the
    market data has are charted, so a caller cannot make the server read any series it likes."""
    ids = [cid for _, cid in coins]
    if coin_id in ids:
        return str(coin_id)
    return DEFAULT_COIN if DEFAULT_COIN in ids or not ids else ids[0]


# -- the chart ------------------------------------------------------------------------------------------

def chart_data(timestamps: list[str], prices: list[float]) -> dict[str, Any]:
    """The line plot's value in the shape Gradio sends to the browser (its ``PlotData``): times as epoch
    milliseconds, which the browser shows in its own time zone."""
    rows = [[int(moment * 1000), value] for stamp, value in zip(timestamps, prices, strict=True)
            if (moment := epoch(stamp)) is not None]
    return {"columns": ["time", "price"], "data": rows, "datatypes": {"time": "temporal", "price": "quantitative"},
            "mark": "line"}


def chart_note(label: str, points: int, first: str | None, last: str | None, source: str | None,
               quote: str) -> str:
    """What the chart shows, in words: how many prices, over how long, from whom (or that there are none yet)."""
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


@dataclass(frozen=True)
class ChartFrame:
    """The chart's value, its note, and a key that changes whenever either would."""

    data: dict[str, Any] | None
    note: str
    key: str


class PriceChart:
    """The price chart of one coin: its stored series, followed from each new market update."""

    def __init__(self, store: SeriesStore | None) -> None:
        self.history = PriceHistory(store)

    async def frame(self, coin_id: str | None, coins: Coins, market: Payload | None, names: Mapping[str, str],
                    shown: str | None = None) -> ChartFrame | None:
        """The chart of ``coin_id`` (see :func:`chosen_coin`); None when its key is ``shown`` (what the visitor
        has), so an unchanged chart of 720 points is not rebuilt every tick."""
        labels = {cid: text for text, cid in coins}
        coin_id = chosen_coin(coin_id, coins)
        label = labels.get(coin_id, coin_id)
        series = await self.history.series(coin_id, market)
        key = f"{coin_id}|{len(series.prices)}|{series.timestamps[-1] if series.timestamps else ''}"
        if key == shown:
            return None
        stamps, prices = list(series.timestamps), list(series.prices)
        quote = str((market or {}).get("quote_currency") or "USD")
        source = names.get(str(series.sources[-1]), series.sources[-1]) if series.sources else None
        text = chart_note(label, len(prices), stamps[0] if stamps else None, stamps[-1] if stamps else None,
                          str(source) if source else None, quote)
        return ChartFrame(chart_data(stamps, prices) if prices else None, text, key)


# -- the tab --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MarketTab:
    """The components of the tab besides its HTML sections: the refresh and the coin picker update them."""

    coin: gr.Dropdown
    chart: gr.LinePlot
    note: gr.HTML


def layout(html: dict[str, gr.HTML]) -> MarketTab:
    """The tab: the summary across the top, the table on the left, the chart and trending list on the right."""
    with gr.Tab("Market", id="market", elem_id="tab-market"):
        html["market_top"] = gr.HTML(js_on_load=None, elem_id="market-top")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                html["market_table"] = gr.HTML(js_on_load=None, elem_id="market-table")
            with gr.Column(scale=1, min_width=280):
                coin = gr.Dropdown(choices=[("Bitcoin (BTC)", DEFAULT_COIN)], value=DEFAULT_COIN,
                                   label="Price history", elem_id="coin-picker", filterable=True)
                chart = gr.LinePlot(x="time", y="price", x_title="time", y_title="price",
                                    y_axis_format="$,.6~g", height=300, show_label=False, elem_id="price-chart")
                note = gr.HTML(js_on_load=None, elem_id="chart-note")
                html["market_side"] = gr.HTML(js_on_load=None, elem_id="market-side")
    return MarketTab(coin, chart, note)
