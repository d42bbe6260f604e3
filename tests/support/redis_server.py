"""A real redis-server for the tests: a private one on a free loopback port (so a test may kill or flush it),
or the one ``REDIS_TEST_URL`` names (.ci/run starts one). Without either, the tests that need Redis skip, and
fail when ``CI`` is set."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_redis_server() -> str:
    """The redis-server binary; skips the test without one, fails it under CI."""
    if REDIS_SERVER is None:
        message = "redis-server is not installed (Debian: apt-get install redis-server; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_SERVER


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes] | None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def kill(self) -> None:
        """``kill -9``: gone at once, nothing flushed."""
        assert self.process is not None, "a shared Redis is not ours to kill"
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


def _wait_until_up(url: str, timeout: float = 10) -> None:
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
        finally:
            client.close()


@contextmanager
def redis_server(port: int | None = None, workdir: Path | None = None) -> Iterator[RedisServer]:
    """A private redis-server on 127.0.0.1 (no persistence), stopped at the end."""
    binary = require_redis_server()
    port = port or free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--protected-mode", "yes", "--loglevel", "warning"]
    process = subprocess.Popen(args, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(port, process)
    try:
        _wait_until_up(server.url)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
