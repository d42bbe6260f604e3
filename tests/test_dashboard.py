"""The dashboard's formatting and sections: missing, stale and no_data said in words (never as zeros), text from
providers escaped, links only to web addresses; the price history; the page built on real payload shapes."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from models.catalog import websocket_base_url
from models.chain import BitcoinNetwork, EthereumNetwork, ExplorersPayload
from models.freshness import SourceState
from models.market import MarketDataPayload
from models.monitoring import HealthPayload, JobView, PoolPayload, PoolView, ProviderHealthView, SchedulerPayload
from models.news import Article, ArticleSentiment, FearGreed, NewsPayload, SentimentPayload
from models.whales import WhaleTrackingPayload, WhaleTransaction
from ui import format as fmt
from ui.dashboard import render_all
from ui.history import PriceHistory
from ui.tabs.header import render_header
from ui.tabs.market import chart_note, market_rows, market_summary, market_table
from ui.tabs.news import render_news
from ui.tabs.providers import health_rows, job_rows
from ui.tabs.sentiment import render_sentiment
from ui.tabs.whales import render_whales
from ui.widgets import View, freshness
from ws.hub import Hub

NOW = time.time()
VIEW = View(now=NOW, names={"coingecko": "CoinGecko", "kraken": "Kraken"}, intervals={"market_data": 5.0},
            running=frozenset({"market_data", "news"}))
ZERO_MONEY = re.compile(r"\$0(\.0+)?(?![\d.])")


def iso(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(NOW - seconds_ago))


def text_of(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def market(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "timestamp": iso(2), "fetched_at": iso(2), "source": "coingecko", "price_change_window": "24h",
        "quote_currency": "USD", "coins": [{"id": "bitcoin", "symbol": "BTC", "name": "Bitcoin", "rank": 1},
                                           {"id": "tether", "symbol": "USDT", "name": "Tether", "rank": 3}],
        "prices": {"bitcoin": 79847.0, "tether": 0.9993}, "price_changes": {"bitcoin": -8.2},
        "volumes": {"bitcoin": 70.78e9}, "market_caps": {"bitcoin": 1.59e12, "tether": 135.3e9},
        "providers": {"coingecko": SourceState(status="ok"), "kraken": SourceState(status="not_tried")},
    }
    values.update(overrides)
    return MarketDataPayload(**values).model_dump(mode="json")


# -- formatting -----------------------------------------------------------------------------------------

def test_missing_numbers_read_na_never_zero() -> None:
    for formatter in (fmt.money, fmt.price, fmt.percent, fmt.count, fmt.integer, fmt.milliseconds):
        for missing in (None, float("nan"), "12", True):
            shown = formatter(missing)
            assert "n/a" in shown and "0" not in text_of(shown), (formatter, missing)
    assert fmt.si(None, "H/s") == fmt.NA and fmt.duration(None) == fmt.NA


def test_numbers_for_people() -> None:
    assert fmt.money(2.62104e12) == "$2.62T" and fmt.money(95.13e9) == "$95.13B" and fmt.money(4210.5) == "$4,210.50"
    assert fmt.money(1.5e6, "USDT") == "1.50M USDT"
    assert fmt.price(79847) == "$79,847.00" and fmt.price(2.3) == "$2.30" and fmt.price(0.99934) == "$0.9993"
    assert fmt.price(0.00001234) == "$1.234e-05" and fmt.price(0) == "$0"  # a real zero stays a zero
    assert fmt.percent(-8.2) == '<span class="down">▼8.20%</span>' and "▲1.75%" in fmt.percent(1.75)
    assert fmt.percent(58.0, signed=False) == "58.0%"
    assert fmt.count(17397) == "17,397" and fmt.count(2.5e6) == "2.50M" and fmt.integer(121830774) == "121,830,774"
    assert fmt.si(812.35e18, "H/s") == "812.35 EH/s" and fmt.milliseconds(0.2) == "<1 ms"
    assert fmt.duration(5) == "5 s" and fmt.duration(3600) == "1 h"


def test_times_are_stable_elements_the_page_turns_into_words() -> None:
    shown = fmt.when("2026-11-26T06:04:57.803Z", now=fmt.epoch("2026-11-26T06:05:09Z") or 0)
    assert shown == ('<time data-rel="past" datetime="2026-11-26T06:04:57.803Z" title="2026-11-26 06:04:57 UTC">'
                     "06:04:57 UTC</time>")
    assert ">2026-08-30 12:00 UTC<" in fmt.when("2026-08-30T12:00:00Z", now=NOW)  # long ago: with its date
    assert 'data-rel="upcoming" datetime=' in fmt.when(iso(-5), NOW, upcoming=True)
    assert 'data-rel="upcoming" data-every="15"' in fmt.when(iso(-5), NOW, upcoming=True, every=15.0)
    assert fmt.when(None, NOW, missing="never") == '<span class="na">never</span>'
    assert fmt.when("yesterday", NOW) == '<span class="na">never</span>'  # unreadable: said, not guessed


def test_untrusted_text_is_escaped_and_only_web_links_are_made() -> None:
    assert fmt.esc('<img src=x onerror="alert(1)">') == "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"
    assert fmt.link("javascript:alert(1)", "click") == "click"
    assert fmt.link("data:text/html,<b>x</b>", "x") == "x"
    assert fmt.link('https://example.com/a"b', "<b>title</b>") == (
        '<a href="https://example.com/a&quot;b" target="_blank" rel="noopener noreferrer nofollow">'
        "&lt;b&gt;title&lt;/b&gt;</a>")
    assert fmt.safe_url("//evil.example") is None and fmt.safe_url("https://") is None


# -- freshness ------------------------------------------------------------------------------------------

def test_freshness_says_waiting_not_running_live_and_replay() -> None:
    assert "waiting for the first update" in freshness("News", "news", None, VIEW)
    assert "not collected on this server" in freshness("Sentiment", "sentiment", None, VIEW)
    live = freshness("Prices", "market_data", market(), VIEW)
    assert "LIVE" in live and "CoinGecko" in live and 'class="fresh ok"' in live
    replay = freshness("Prices", "market_data", market(data_source="replay"), VIEW)
    assert "REPLAY" in replay and "recorded responses" in replay


def test_stale_data_is_said_with_its_age_and_why() -> None:
    data = market(status="stale", fetched_at=iso(600), stale_since=iso(300), age_seconds=600.0,
                  message="Showing the last good data from coingecko: every provider failed",
                  providers={"coingecko": SourceState(status="rate_limited", error="HTTP 429 <Too Many>",
                                                      since=iso(300)),
                             "kraken": SourceState(status="error", error="timeout")})
    html = freshness("Prices", "market_data", data, VIEW)
    assert 'class="fresh stale"' in html and "STALE" in html and "the last good values" in html
    assert f'datetime="{iso(600)}"' in html  # the age, kept current by the page
    assert "CoinGecko</b>: rate limited (HTTP 429 &lt;Too Many&gt;)" in html and "Kraken</b>: error (timeout)" in html
    assert "<details open>" in html
    table = market_table(data, VIEW)  # the values are still shown, dimmed and labelled as the last good ones
    assert 'class="stale-data"' in table and "last good values" in table and "$79,847.00" in table


def test_no_data_is_said_and_shows_no_figures() -> None:
    data = MarketDataPayload(status="no_data", timestamp=iso(0), message="No data: every provider failed (x: y)",
                             providers={"coingecko": SourceState(status="error", error="HTTP 500")}
                             ).model_dump(mode="json")
    html = market_summary(data, VIEW)
    assert "NO DATA" in html and "every provider failed" in html and 'class="fresh nodata"' in html
    assert market_rows(data, VIEW) == [] and not ZERO_MONEY.search(html)


def test_old_snapshot_is_flagged_even_when_ok() -> None:
    html = freshness("Prices", "market_data", market(fetched_at=iso(7200), timestamp=iso(7200)), VIEW)
    assert "OLD" in html and "should refresh every 5 s" in html


# -- sections -------------------------------------------------------------------------------------------

def test_market_rows_say_na_for_what_the_provider_did_not_give() -> None:
    rows = market_rows(market(), VIEW)
    assert [text_of(cell).split()[0] for cell in rows[0][:3]] == ["1", "Bitcoin", "$79,847.00"]
    tether = rows[1]
    assert "n/a" in tether[3] and "n/a" in tether[4]  # no change, no volume: not 0
    assert tether[5] == "$135.30B" and tether[6] == "CoinGecko"


def test_news_escapes_titles_and_refuses_script_links() -> None:
    article = Article(id="1", title='<script>alert("x")</script> Bitcoin', source="Evil <b>Feed</b>",
                      url="javascript:alert(1)", published_at=iso(60), summary="<i>sum</i>")
    scored = Article(id="2", title="ETF inflows", source="CoinDesk", url="https://www.coindesk.com/a",
                     published_at=None,
                     sentiment=ArticleSentiment(label="bullish", score=0.62, model="finbert"))
    data = NewsPayload(articles=[article, scored], sources=["CoinDesk"], timestamp=iso(1), fetched_at=iso(1)
                       ).model_dump(mode="json")
    html = render_news(data, VIEW)
    assert "<script>" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Bitcoin" in html
    assert "javascript:" not in html and "Evil &lt;b&gt;Feed&lt;/b&gt;" in html and "<i>" not in html
    assert "not scored yet" in html and "bullish +0.62" in html and 'title="scored by finbert"' in html
    assert "date unknown" in html and 'href="https://www.coindesk.com/a"' in html


def test_whales_without_transactions_say_so_without_a_zero_total() -> None:
    data = WhaleTrackingPayload(total_volume=0.0, alert_threshold=1e6, window_seconds=3600, timestamp=iso(1),
                                fetched_at=iso(1), prices_used={"BTC": 79847.0}).model_dump(mode="json")
    html = render_whales(data, VIEW)
    assert "No transaction over $1.00M seen in the last 1 h" in html and not ZERO_MONEY.search(html)
    tx = WhaleTransaction(hash="0xabc123def4567890abc", value=2.5e6, from_="0x1111222233334444", to=None,
                          timestamp=iso(30), chain="ethereum", symbol="ETH", amount=24050.0, source="kraken",
                          explorer_url="https://etherscan.io/tx/0xabc123def4567890abc")
    data = WhaleTrackingPayload(large_transactions=[tx], total_volume=2.5e6, alert_threshold=1e6, timestamp=iso(1),
                                fetched_at=iso(1)).model_dump(mode="json")
    html = render_whales(data, VIEW)
    assert "$2.50M" in html and "24,050 ETH" in html and "0x111122…334444 → unknown" in html
    assert 'href="https://etherscan.io/tx/0xabc123def4567890abc"' in html


def test_sentiment_without_texts_has_no_score() -> None:
    data = SentimentPayload(timestamp=iso(1), fetched_at=iso(1), message="No texts to score, so no sentiment score."
                            ).model_dump(mode="json")
    html = render_sentiment(data, None, VIEW)
    assert "no score" in html and "No texts to score" in html and "+0.00" not in html
    assert "Fear &amp; Greed index not available" in html
    scored = SentimentPayload(timestamp=iso(1), fetched_at=iso(1), sentiment_score=-0.07, overall_sentiment="neutral",
                              social_volume=38, sentiment_by_source={"CoinDesk": -0.1}, trending_topics=["ETF"],
                              label_counts={"bearish": 13}, model="vader", backend="lexicon",
                              fear_greed=FearGreed(value=25, classification="Extreme Fear", timestamp=iso(3600),
                                                   source="alternative_me")).model_dump(mode="json")
    html = render_sentiment(scored, None, VIEW)
    assert "-0.07" in html and "25 Extreme Fear" in html and "mean of 38 texts" in html
    assert "Texts scored by <b>vader</b> (lexicon)" in html and "ETF" in html


def test_provider_rows_say_unchecked_and_unknown_in_words() -> None:
    health = HealthPayload(overall_health="degraded", healthy_count=1, unhealthy_count=1, total_providers=2,
                           timestamp=iso(1), providers={
                               "coincap": ProviderHealthView(status="disabled", detail="missing_api_key",
                                                             response_time_ms=None, last_check=None, name="CoinCap",
                                                             category="market"),
                               "kraken": ProviderHealthView(status="healthy", detail="ok", response_time_ms=42.4,
                                                            last_check=iso(3), name="Kraken", category="market",
                                                            last_success=iso(3))}).model_dump(mode="json")
    coincap, kraken = health_rows(health, VIEW)
    assert "n/a" in coincap[3] and "not checked yet" in coincap[4] and "never" in coincap[5]
    assert "missing api key" in coincap[2] and kraken[3] == "42 ms"
    jobs = SchedulerPayload(running=True, total_jobs=1, active_jobs=0, timestamp=iso(1), jobs=[
        JobView(id="market_data_collection", next_run=iso(-4), status="scheduled", interval_seconds=5)]
    ).model_dump(mode="json")
    (job,) = job_rows(jobs, VIEW)
    assert "market_<wbr>data" in job[0] and 'data-rel="upcoming" data-every="5"' in job[3] and "not yet" in job[4]


def test_header_before_any_data_says_waiting() -> None:
    html = render_header(None, None, None, {"total_connections": 0, "updates_published": 0}, VIEW, {None})
    assert text_of(html).count("waiting") >= 3 and "Replay" not in html and "$" not in html
    assert "Replay mode" in render_header(market(data_source="replay"), None, None, {}, VIEW, {"replay"})


def test_websocket_urls_follow_the_proxy() -> None:
    assert websocket_base_url({"host": "127.0.0.1:7860"}) == "ws://127.0.0.1:7860"
    assert websocket_base_url({"host": "internal:7860", "x-forwarded-proto": "https",
                               "x-forwarded-host": "me-space.hf.space"}) == "wss://me-space.hf.space"


def test_the_whole_page_renders_from_real_payload_shapes() -> None:
    hub = Hub()
    hub.publish("market_data", market(data_source="replay"))
    hub.publish("explorers", ExplorersPayload(
        bitcoin=BitcoinNetwork(source="mempool_space", height=698767, fees={"fastest": 11.0}, hashrate=2.52e20,
                               fetched_at=iso(2)),
        ethereum=EthereumNetwork(status="no_data", message="No data: every provider failed (rpc: timeout)"),
        status="partial", timestamp=iso(1)).model_dump(mode="json"))
    hub.publish("pool_manager", PoolPayload(pools={"market_data": PoolView(
        active_source="coingecko", available_sources=["coingecko", "kraken"], health="healthy",
        sources={"coingecko": "healthy", "kraken": "unhealthy"}, failover_count=2)}, active_sources=["coingecko"],
        inactive_sources=["kraken"], failover_count=2, timestamp=iso(1)).model_dump(mode="json"))
    stats = {"total_connections": 3, "updates_published": 120, "subscription_counts": {"market_data": 2}}
    rendered = render_all(hub, lambda: stats, NOW)
    assert rendered.coins == (("Bitcoin (BTC)", "bitcoin"), ("Tether (USDT)", "tether"))
    page = "".join(rendered.sections.values())
    assert "Replay mode" in page and "$79,847.00" in page and "698,767" in page and "252.00 EH/s" in page
    assert "Ethereum</b>: No data: every provider failed (rpc: timeout)" in page
    assert "waiting for the first update" in rendered.sections["news"]
    # no health report yet, so no provider names: their ids stand in
    assert "market_<wbr>data" in rendered.sections["providers"] and "kraken" in rendered.sections["providers"]
    assert ">3<" in rendered.sections["connections"] and "market_data</b> 2" in rendered.sections["connections"]


def test_a_section_that_cannot_be_drawn_leaves_the_others(caplog: Any) -> None:
    """A changed payload shape costs its own section, never the whole page (nor the page's timer)."""
    hub = Hub()
    hub.publish("market_data", market())
    tx = {"hash": "0xabc", "value": 2.5e6, "from": None, "to": None, "timestamp": None, "chain": "ethereum",
          "symbol": "ETH", "amount": None, "source": "rpc_eth_publicnode"}  # an amount not given
    whales = {"status": "ok", "large_transactions": [tx], "alert_threshold": 1e6, "timestamp": iso(1)}
    hub.publish("whale_tracking", whales)
    assert "$2.50M" in render_whales(whales, VIEW) and "n/a" in render_whales(whales, VIEW)
    hub.publish("news", {"status": "ok", "articles": "not a list of articles", "timestamp": iso(1)})
    rendered = render_all(hub, lambda: {}, NOW)
    assert "could not be drawn" in rendered.sections["news"] and "news section" in caplog.text
    assert "$79,847.00" in rendered.sections["market_table"] and "$2.50M" in rendered.sections["whales"]


# -- the price chart ------------------------------------------------------------------------------------

class FakeStore:
    def __init__(self) -> None:
        self.reads = 0

    async def coin_series(self, coin: str, since: float | None, until: float | None,
                          limit: int) -> dict[str, list[Any]]:
        self.reads += 1
        return {"timestamps": [iso(20), iso(10)], "prices": [100.0, 101.0], "volumes": [None, None],
                "market_caps": [None, None], "sources": ["coingecko", "coingecko"]}


async def test_price_history_reads_the_store_once_then_follows_the_hub() -> None:
    store = FakeStore()
    history = PriceHistory(store, points=3)
    update: Mapping[str, Any] = {"status": "ok", "timestamp": iso(0), "prices": {"bitcoin": 102.0},
                                 "source": "kraken"}
    series = await history.series("bitcoin", update)
    assert list(series.prices) == [100.0, 101.0, 102.0] and series.loaded_from_store == 2
    series = await history.series("bitcoin", update)  # the same update again: nothing added
    stale = {**update, "status": "stale", "timestamp": iso(-5), "prices": {"bitcoin": 99.0}}
    series = await history.series("bitcoin", stale)  # stale values are old values: never a new point
    newer = {**update, "timestamp": iso(-10), "prices": {"bitcoin": 103.0}}
    series = await history.series("bitcoin", newer)
    assert list(series.prices) == [101.0, 102.0, 103.0] and store.reads == 1  # window of 3 points
    assert list(series.sources)[-1] == "kraken"


async def test_price_history_without_a_store_starts_empty() -> None:
    series = await PriceHistory(None).series("bitcoin", None)
    assert not series.prices
    assert "No stored prices of Bitcoin yet" in chart_note("Bitcoin", 0, None, None, None, "USD")
    note = chart_note("Bitcoin (BTC)", 3, iso(600), iso(0), "CoinGecko", "USD")
    assert "3 stored prices over 10 min, the latest from CoinGecko" in note
