"""The spec's own clients, unmodified, against the real server: its Python class over ``websockets``, and its
JavaScript class and reconnection example in Debian's chromium.

The client code is copied verbatim from websocket-api.md into tests/spec_clients/; only the example usage at
the end of the Python file (which points at localhost:7860 and runs forever) is replaced by the same calls
against the test server, with a time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import create_app
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.support.server import LiveServer, serve
from tests.support.settings import make_settings

CLIENTS = Path(__file__).parent / "spec_clients"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("spec"), interval_scale=0.2)  # market every second
    with serve(lambda: create_app(settings), settings) as live:
        live.wait_for(lambda: live.app.state.hub.latest("market_data") is not None, timeout=30)
        yield live


def spec_python_client() -> dict[str, Any]:
    """The spec's Python module, without its ``# Usage`` example."""
    source = (CLIENTS / "crypto_client.py").read_text()
    namespace: dict[str, Any] = {}
    exec(compile(source.split("\n# Usage\n")[0], "crypto_client.py", "exec"), namespace)
    return namespace


async def test_the_spec_python_client_runs_unmodified(server: LiveServer) -> None:
    client = spec_python_client()["CryptoWebSocketClient"](base_url=server.ws)
    got: dict[str, Any] = {}
    done = asyncio.Event()

    # As in the spec's usage example: two handlers, subscriptions once connected.
    async def handle_market_data(data: dict[str, Any]) -> None:
        got["prices"] = data.get("prices")
        done.set()

    async def handle_whale_tracking(data: dict[str, Any]) -> None:
        got["large_transactions"] = data.get("large_transactions")

    client.register_handler("market_data", handle_market_data)
    client.register_handler("whale_tracking", handle_whale_tracking)

    async def on_connected() -> None:
        await client.subscribe("market_data")
        await client.subscribe("whale_tracking")

    client.on_connected = on_connected
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        task = asyncio.create_task(client.connect("/ws/master"))
        await asyncio.wait_for(done.wait(), timeout=15)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert re.search(r"Client ID: client_\d+_\d+", printed.getvalue()), printed.getvalue()
    assert got["prices"]["bitcoin"] > 0
    assert client.subscriptions == {"market_data", "whale_tracking"}


if os.environ.get("CI"):
    from playwright import sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api")


def test_the_spec_javascript_client_runs_unmodified_in_a_browser(server: LiveServer) -> None:
    require_chromium()
    client_js = (CLIENTS / "crypto_client.js").read_text().split("\n// Usage\n")[0]
    reconnecting_js = (CLIENTS / "reconnecting.js").read_text()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            logs: list[str] = []
            errors: list[str] = []
            page.on("console", lambda m: (errors if m.type == "error" else logs).append(m.text))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.base + "/healthz")  # any page of the server's own origin
            result = page.evaluate("""async ([clientSource, reconnectingSource, base]) => {
                eval(clientSource + reconnectingSource + `
                    window.CryptoWebSocketClient = CryptoWebSocketClient;
                    window.ReconnectingWebSocket = ReconnectingWebSocket;`);
                const updates = {};
                const client = new CryptoWebSocketClient(base);   // the spec's usage, with our address
                client.connect('/ws/master');
                client.onConnected = () => {
                    client.subscribe('market_data');
                    client.subscribe('whale_tracking');
                };
                client.onUpdate = (service, data) => { updates[service] = data; };
                const reconnecting = new ReconnectingWebSocket(base + '/ws/market_data');
                const seen = [];
                reconnecting.ws.onmessage = (event) => seen.push(JSON.parse(event.data).type);
                const deadline = Date.now() + 15000;
                while (!(updates.market_data && seen.includes('update')) && Date.now() < deadline) {
                    await new Promise(r => setTimeout(r, 100));
                }
                client.getStatus();
                client.ws.close();
                return {bitcoin: updates.market_data && updates.market_data.prices.bitcoin,
                        subscriptions: [...client.subscriptions], seen};
            }""", [client_js, reconnecting_js, server.ws])
        finally:
            browser.close()
    assert result["bitcoin"] > 0, result
    assert sorted(result["subscriptions"]) == ["market_data", "whale_tracking"]
    assert result["seen"][:3] == ["connection_established", "subscription_confirmed", "update"]
    # the spec's client logs message.data.client_id: it must be defined (the origin's was `undefined`)
    assert any(re.fullmatch(r"Client ID: client_\d+_\d+", line) for line in logs), logs
    assert not errors, errors


REACT = CLIENTS / "react"


def react_bundle() -> str:
    """The spec's React hook and its example component, bundled by esbuild (tests/spec_clients/react)."""
    if not (REACT / "node_modules" / "esbuild").exists():
        message = "tests/spec_clients/react has no node_modules (.ci/run runs npm ci there)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    subprocess.run(["node", "build.mjs"], cwd=REACT, check=True, timeout=120)
    return (REACT / "dist" / "bundle.js").read_text()


def test_the_spec_react_hook_runs_unmodified_in_a_browser(server: LiveServer) -> None:
    require_chromium()
    bundle = react_bundle()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            # The hook dials ws://localhost:7860 itself; the page, not the hook, points that at the test server.
            page.add_init_script(f"""(() => {{
                const Native = window.WebSocket;
                window.WebSocket = function (url, protocols) {{
                    return new Native(url.replace('ws://localhost:7860', {server.ws!r}), protocols);
                }};
                window.WebSocket.prototype = Native.prototype;
                Object.assign(window.WebSocket, {{CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3}});
            }})();""")
            page.goto(server.base + "/healthz")
            page.set_content('<div id="root"></div>')
            page.add_script_tag(content=bundle)
            page.evaluate("""() => {
                const root = SpecReact.createRoot(document.getElementById('root'));
                root.render(SpecReact.createElement(SpecReact.MarketDataComponent));
            }""")
            page.wait_for_function("document.body.innerText.includes('Status: Connected')", timeout=15000)
            page.wait_for_function("document.body.innerText.includes('\"bitcoin\":')", timeout=15000)
            text = page.inner_text("#root")
        finally:
            browser.close()
    assert "Market Data" in text and "Prices: {" in text
    assert not errors, errors
