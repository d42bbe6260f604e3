"""DefiLlama and gas normalisers against recorded bodies, and the onchain payload: sections, pace, freshness."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from config import Settings
from services.cadence import Cadence, PacedSection
from services.onchain import DEFILLAMA_MAX_AGE, GAS_CHAINS, OnchainService, build
from sources.errors import AnswerError, ProviderBadResponse
from sources.fetcher import Fetcher
from sources.http import http_client
from sources.pools import Pool
from sources.providers.onchain import DefiLlama, DefiLlamaStablecoins
from sources.providers.rpc import nodes_for, normalize_gas, rpc_result
from sources.replay import RECORDED_AT
from tests.support.context import build_context
from tests.support.recordings import recorded, routes_transport
from tests.support.recordings import recorded_json as body

CHAINS = "https://api.llama.fi/v2/chains"
PROTOCOLS = "https://api.llama.fi/protocols"
STABLECOINS = "https://stablecoins.llama.fi/stablecoins"



def ok(name: str) -> httpx.Response:
    return httpx.Response(200, content=recorded(name), headers={"content-type": "application/json"})


# -- normalisers ----------------------------------------------------------------------------------------

def test_chains_recorded() -> None:
    raw = body("defillama/v2-chains.json")
    snapshot = DefiLlama.normalize_chains(raw)
    assert len(snapshot.chains) == 20
    top = snapshot.chains[0]
    assert (top.name, top.tvl, top.token_symbol) == ("Ethereum", 52875523609.47606, "ETH")
    assert snapshot.total == pytest.approx(sum(c["tvl"] for c in raw))
    assert [c.tvl for c in snapshot.chains] == sorted((c.tvl for c in snapshot.chains), reverse=True)
    # a chain DefiLlama lists without a token symbol keeps none (null in the recording)
    everything = DefiLlama.normalize_chains(raw, limit=500).chains
    assert any(c.token_symbol is None for c in everything) and len(everything) == len(raw)


def test_chains_error_body_and_changed_shape() -> None:
    with pytest.raises(AnswerError):
        DefiLlama.normalize_chains({"message": "Internal server error"})
    with pytest.raises(AnswerError, match="no chain"):
        DefiLlama.normalize_chains([{"name": "X", "tvl": "1e9"}, "junk"])
    snapshot = DefiLlama.normalize_chains([{"name": "A", "tvl": 5}, {"tvl": 7}, {"name": "B", "tvl": None}])
    assert [c.name for c in snapshot.chains] == ["A"] and snapshot.total == 5


def test_protocols_recorded() -> None:
    [uniswap] = DefiLlama.normalize_protocols(body("defillama/protocols.json"))
    assert (uniswap.name, uniswap.category, uniswap.chains) == ("Uniswap", "Dexes", ["Ethereum"])
    assert uniswap.tvl == 4294270703.8317223
    assert uniswap.change_1d == 4.591169165988049 and uniswap.change_7d == -11.268195007383326


def test_protocols_leave_exchanges_out() -> None:
    cex = body("defillama/protocols-binance-cex-2022.json")
    with pytest.raises(AnswerError, match="no DeFi protocol"):
        DefiLlama.normalize_protocols(cex)
    both = [*cex, *body("defillama/protocols.json")]
    assert [p.name for p in DefiLlama.normalize_protocols(both)] == ["Uniswap"]


def test_protocols_error_body_and_changed_shape() -> None:
    with pytest.raises(AnswerError):
        DefiLlama.normalize_protocols({"error": "rate limited"})
    [item] = body("defillama/protocols.json")
    changed = [{**item, "change_1d": None, "change_7d": "n/a", "chains": "Ethereum"},
               {**item, "name": "No TVL", "tvl": None}, {"name": "Small", "tvl": 10, "category": ["?"]}]
    first, second = DefiLlama.normalize_protocols(changed)
    assert first.change_1d is None and first.change_7d is None and first.chains == []
    assert (second.name, second.category, second.change_1d) == ("Small", None, None)
    assert len(DefiLlama.normalize_protocols(changed, limit=1)) == 1


def test_protocols_top_by_tvl_ties_in_listed_order() -> None:
    [item] = body("defillama/protocols.json")
    listed = [{**item, "name": f"P{i}", "tvl": tvl} for i, tvl in enumerate([5.0, 9.0, 7.0, 9.0, 1.0, 7.0])]
    assert [p.name for p in DefiLlama.normalize_protocols(listed, limit=4)] == ["P1", "P3", "P2", "P5"]
    assert [p.tvl for p in DefiLlama.normalize_protocols(listed, limit=10)] == [9.0, 9.0, 7.0, 7.0, 5.0, 1.0]


def test_stablecoins_documented_format() -> None:
    """Each coin's supply is valued at the price DefiLlama gives beside it, not at $1; a coin without a price
    (BUSD here) is not valued at all, and counted apart."""
    snapshot = DefiLlamaStablecoins.normalize_stablecoins(body("defillama/stablecoins.json"))
    assert [c.symbol for c in snapshot.top] == ["USDT", "USDC", "BUSD"]
    usdt, usdc, busd = snapshot.top
    assert usdt.circulating_usd is not None and usdc.circulating_usd is not None
    assert usdt.circulating == 67543810674.76325 and usdt.price_usd == 1.0000646 and usdt.peg_type == "peggedUSD"
    assert usdt.circulating_usd == pytest.approx(67543810674.76325 * 1.0000646)
    assert usdc.circulating_usd == pytest.approx(51484074698.56335 * 0.99995875)
    assert busd.price_usd is None and busd.circulating_usd is None and busd.circulating == 19387083553.21001
    assert snapshot.total_circulating_usd == pytest.approx(usdt.circulating_usd + usdc.circulating_usd)
    assert (snapshot.unpriced_count, snapshot.unpriced_circulating) == (1, 19387083553.21001)


def test_a_de_pegged_coin_is_worth_its_price() -> None:
    coin = {"name": "TerraUSD", "symbol": "UST", "pegType": "peggedUSD", "circulating": {"peggedUSD": 1e9},
            "price": 0.1}
    snapshot = DefiLlamaStablecoins.normalize_stablecoins({"peggedAssets": [coin, {**coin, "symbol": "Z", "price": 0}]})
    assert snapshot.total_circulating_usd == pytest.approx(1e8)  # not 1e9: at its price, not at its peg
    assert snapshot.unpriced_count == 1  # a 0 price is no price


def test_stablecoins_error_body_and_changed_shape() -> None:
    with pytest.raises(AnswerError):
        DefiLlamaStablecoins.normalize_stablecoins([])
    with pytest.raises(AnswerError):
        DefiLlamaStablecoins.normalize_stablecoins({"message": "Too many requests"})
    euro = {"name": "Euro Coin", "symbol": "EUROC", "pegType": "peggedEUR", "circulating": {"peggedEUR": 5e7}}
    broken = {"name": "X", "symbol": "X", "pegType": "peggedUSD", "circulating": 12}
    with pytest.raises(AnswerError, match="no USD stablecoin"):
        DefiLlamaStablecoins.normalize_stablecoins({"peggedAssets": [euro, broken]})


def test_gas_recorded() -> None:
    block = rpc_result(body("rpc/eth_getBlockByNumber-ethereum-latest.json"))  # mainnet, 2025-03-26
    reading = normalize_gas(rpc_result(body("ethereum/eth_gasPrice.json")), block)
    assert reading.gas_price_gwei == pytest.approx(1.671530653)
    assert reading.base_fee_gwei == pytest.approx(0.631063844) and reading.block_number == 22130747
    assert reading.block_time == "2025-03-26T11:21:47.000Z"
    # the hive test chain's block is dated 540 s after 1970: no time is read from it, never a 1970 date
    test_chain = normalize_gas("0x1", rpc_result(body("ethereum/eth_getBlockByNumber-latest-full.json")))
    assert test_chain.block_number == 0x36 and test_chain.block_time is None


def test_gas_without_a_gas_price_keeps_the_base_fee() -> None:
    block = rpc_result(body("rpc/eth_getBlockByNumber-base-latest.json"))
    reading = normalize_gas(None, block, gas_price_error="HTTP 404")
    assert reading.gas_price_gwei is None and reading.gas_price_error == "eth_gasPrice: HTTP 404"
    assert reading.base_fee_gwei == 0.005 and reading.block_number == 50546271
    with pytest.raises(AnswerError, match="no gas price"):  # a legacy block and no price: nothing to show
        normalize_gas(None, rpc_result(body("rpc/eth_getBlockByNumber-optimism-latest.json")), gas_price_error="x")


def test_gas_error_bodies_and_changed_shape() -> None:
    with pytest.raises(AnswerError):
        normalize_gas("0x1", rpc_result(body("ethereum/eth_getBlockByNumber-notfound.json")))
    with pytest.raises(AnswerError):
        normalize_gas(1000, {"number": "0x1"})
    # a block from before EIP-1559 (or a chain without it) has no base fee: it stays absent
    legacy = normalize_gas("0x3b9aca00", {"number": "0x10"})
    assert legacy.gas_price_gwei == 1 and legacy.base_fee_gwei is None


# -- the service ----------------------------------------------------------------------------------------

#: The replayed mainnet block 22130747 (made 2025-03-26T11:21:47Z), and when its answer was captured.
ETH_BLOCK = "rpc/eth_getBlockByNumber-ethereum-latest.json"
CAPTURED = "2025-03-26T11:21:56Z"


def rpc_node(gas_price: str = "0x63a1889d", captured: str = CAPTURED) -> Any:
    """A node answering the mainnet block (with a test chain's gas price: only its format matters), saying when the
    answer was captured, as replay does, so the block's age counts from then."""
    block = rpc_result(body(ETH_BLOCK))

    def handle(request: httpx.Request) -> httpx.Response:
        call = json.loads(request.content)
        result = gas_price if call["method"] == "eth_gasPrice" else block
        assert call["method"] in ("eth_gasPrice", "eth_getBlockByNumber")
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": call["id"], "result": result},
                              headers={RECORDED_AT: captured})
    return handle


