"""The Chain tab: the Bitcoin and Ethereum networks as explorers see them, the RPC nodes we ask directly, and
on-chain figures (DeFi value locked, protocols, stablecoins, gas)."""

from __future__ import annotations

import gradio as gr

from models.states import DataStatus
from ui.format import NA, badge, count, duration, esc, integer, milliseconds, money, number, percent, si, when
from ui.widgets import Payload, View, checked, chips, cut, facts, freshness, heading, kpi, table, waiting


def render_chain(explorers: Payload | None, rpc: Payload | None, onchain: Payload | None, view: View) -> str:
    return (heading("Explorers") + _explorers(explorers, view) + heading("RPC nodes") + _rpc(rpc, view)
            + heading("On-chain") + _onchain(onchain, view))


def _explorers(data: Payload | None, view: View) -> str:
    if data is None:
        return waiting("Explorers", "explorers", view)
    btc, eth = data.get("bitcoin") or {}, data.get("ethereum") or {}
    return (f'<div class="cols">'
            f'<div class="card">{freshness("Bitcoin", "explorers", btc, view)}{facts(_bitcoin(btc, view))}</div>'
            f'<div class="card">{freshness("Ethereum", "explorers", eth, view)}{facts(_ethereum(eth, view))}'
            f"</div></div>")


def _bitcoin(btc: Payload, view: View) -> list[tuple[str, str]]:
    if btc.get("status") == DataStatus.NO_DATA:
        return []
    fees = btc.get("fees") or {}
    fee_text = " · ".join(f"{esc(k.replace('_', ' '))} {number(v):g}" for k, v in fees.items()
                          if number(v) is not None) or NA
    mempool = (f"{count(btc.get('mempool_count'))} txs, {si(btc.get('mempool_vsize'), 'vB')}"
               if btc.get("mempool_count") is not None else NA)
    rows = [("Block height", integer(btc.get("height"))), ("Fees, sat/vB", fee_text)]
    per_byte = number(btc.get("suggested_fee_sat_per_byte"))
    if per_byte is not None:  # Blockchair's: per byte of the whole transaction, not per vbyte
        rows.append(("Suggested fee, sat/byte", f"{per_byte:g}"))
    return [*rows, ("Mempool", mempool), ("Hashrate", si(btc.get("hashrate"), "H/s")),
            ("Difficulty", si(btc.get("difficulty"), "")),
            ("Last block", when(btc.get("last_block_time"), view.now, missing="n/a"))]


def _ethereum(eth: Payload, view: View) -> list[tuple[str, str]]:
    if eth.get("status") == DataStatus.NO_DATA:
        return []
    oracle = eth.get("gas_oracle") or {}
    return [("Latest block", integer(eth.get("block_number"))),
            ("Gas price", _gwei(eth.get("gas_price_gwei"), eth.get("gas_price_error"))),
            ("Base fee", _gwei(eth.get("base_fee_gwei"))),
            ("Gas oracle", " · ".join(f"{esc(k)} {_gwei(v)}" for k, v in oracle.items()) or NA),
            ("Last block", when(eth.get("last_block_time"), view.now, missing="n/a"))]


def _gwei(value: object, why_missing: object = None) -> str:
    amount = number(value)
    if amount is None:
        return f'<span class="na" title="{esc(why_missing)}">not given</span>' if why_missing else NA
    return f"{amount:.3g} gwei" if amount < 10 else f"{amount:,.1f} gwei"


def _node_state(node: Payload) -> str:
    if not node.get("reachable"):
        return badge("down", "bad")
    if node.get("chain_id_ok") is False:
        return badge("wrong chain", "bad")
    if node.get("head_stale"):
        return badge("stale head", "warn")
    if node.get("chain_id_ok") is None:
        return badge("chain not checked", "warn")
    return badge("healthy", "ok") if node.get("healthy") else badge("behind", "warn")


def _rpc(data: Payload | None, view: View) -> str:
    top = checked("RPC nodes", "rpc_nodes", data, view)
    if data is None:
        return top
    chains = data.get("chains") or {}
    summary = chips([f"<b>{esc(name)}</b> {c.get('healthy_nodes')}/{c.get('nodes')} healthy · block "
                     f"{integer(c.get('best_block'))}"
                     + (f" ({when(c.get('best_block_time'), view.now)})" if c.get("best_block_time") else "")
                     for name, c in chains.items()], "No chains declared.")
    rows = []
    for node_id, node in sorted((data.get("nodes") or {}).items(), key=lambda kv: (kv[1].get("chain", ""), kv[0])):
        lag = node.get("lag_blocks")
        rows.append([esc(node.get("chain") or ""), f'<span title="{esc(node.get("url"))}">{esc(view.name(node_id))}'
                     f"</span>", _node_state(node), milliseconds(node.get("latency_ms")),
                     integer(node.get("block_number")), _age(node.get("head_age_seconds")),
                     (f"{lag} behind" if lag else "in sync") if lag is not None else NA,
                     f'<span class="err">{esc(cut(node.get("error"), 120))}</span>' if node.get("error") else ""])
    nodes = table(["Chain", "Node", "State", "Latency", "Block", "Head age", "Lag", "Error"], rows,
                  optional=(0, 4, 7), numeric=(3, 4, 5, 6), empty="No nodes declared.")
    healthy = (f'<p class="note">{data.get("healthy_count")} of {data.get("total_nodes")} nodes healthy: on the right '
               "chain, in step with their peers, and with a head block younger than their chain allows.</p>")
    return top + healthy + summary + nodes


