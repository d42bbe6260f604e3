"""The Whales tab: transactions over the alert threshold, what they add up to, and the busiest wallets."""

from __future__ import annotations

import gradio as gr

from models.states import DataStatus
from ui.format import NA, count, duration, esc, link, money, number, price, short_address, when
from ui.widgets import Payload, View, freshness, heading, kpi, sources_line, table


def whale_rows(data: Payload | None, view: View) -> list[list[str]]:
    if not data or data.get("status") == DataStatus.NO_DATA:
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
    if not data or data.get("status") == DataStatus.NO_DATA:
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


def layout(html: dict[str, gr.HTML]) -> None:
    with gr.Tab("Whales", id="whales", elem_id="tab-whales"):
        html["whales"] = gr.HTML(js_on_load=None, elem_id="whales")
