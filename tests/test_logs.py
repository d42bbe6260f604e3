"""Logs: LOG_FORMAT=json gives one JSON object per line, for every logger; no secret reaches any line."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

import logs
from config import Redactor
from tests.support.paths import ROOT
from tests.support.wsclient import Client

#: Fake provider keys, each distinctive enough that any trace of one in the output is found.
FAKE_KEYS = {
    "COINGECKO_API_KEY": "CG-fake-key-3f9a1c7e5b",
    "ETHERSCAN_API_KEY": "ETHSCAN-fake-key-8d2e4f6a1b",
    "CRYPTOPANIC_TOKEN": "cpanic-fake-token-5c7e9a1b3d",
    "WHALE_ALERT_API_KEY": "whale-fake-key-2b4d6f8a0c",
    "CRYPTOCOMPARE_API_KEY": "ccompare-fake-key-9e1a3c5b7d",
    "COINCAP_API_KEY": "coincap-fake-key-4a6c8e0b2d",
    "HF_TOKEN": "hf_fakeTokenForTheLogTest0123",
}
FIELDS = {"time", "level", "logger", "message"}
SECRET = "sk-live-0123456789"


def record(formatter: logging.Formatter, message: str, *args: Any, error: Exception | None = None,
           **extra: Any) -> str:
    """What ``formatter`` makes of one log call (with ``error``'s traceback, if given)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("test.logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        if error is None:
            logger.warning(message, *args, extra=extra)
        else:
            try:
                raise error
            except Exception:
                logger.exception(message, *args, extra=extra)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue()


def test_a_json_line_has_the_fields_and_no_secret() -> None:
    service: contextvars.ContextVar[str | None] = contextvars.ContextVar("service", default=None)
    formatter = logs.JsonFormatter(Redactor([SECRET]), context=lambda: {"service": service.get()})
    service.set("market_data")
    text = record(formatter, "calling %s with key %s", "coingecko", SECRET, provider="coingecko",
                  error=RuntimeError(f"refused key={SECRET}"))
    assert text.endswith("\n") and text.count("\n") == 1
    line = json.loads(text)
    assert line.keys() >= FIELDS
    assert line["level"] == "ERROR" and line["logger"] == "test.logs"
    assert line["time"].endswith("Z") and line["time"][:2] == "20"
    assert line["service"] == "market_data" and line["provider"] == "coingecko"
    assert line["message"] == "calling coingecko with key ***"
    assert "RuntimeError: refused key=***" in line["exception"] and "Traceback" in line["exception"]
    assert SECRET not in text


def test_extra_fields_win_over_the_context_and_nested_secrets_are_masked() -> None:
    formatter = logs.JsonFormatter(Redactor([SECRET]), context=lambda: {"service": "news"})
    line = json.loads(record(formatter, "plain", service="sentiment", detail={"url": f"https://x/?k={SECRET}"}))
    assert line["service"] == "sentiment"
    assert line["detail"] == {"url": "https://x/?k=***"}
    plain = json.loads(record(logs.JsonFormatter(Redactor()), "no context"))
    assert "service" not in plain and "exception" not in plain


def test_the_text_format_stays_human_and_is_scrubbed_too() -> None:
    text = record(logs.TextFormatter(Redactor([SECRET])), "key %s", SECRET, error=ValueError(SECRET))
    assert " WARNING test.logs: key ***" in text.splitlines()[0] or " ERROR test.logs: key ***" in text
    assert SECRET not in text and "ValueError: ***" in text


# -- the real server ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Any, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert process.poll() is None, "the server exited"
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def every_job_ran(base: str) -> bool:
    response = httpx.get(base + "/api/scheduler", timeout=5)
    if response.status_code != 200:
        return False
    jobs = response.json()["data"]["jobs"]
    return bool(jobs) and all(job["runs"] >= 1 for job in jobs)


def exercise(base: str) -> None:
    """Requests, good and bad, REST and WebSocket, so uvicorn, the API and the streams all log something."""
    for path in ("/healthz", "/api/market_data", "/api/providers", "/ws/stats", "/no/such/page", "/metrics",
                 "/api/history/market_data/bitcoin?until=null", "/api/nope"):
        httpx.get(base + path, timeout=10)
    httpx.post(base + "/api/sentiment", json={"texts": [""]}, timeout=10)
    httpx.post(base + "/api/sentiment", content=b"{not json", timeout=10)
    ws = base.replace("http://", "ws://")
    with Client(ws, "/ws") as client:
        client.recv_type("connection_established")
        client.request("not json", "error")
        client.request({"action": "subscribe", "service": "nope"}, "error")
        client.send('{"action": "ping", "data": "' + "x" * (70 * 1024) + '"}')
        with pytest.raises(ConnectionClosed):
            client.recv_until(lambda m: False, timeout=5)


def test_the_real_server_logs_json_lines_without_a_key(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, **FAKE_KEYS, "LOG_FORMAT": "json", "LOG_LEVEL": "debug", "DATA_SOURCE": "replay",
           "PORT": str(port), "HOST": "127.0.0.1", "DATA_DIR": str(tmp_path / "data"), "INTERVAL_SCALE": "0.05",
           "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
        try:
            wait_until(lambda: answers(base + "/healthz"), process, timeout=90)
            wait_until(lambda: every_job_ran(base), process, timeout=90)
            exercise(base)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    output = out.read_bytes() + err.read_bytes()
    for name, key in FAKE_KEYS.items():
        assert key.encode() not in output, f"{name} is in the log"
    lines = [json.loads(line) for line in output.decode().splitlines() if line.strip()]
    assert all(isinstance(line, dict) and line.keys() >= FIELDS for line in lines), "a line without the fields"
    loggers = {line["logger"] for line in lines}
    assert {"app", "uvicorn.error", "uvicorn.access"} <= loggers, loggers
    assert {line["level"] for line in lines} <= {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any(line["method"] == "POST" and line["path"] == "/api/sentiment" and line["status"] == 422
               for line in access)
    assert any(line.get("service") for line in lines), "no line says which service it was logged for"