def llama_routes() -> dict[str, Any]:
    routes: dict[str, Any] = {CHAINS: ok("defillama/v2-chains.json"), PROTOCOLS: ok("defillama/protocols.json"),
                              STABLECOINS: ok("defillama/stablecoins.json")}
    for chain in GAS_CHAINS:
        routes[nodes_for(chain)[0].base_url] = rpc_node()
    return routes


def onchain_service(routes: dict[str, Any], *, refresh: float = 300.0) -> tuple[OnchainService, Fetcher]:
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(routes)), retries=0, backoff=0.001,
                      budgets=False, replay=True)
    llama, stables = DefiLlama(), DefiLlamaStablecoins()
    service = OnchainService(
        tvl=PacedSection(Pool("onchain_tvl", [llama], fetcher), lambda p: p.fetch_tvl(fetcher, 0.0),
                         Cadence(refresh), data_source="live"),
        protocols=PacedSection(Pool("onchain_protocols", [llama], fetcher),
                               lambda p: p.fetch_protocols(fetcher, 10, 0.0), Cadence(refresh),
                               data_source="live"),
        stablecoins=PacedSection(Pool("onchain_stablecoins", [stables], fetcher),
                                 lambda p: p.fetch_stablecoins(fetcher, 10, 0.0), Cadence(refresh),
                                 data_source="live"),
        gas_pools={chain: Pool(f"gas_{chain}", nodes_for(chain)[:1], fetcher) for chain in GAS_CHAINS},
        fetcher=fetcher, data_source="live", max_wait=0.0)
    return service, fetcher