def _age(seconds: object) -> str:
    """A head's age as read (whole seconds); in replay, as it was when captured."""
    value = number(seconds)
    return duration(round(value)) if value is not None else NA


def _onchain(data: Payload | None, view: View) -> str:
    if data is None:
        return waiting("On-chain figures", "onchain", view)
    tvl, protocols, stable = data.get("tvl") or {}, data.get("protocols") or {}, data.get("stablecoins") or {}
    tvl_block = freshness("Total value locked", "onchain", tvl, view)
    if tvl.get("status") != DataStatus.NO_DATA:
        tvl_block += kpi("DeFi TVL", money(tvl.get("total_tvl")), "all chains")
        tvl_block += table(["Chain", "TVL", "Token"],
                           [[esc(c.get("name")), money(c.get("tvl")), esc(c.get("token_symbol") or "")]
                            for c in (tvl.get("chains") or [])[:10]], numeric=(1,), empty="No chains listed.")
    proto_block = freshness("DeFi protocols", "onchain", protocols, view)
    if protocols.get("status") != DataStatus.NO_DATA:
        proto_block += table(["Protocol", "Category", "TVL", "1 d", "7 d"],
                             [[esc(p.get("name")), esc(p.get("category") or ""), money(p.get("tvl")),
                               percent(p.get("change_1d")), percent(p.get("change_7d"))]
                              for p in (protocols.get("top") or [])[:10]],
                             optional=(1, 4), numeric=(2, 3, 4), empty="No protocols listed.")
    stable_block = freshness("Stablecoins", "onchain", stable, view)
    if stable.get("status") != DataStatus.NO_DATA:
        unpriced = stable.get("unpriced_count") or 0
        stable_block += kpi("Stablecoins in circulation", money(stable.get("total_circulating_usd")),
                            "each at its own price" + (f"; {unpriced} without a price, not counted" if unpriced
                                                       else ""))
        stable_block += table(["Stablecoin", "Value", "Price", "Supply", "Peg"],
                              [[f'{esc(s.get("name"))} <span class="sym">{esc(s.get("symbol"))}</span>',
                                money(s.get("circulating_usd")) if s.get("circulating_usd") is not None
                                else '<span class="na">no price</span>',
                                f"${number(s.get('price_usd')):.4f}" if number(s.get("price_usd")) is not None else NA,
                                si(s.get("circulating"), ""), esc(s.get("peg_type") or "")]
                               for s in (stable.get("top") or [])[:10]], numeric=(1, 2, 3), optional=(3, 4),
                              empty="No stablecoins listed.")
    gas = data.get("gas") or {}
    gas_line = chips([f"<b>{esc(chain)}</b> gas {_gwei(g.get('gas_price_gwei'), g.get('gas_price_error'))}, base "
                      f"fee {_gwei(g.get('base_fee_gwei'))} · block {integer(g.get('block_number'))}"
                      + (f" {badge('stale', 'warn')}" if g.get("status") == DataStatus.STALE else "")
                      + (f' <span class="opt">({_age(g.get("age_seconds"))} old)</span>'
                         if g.get("age_seconds") is not None else "")
                      for chain, g in gas.items()], "No gas figures.")
    gas_errors = data.get("gas_errors") or {}
    if gas_errors:
        gas_line += "".join(f'<p class="note"><b>{esc(chain)}</b>: no gas figure '
                            f'<span class="err">({esc(cut(why, 160))})</span></p>' for chain, why in gas_errors.items())
    return (f'<div class="cols"><div class="card">{tvl_block}</div><div class="card">{proto_block}</div></div>'
            f'<div class="cols"><div class="card">{stable_block}</div><div class="card">{heading("Gas")}'
            f"{gas_line}</div></div>")


def layout(html: dict[str, gr.HTML]) -> None:
    with gr.Tab("Chain", id="chain", elem_id="tab-chain"):
        html["chain"] = gr.HTML(js_on_load=None, elem_id="chain")
