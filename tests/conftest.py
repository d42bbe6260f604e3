"""Fixtures and hooks only; what tests import lives in tests/support (settings, the live server, recordings, ...).

Nothing here reaches the internet: servers run in replay mode or over an ``httpx.MockTransport``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Before anything imports gradio or huggingface_hub (the support modules import the app).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from app import create_app
from config import Settings
from tests.support.redis_server import REDIS_SERVER, redis_server
from tests.support.server import LiveServer, serve
from tests.support.settings import make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The whole app in replay mode on a real uvicorn server; long intervals, so only the first runs fire."""
    with serve(lambda: create_app(settings), settings) as server:
        yield server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private redis-server on a free loopback port for this module, else the one REDIS_TEST_URL names; skips
    without either, fails under CI. Tests keep apart by key prefix (see ``redis_prefix``)."""
    shared = os.environ.get("REDIS_TEST_URL")
    if REDIS_SERVER is None and shared:  # no binary here, but a Redis for tests (.ci/run starts one)
        yield shared
        return
    with redis_server(workdir=tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture
def redis_prefix(request: pytest.FixtureRequest) -> str:
    return f"t{abs(hash(request.node.nodeid)) % 10**8}"
