"""The Chain and Providers tabs say what the data is: units as the source gives them, stale heads and gas as
stale, values at a price or not at all, and a provider without its key as missing its key."""

from __future__ import annotations

import re
import time

from models.chain import (
    BitcoinNetwork,
    ChainTvl,
    EthereumNetwork,
    ExplorersPayload,
    GasFigures,
    OnchainPayload,
    ProtocolsSection,
    RpcChain,
    RpcNode,
    RpcNodesPayload,
    Stablecoin,
    StablecoinsSection,
    TvlSection,
)
from models.monitoring import HealthPayload, PoolPayload, PoolView, ProviderHealthView
from ui.tabs.chain import render_chain
from ui.tabs.providers import health_rows, keyless, pool_rows, render_providers
from ui.widgets import View

NOW = time.time()
VIEW = View(now=NOW)


def text_of(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def iso(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(NOW - seconds_ago))


def test_blockchair_fee_is_labelled_per_byte_and_a_missing_gas_price_says_why() -> None:
    explorers = ExplorersPayload(
        bitcoin=BitcoinNetwork(source="blockchair", height=783770, suggested_fee_sat_per_byte=21.0, fetched_at=iso(2)),
        ethereum=EthereumNetwork(source="rpc_eth_publicnode", block_number=22130747, base_fee_gwei=0.631,
                                 gas_price_error="eth_gasPrice: HTTP 404: no recording", fetched_at=iso(2)),
        status="ok", timestamp=iso(1)).model_dump(mode="json")
    html = render_chain(explorers, None, None, VIEW)
    text = text_of(html)
    assert "Suggested fee, sat/byte" in text and "21" in text
    assert "not given" in text and "no recording" in html  # the reason, on hover
    assert "0 gwei" not in text


def test_stale_heads_unchecked_chains_and_healthy_nodes_read_as_such() -> None:
    nodes = {
        "rpc_base_publicnode": RpcNode(chain="base", url="https://base", reachable=True, block_number=5, lag_blocks=0,
                                       chain_id=8453, chain_id_ok=True, block_time=iso(600), head_age_seconds=600.0,
                                       head_stale=True, error="head block 5 is 600 s old"),
        "rpc_polygon_drpc": RpcNode(chain="polygon", url="https://polygon", reachable=True, block_number=7,
                                    chain_id_ok=None, head_age_seconds=2.0, head_stale=False,
                                    error="chain id not checked (HTTP 404)"),
        "rpc_eth_drpc": RpcNode(chain="ethereum", url="https://eth", reachable=True, block_number=9, lag_blocks=0,
                                chain_id=1, chain_id_ok=True, head_age_seconds=9.4, head_stale=False, healthy=True),
    }
    rpc = RpcNodesPayload(nodes=nodes, chains={
        "base": RpcChain(chain_id=8453, best_block=5, nodes=1, healthy_nodes=0, best_block_time=iso(600))},
        healthy_count=1, total_nodes=3, timestamp=iso(1)).model_dump(mode="json")
    text = text_of(render_chain(None, rpc, None, VIEW))
    assert "stale head" in text and "chain not checked" in text and "healthy" in text
    assert "10 min" in text and "9 s" in text  # the heads' ages
    assert "1 of 3 nodes healthy" in text and "0/1 healthy" in text


def test_stablecoins_at_their_price_and_stale_gas() -> None:
    fresh = {"fetched_at": iso(5)}
    onchain = OnchainPayload(
        tvl=TvlSection(**fresh, total_tvl=8.1e10, chains=[ChainTvl(name="Ethereum", tvl=5.3e10)]),
        protocols=ProtocolsSection(status="no_data", message="No data: every provider failed"),
        stablecoins=StablecoinsSection(**fresh, total_circulating_usd=1.19e11, unpriced_count=1,
                                       unpriced_circulating=1.94e10, top=[
            Stablecoin(name="Tether", symbol="USDT", circulating=6.75e10, price_usd=1.0000646,
                       circulating_usd=6.755e10, peg_type="peggedUSD"),
            Stablecoin(name="Binance USD", symbol="BUSD", circulating=1.94e10, circulating_usd=None,
                       peg_type="peggedUSD")]),
        gas={"ethereum": GasFigures(gas_price_gwei=1.5, base_fee_gwei=1.2, block_number=22130747, status="stale",
                                    age_seconds=600.0, max_age_seconds=120.0)},
        gas_errors={"bsc": "rpc_bsc_binance: HTTP 404"}, status="partial", timestamp=iso(1)).model_dump(mode="json")
    text = text_of(render_chain(None, None, onchain, VIEW))
    assert "each at its own price; 1 without a price, not counted" in text
    assert "no price" in text and "$1.0001" in text
    assert "stale" in text and "10 min old" in text and "22,130,747" in text
    assert "bsc : no gas figure" in text and "HTTP 404" in text


def test_a_provider_without_its_key_reads_missing_api_key_everywhere() -> None:
    health = HealthPayload(overall_health="healthy", healthy_count=1, unhealthy_count=0, total_providers=2,
                           disabled_count=1, timestamp=iso(1), providers={
                               "whale_alert": ProviderHealthView(status="disabled", detail="missing_api_key",
                                                                 response_time_ms=None, last_check=None,
                                                                 name="Whale Alert", category="whales"),
                               "kraken": ProviderHealthView(status="healthy", detail="ok", response_time_ms=40.0,
                                                            last_check=iso(3), name="Kraken", category="market")}
                           ).model_dump(mode="json")
    pools = PoolPayload(pools={
        "whales_whale_alert": PoolView(active_source=None, available_sources=[], health="unhealthy",
                                       sources={"whale_alert": "disabled"}),
        "market_data": PoolView(active_source="kraken", available_sources=["kraken"], health="healthy",
                                sources={"kraken": "healthy", "whale_alert": "disabled"})},
        active_sources=["kraken"], inactive_sources=["whale_alert"], failover_count=0,
        timestamp=iso(1)).model_dump(mode="json")
    whale_alert = next(row for row in health_rows(health, VIEW) if "Whale Alert" in row[1])
    assert "missing api key" in whale_alert[2] and "disabled" not in whale_alert[2]
    assert keyless(health) == {"whale_alert"}
    only_keyless, market = pool_rows(pools, VIEW, keyless(health))
    assert "missing api key" in only_keyless[2] and "unhealthy" not in only_keyless[2]
    assert 'title="missing_api_key"' in market[3] and "healthy" in market[2]
    page = text_of(render_providers(health, pools, None, VIEW))
    assert "1 missing an API key (never called)" in page and "unhealthy" not in page
