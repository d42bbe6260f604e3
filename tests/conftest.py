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