async def test_every_section_answers() -> None:
    service, _ = onchain_service(llama_routes())
    payload = await service.collect()
    json.dumps(payload)
    assert payload["status"] == "ok" and payload["timestamp"].endswith("Z")
    tvl = payload["tvl"]
    assert tvl["status"] == "ok" and tvl["source"] == "defillama" and tvl["chains"][0]["name"] == "Ethereum"
    assert tvl["total_tvl"] > tvl["chains"][0]["tvl"] and tvl["providers"]["defillama"]["status"] == "ok"
    assert payload["protocols"]["top"][0] == {"name": "Uniswap", "category": "Dexes", "tvl": 4294270703.8317223,
                                              "change_1d": 4.591169165988049, "change_7d": -11.268195007383326,
                                              "chains": ["Ethereum"]}
    assert payload["stablecoins"]["top"][0]["symbol"] == "USDT"
    assert payload["stablecoins"]["source"] == "defillama_stablecoins"
    assert set(payload["gas"]) == set(GAS_CHAINS)
    eth = payload["gas"]["ethereum"]
    assert (eth["gas_price_gwei"], eth["base_fee_gwei"]) == (pytest.approx(1.671530653), pytest.approx(0.631063844))
    assert eth["source"] == "rpc_eth_publicnode" and eth["block_number"] == 22130747 and eth["fetched_at"].endswith("Z")
    # dated by its block: 9 s old when captured, of the 120 s an Ethereum head may be
    assert eth["status"] == "ok" and eth["age_seconds"] == 9 and eth["max_age_seconds"] == 120
    assert eth["block_time"] == "2025-03-26T11:21:47.000Z" and eth["recorded_at"] == "2025-03-26T11:21:56.000Z"
    assert payload["gas_errors"] == {}
    assert payload["stablecoins"]["unpriced_count"] == 1 and "without a price" in payload["stablecoins"]["message"]


