"""Headless chromium for the browser tests (Debian's package)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: Headless chromium on a machine with no network: no background traffic, no sandbox (root in CI).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def require_chromium() -> None:
    """Skip without Debian's chromium; under CI (``CI`` set) fail instead, as CI must run the browser tests."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (.ci/run installs Debian's chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
