"""The Whales tab: transactions over the alert threshold, what they add up to, the busiest wallets, what the
sources looked at, and the prices the amounts were valued at (with where they came from and when)."""

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
            amount_text = f"{_amount(amount)} {esc(tx.get('symbol') or '')}"
            if tx.get("amount_kind") == "total_output":
                amount_text += ' <span class="note" title="the source gives no addresses to tell change apart">' \
                               "total output, change included</span>"
            elif (total := number(tx.get("total_output"))) is not None and total > amount:
                amount_text += f' <span class="note">of {_amount(total)} out, change excluded</span>'
        route = f"{esc(short_address(tx.get('from')))} → {esc(short_address(tx.get('to')))}"
        tx_hash = str(tx.get("hash") or "")
        rows.append([when(tx.get("timestamp"), view.now, missing="unknown"), esc(tx.get("chain") or ""),
                     f"<b>{money(tx.get('value'))}</b>", amount_text, route,
                     link(tx.get("explorer_url"), short_address(tx_hash)), esc(view.name(tx.get("source")))])
    return rows


def _amount(amount: float) -> str:
    return f"{amount:,.0f}" if abs(amount) >= 1000 else f"{amount:,.4g}"


def coverage_line(data: Payload, view: View) -> str:
    """What each source looked at in the latest run, in words."""
    parts = []
    for name, label in (("bitcoin", "Bitcoin"), ("ethereum", "Ethereum"), ("whale_alert", "Whale Alert")):
        cov = (data.get("coverage") or {}).get(name)
        if not isinstance(cov, dict):
            continue
        if cov.get("status") != "ok":
            parts.append(f"{label}: {esc(cov.get('note') or cov.get('status') or '')}")
            continue
        seen = number(cov.get("transactions_seen"))
        noun = "transaction" if seen == 1 else "transactions"
        text = f"{label}: {count(seen)} {noun} from {esc(view.name(cov.get('source')))}"
        if cov.get("blocks_scanned") is not None:
            blocks = (f"blocks {integer_text(cov.get('first_block'))}–{integer_text(cov.get('last_block'))}"
                      if cov.get("blocks_scanned") else "no new block")
            skipped = number(cov.get("blocks_skipped"))
            text += f" ({blocks}{f', {skipped:,.0f} skipped' if skipped else ''})"
            if cov.get("token_logs") == "read":
                text += f", {count(cov.get('token_transfers_seen'))} USDT/USDC transfers"
            elif cov.get("token_logs") == "not_in_bloom":
                text += ", no USDT/USDC log in these blocks"
        parts.append(text)
    return f'<p class="note">Looked at: {"; ".join(parts)}.</p>' if parts else ""


def integer_text(value: object) -> str:
    number_value = number(value)
    return f"{number_value:,.0f}" if number_value is not None else NA


def prices_note(data: Payload, view: View) -> str:
    """The prices the amounts were valued at: each with its source and time (a stablecoin at $1 says why)."""
    detail = data.get("prices_detail") or {}
    parts = []
    for symbol, value in (data.get("prices_used") or {}).items():
        info = detail.get(symbol) if isinstance(detail.get(symbol), dict) else {}
        source = info.get("source") if info else None
        if source == "usd_peg":
            parts.append(f"{esc(symbol)} at $1 (a USD stablecoin; no market price)")
            continue
        origin = f" from {esc(str(source).removeprefix('market_data/'))}" if source else ""
        stamp = info.get("data_time") or info.get("fetched_at") if info else None
        at = f" of {when(stamp, view.now)}" if stamp else ""
        parts.append(f"{esc(symbol)} at {price(value)}{origin}{at}")
    return ", ".join(parts)


def render_whales(data: Payload | None, view: View) -> str:
    top = freshness("Large transactions", "whale_tracking", data, view)
    if not data or data.get("status") == DataStatus.NO_DATA:
        return top
    threshold = money(data.get("alert_threshold"))
    window = duration(data.get("window_seconds"))
    rows = whale_rows(data, view)
    valued = prices_note(data, view)
    note = (f'<p class="note">Transactions over {threshold} in the last {window}'
            f'{f"; amounts valued with {valued} (market_data)" if valued else ""}.</p>') + coverage_line(data, view)
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
            [[esc(short_address(w.get("address"))) + _also(w.get("addresses")), esc(w.get("chain") or ""),
              money(w.get("volume_usd")), count(w.get("transactions"))] for w in wallets], numeric=(2, 3))
    return (f'{top}{sources_line(data, view)}<div class="kpis small">{"".join(cards)}</div>{note}{listing}'
            f"{wallet_table}")


def _also(addresses: object) -> str:
    """A wallet's other addresses (spent together with the one shown), as a hint."""
    if not isinstance(addresses, list) or not addresses:
        return ""
    listed = ", ".join(esc(str(a)) for a in addresses[:20])
    return f' <span class="note" title="{listed}">+{len(addresses)} address{"es" if len(addresses) > 1 else ""}</span>'


def layout(html: dict[str, gr.HTML]) -> None:
    with gr.Tab("Whales", id="whales", elem_id="tab-whales"):
        html["whales"] = gr.HTML(js_on_load=None, elem_id="whales")