async def test_a_stuck_node_publishes_its_gas_as_stale() -> None:
    """A node that answers, but from a block minutes old, gives yesterday's gas: shown, but stale, not ok."""
    routes = llama_routes()
    routes[nodes_for("ethereum")[0].base_url] = rpc_node(captured="2025-03-26T11:31:47Z")  # 600 s after the block
    service, _ = onchain_service(routes)
    payload = await service.collect()
    eth = payload["gas"]["ethereum"]
    assert eth["status"] == "stale" and eth["age_seconds"] == 600 and "over the 120 s" in eth["message"]
    assert eth["gas_price_gwei"] == pytest.approx(1.671530653)  # still shown, with its age
    assert payload["status"] == "stale"


async def test_sections_are_fetched_at_their_own_pace() -> None:
    service, fetcher = onchain_service(llama_routes())
    await service.collect()
    again = await service.collect()
    assert fetcher.runtime("defillama").health.requests == 2  # chains + protocols, once each
    assert fetcher.runtime("rpc_eth_publicnode").health.requests == 4  # gas is read every run
    assert again["tvl"]["status"] == "ok" and again["tvl"]["age_seconds"] >= 0
    assert again["tvl"]["chains"] and again["protocols"]["top"]

    service, fetcher = onchain_service(llama_routes(), refresh=0.0)
    await service.collect()
    await service.collect()
    assert fetcher.runtime("defillama").health.requests == 4


async def test_some_sections_failing_is_partial_and_nothing_is_zero_filled() -> None:
    routes = llama_routes()
    routes[PROTOCOLS] = httpx.Response(500)
    routes[CHAINS] = httpx.Response(200, json={"message": "Internal server error"})
    del routes[nodes_for("bsc")[0].base_url]
    service, _ = onchain_service(routes)
    payload = await service.collect()
    assert payload["status"] == "partial"
    assert payload["tvl"]["status"] == "no_data" and payload["tvl"]["total_tvl"] is None
    assert payload["tvl"]["chains"] == [] and "Internal server error" in payload["tvl"]["message"]
    assert payload["protocols"]["status"] == "no_data" and payload["protocols"]["top"] == []
    assert payload["stablecoins"]["status"] == "ok"
    assert "bsc" not in payload["gas"] and "ethereum" in payload["gas"]
    assert "rpc_bsc_binance" in payload["gas_errors"]["bsc"]  # says why bsc is missing


