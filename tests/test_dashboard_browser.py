"""The dashboard in a real browser: Debian's chromium driven by playwright, against the real server in replay mode.

Prices appear, every section is there, the page changes by itself (no reload), nothing is fetched from
elsewhere, the console stays free of errors, and it fits a phone. Screenshots go to tests/artifacts/.
Under CI (the ``CI`` variable set) a missing chromium fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from app import create_app
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.support.paths import ROOT
from tests.support.server import LiveServer, serve
from tests.support.settings import make_settings

ARTIFACTS = ROOT / "tests" / "artifacts"
#: Tab -> what must be on it once data is in (the real replayed payloads).
SECTIONS = {
    "Market": ("#market-table", "Bitcoin"),
    "Whales": ("#whales", "Large transactions"),
    "News": ("#news", "headlines"),
    "Sentiment": ("#sentiment", "Fear & Greed"),
    "Chain": ("#chain", "RPC nodes"),
    "Providers": ("#providers", "Pools and failover"),
    "Connections": ("#connections", "WebSocket clients"),
}

if os.environ.get("CI"):  # in CI the browser test must run: a missing playwright is a failure
    from playwright import sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_chromium()
    # Short intervals (market every second) so the page has something new to show within a few seconds.
    settings = make_settings(tmp_path_factory.mktemp("dashboard"), interval_scale=0.2)
    with serve(lambda: create_app(settings), settings) as live:
        # The first health report names the providers; the page reads better from then on.
        live.wait_for(lambda: all(live.app.state.hub.latest(s) is not None
                                  for s in ("market_data", "health_checker", "scheduler")), timeout=30)
        yield live


@pytest.fixture(scope="module")
def browser(server: LiveServer) -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A page whose console errors, uncaught exceptions and requests to other hosts are kept."""

    def __init__(self, browser: sync_api.Browser, server: LiveServer, width: int, height: int) -> None:
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.elsewhere: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("request", lambda r: None if r.url.startswith((server.base, "data:", "blob:"))
                     else self.elsewhere.append(r.url))
        self.page.goto(server.base + "/", wait_until="domcontentloaded")

    def open_tab(self, name: str) -> None:
        tab = self.page.get_by_role("tab", name=name, exact=True)
        if tab.count():
            tab.click()
        else:  # on a phone, Gradio folds the tabs that do not fit into a "More tabs" menu
            self.page.get_by_role("button", name="More tabs").click()
            self.page.locator(".overflow-dropdown button", has_text=name).click()

    def check_clean(self) -> None:
        assert self.errors == [], self.errors
        assert self.elsewhere == [], f"the page loaded from elsewhere: {self.elsewhere}"


def test_dashboard_in_a_browser(server: LiveServer, browser: sync_api.Browser) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    watched = Watched(browser, server, 1400, 1000)
    page = watched.page
    expect = sync_api.expect

    # Prices appear, as people read them.
    table = page.locator("#market-table table.grid")
    expect(table).to_contain_text("Bitcoin", timeout=20_000)
    assert re.search(r"\$\d{1,3}(,\d{3})*\.\d{2}", table.inner_text())
    expect(page.locator("#header")).to_contain_text("Replay mode")  # replayed data is never passed off as live
    expect(page.locator("#price-chart svg").first).to_be_visible(timeout=10_000)

    # The page changes by itself: a newer market update reaches it without a reload.
    fetched = page.locator("#market-top .fresh time").first
    first = fetched.get_attribute("datetime")
    expect(fetched).not_to_have_attribute("datetime", first or "", timeout=10_000)
    expect(fetched).to_have_text(re.compile(r"(\d+ s ago|just now)"))  # the page's clock words
    page.screenshot(path=str(ARTIFACTS / "dashboard-1400.png"), full_page=True)

    # Every section is there, with content.
    for tab, (selector, words) in SECTIONS.items():
        watched.open_tab(tab)
        expect(page.locator(selector)).to_contain_text(words, timeout=15_000)
        if tab != "Market":
            page.screenshot(path=str(ARTIFACTS / f"dashboard-1400-{tab.lower()}.png"), full_page=True)
    expect(page.locator("#ws-urls")).to_contain_text(f"{server.ws}/ws/master")
    expect(page.locator("#example-message")).to_contain_text('"action": "subscribe"')
    for block in ("Explorers", "On-chain"):
        expect(page.locator("#chain")).to_contain_text(block)
    expect(page.locator("#providers")).to_contain_text("Scheduled jobs")

    # The sentiment box scores a text with the server's runner and names what answered.
    watched.open_tab("Sentiment")
    page.locator("#score-text textarea").fill("Bitcoin surges to a record high as ETF inflows soar")
    page.get_by_role("button", name="Score").click()
    expect(page.locator("#score-text")).to_contain_text("Scored by", timeout=15_000)
    watched.check_clean()

    # A phone: everything fits the width, and the tabs are still reachable.
    phone = Watched(browser, server, 390, 844)
    expect(phone.page.locator("#market-table table.grid")).to_contain_text("Bitcoin", timeout=20_000)
    expect(phone.page.locator("#price-chart svg").first).to_be_visible(timeout=10_000)
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390
    phone.page.screenshot(path=str(ARTIFACTS / "dashboard-390.png"), full_page=True)
    phone.open_tab("Providers")
    expect(phone.page.locator("#providers")).to_contain_text("Pools and failover", timeout=15_000)
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390
    phone.page.screenshot(path=str(ARTIFACTS / "dashboard-390-providers.png"), full_page=True)
    phone.check_clean()
