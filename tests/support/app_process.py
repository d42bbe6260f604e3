"""``python app.py`` as a real process (replay data, a free loopback port): for tests of several replicas, of a
``kill -9`` and of a restart, where the server must be a process of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.paths import ROOT
from tests.support.redis_server import free_port


@dataclass
class AppProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def health(self) -> dict[str, Any]:
        health: dict[str, Any] = httpx.get(self.base + "/healthz", timeout=5).json()
        return health

    def wait_for(self, predicate: Any, timeout: float = 30.0, what: str = "condition") -> float:
        """Poll ``predicate(health)`` until true; returns the seconds it took."""
        started = time.monotonic()
        while True:
            try:
                if predicate(self.health()):
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"app.py exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{what} not met in {timeout} s; log: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """``kill -9``: no shutdown, no lease given back, nothing flushed."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """A planned stop (SIGTERM), as a platform restarts a server; waits for the shutdown to end."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@contextmanager
def app_process(data_dir: Path, env: Mapping[str, str] | None = None, port: int | None = None) -> Iterator[AppProcess]:
    """``python app.py`` in replay mode on 127.0.0.1, ready (``/healthz`` answers) when entered."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / f"app-{port}.log"
    environ = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "DATA_SOURCE": "replay",
               "DATA_DIR": str(data_dir), "LOG_LEVEL": "warning", "HF_HUB_OFFLINE": "1",
               "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})}
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=environ, stdout=out,
                                   stderr=subprocess.STDOUT)
    app = AppProcess(process, port, log)
    try:
        app.wait_for(lambda health: health["status"] == "ok", timeout=90, what="app.py start")
        yield app
    finally:
        app.stop()