async def test_everything_down_is_no_data_then_stale() -> None:
    service, _ = onchain_service({}, refresh=0.0)
    payload = await service.collect()
    assert payload["status"] == "no_data" and payload["gas"] == {}
    assert all(payload[s]["status"] == "no_data" for s in ("tvl", "protocols", "stablecoins"))

    routes = llama_routes()
    service, _ = onchain_service(routes, refresh=0.0)
    good = await service.collect()
    routes.clear()
    stale = await service.collect()
    assert stale["status"] == "stale" or stale["status"] == "partial"  # gas has no stale values to show
    assert stale["tvl"]["status"] == "stale" and stale["tvl"]["chains"] == good["tvl"]["chains"]
    assert stale["tvl"]["stale_since"] and "last good data" in stale["tvl"]["message"]
    assert stale["gas"] == {}


async def test_build_declares_defillama_and_gas_pools(tmp_path: Path) -> None:
    settings = Settings(data_source="replay", data_dir=tmp_path)
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport({})), budgets=False, replay=True)
    ctx = build_context(settings, fetcher, {"onchain": 30.0})
    [service] = build(ctx)
    assert isinstance(service, OnchainService)
    assert {"onchain_tvl", "onchain_protocols", "onchain_stablecoins"} <= set(ctx.pools)
    assert {f"gas_{chain}" for chain in GAS_CHAINS} <= set(ctx.pools)
    assert service.tvl.cadence.every == 300 and service.protocols.cadence.every == 600
    sections = (service.tvl, service.protocols, service.stablecoins)
    assert all(section.tracker.max_age == DEFILLAMA_MAX_AGE for section in sections)


async def test_replay_recordings_serve_the_defillama_sections(tmp_path: Path) -> None:
    settings = Settings(data_source="replay", data_dir=tmp_path)
    fetcher = Fetcher(http_client(settings), budgets=False, retries=0, replay=True)
    ctx = build_context(settings, fetcher, {"onchain": 30.0})
    [service] = build(ctx)
    payload: Any = await service.collect()
    assert payload["data_source"] == "replay"
    assert payload["tvl"]["status"] == "ok" and len(payload["tvl"]["chains"]) == 20
    assert payload["tvl"]["recorded_at"] == "2022-09-28T00:00:00.000Z"
    # /protocols has no recording of the moment /v2/chains was recorded: left out, and said so
    assert payload["protocols"]["status"] == "no_data" and "no recording" in payload["protocols"]["message"]
    assert payload["stablecoins"]["total_circulating_usd"] > 0 and payload["stablecoins"]["unpriced_count"] == 1
    gas = payload["gas"]
    assert gas["base"]["gas_price_gwei"] >= gas["base"]["base_fee_gwei"]  # one block of one moment
    assert gas["ethereum"]["gas_price_gwei"] is None and gas["ethereum"]["base_fee_gwei"] == pytest.approx(0.631063844)
    assert set(payload["gas_errors"]) == {"bsc", "optimism"}  # no recording of a head (BSC) or of a gas figure
    await fetcher.http.aclose()


async def test_large_lists_are_decoded_and_read_off_the_event_loop() -> None:
    """``/protocols`` is megabytes: decoding it and walking thousands of entries must not hold the loop."""
    read_in: list[int] = []

    class WatchedLlama(DefiLlama):
        @classmethod
        def normalize_protocols(cls, raw: Any, limit: int = 10) -> tuple[Any, ...]:
            read_in.append(threading.get_ident())
            return DefiLlama.normalize_protocols(raw, limit)

    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(llama_routes())), retries=0, budgets=False,
                      replay=True)
    [uniswap] = await WatchedLlama().fetch_protocols(fetcher, 10, 0.0)
    assert uniswap.name == "Uniswap" and read_in and threading.get_ident() not in read_in


async def test_a_large_list_that_is_not_json_is_a_bad_response() -> None:
    routes = {PROTOCOLS: httpx.Response(200, content=b"<html>502 Bad Gateway</html>")}
    fetcher = Fetcher(httpx.AsyncClient(transport=routes_transport(routes)), retries=0, budgets=False, replay=True)
    llama = DefiLlama()
    with pytest.raises(ProviderBadResponse, match="not JSON"):
        await llama.fetch_protocols(fetcher, 10, 0.0)
    health = fetcher.runtime("defillama").health
    assert health.consecutive_failures == 1 and health.error_kind == "bad_response"
