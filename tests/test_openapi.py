"""The OpenAPI document tells the truth: schemathesis (every check, response schemas included) finds nothing
against the real server, and each failure it once found is a test of its own below."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from api.history import MAX_UNIX_SECONDS, _moment
from api.sentiment import _NOT_BLANK, NOT_BLANK
from app import create_app
from config import Settings
from models.catalog import SERVICE_NAMES
from tests.support.server import LiveServer, serve

ROOT = Path(__file__).parent.parent
#: Test cases per operation and phase: small enough that the whole run takes seconds, not minutes.
MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One replay server for the module, once every service has published (so every update shape is checked)."""
    from tests.support.settings import make_settings
    settings: Settings = make_settings(tmp_path_factory.mktemp("openapi"))
    with serve(lambda: create_app(settings), settings) as live:
        hub = live.app.state.hub
        live.wait_for(lambda: all(hub.latest(s) is not None for s in SERVICE_NAMES), timeout=60)
        yield live


@pytest.fixture(scope="module")
def schema(server: LiveServer) -> Any:
    return schemathesis.openapi.from_url(f"{server.base}/openapi.json")


def check(schema: Any, path: str, method: str, **case: Any) -> httpx.Response:
    """One case, called and validated: status documented, body matching the documented schema for it."""
    operation = schema[path][method]
    response = operation.Case(**case).call()
    operation.Case(**case).validate_response(response, checks=[status_code_conformance, response_schema_conformance])
    return response


def test_schemathesis_finds_nothing(server: LiveServer, tmp_path: Path) -> None:
    """Every phase (examples, coverage, fuzzing) and every check. positive_data_acceptance runs as
    tests/schemathesis_hooks.py's version of it: the same, but for an inverted range (since after until)."""
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(ROOT / "tests" / "schemathesis.toml"),
               "run", f"{server.base}/openapi.json", "--checks", "all", "--exclude-checks", "positive_data_acceptance",
               "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--request-timeout", "30",
               "--output-truncate", "true"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    assert "Failures:" not in result.stdout and "Errors:" not in result.stdout  # (warnings are not failures)
    assert "11 selected / 11 total" in result.stdout


# -- what it found, one test each --------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/history/market_data/{coin}", "/api/history/{service}",
                                  "/api/export/{service}"])
def test_a_bad_time_is_a_422_in_fastapis_shape(schema: Any, path: str) -> None:
    """Found: ``?until=null`` answered 422 with a string detail; the document promised the list."""
    params = {"coin": "bitcoin"} if "{coin}" in path else {"service": "market_data"}
    response = check(schema, path, "GET", path_parameters=params, query={"until": "null"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "until"] and "RFC 3339" in error["msg"] and error["input"] == "null"


def test_an_inverted_range_is_a_422_the_hook_lets_pass(schema: Any) -> None:
    """Found (by design, and not expressible in JSON Schema): since after until, each valid alone."""
    response = check(schema, "/api/history/{service}", "GET", path_parameters={"service": "news"},
                     query={"since": "2026-11-27T00:00:00Z", "until": "1"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"].startswith("Invalid range: since")


@pytest.mark.parametrize("texts", [[""], ["fine", " \t\u3000"], ["\x1c"]], ids=["empty", "white-space", "separator"])
def test_a_blank_text_is_a_422_in_fastapis_shape_and_not_schema_valid(schema: Any, texts: list[str]) -> None:
    """Found: ``{"texts": [""]}`` answered 422 with a string detail, and the document called it valid."""
    response = check(schema, "/api/sentiment", "POST", body={"texts": texts}, media_type="application/json")
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "texts", len(texts) - 1] and "is empty" in error["msg"]
    item = schema.raw_schema["components"]["schemas"]["SentimentRequest"]["properties"]["texts"]["items"]
    assert item["pattern"] == NOT_BLANK


def test_the_blank_test_and_the_documented_pattern_agree_on_every_character() -> None:
    for code in range(0x110000):
        text = chr(code)
        assert bool(_NOT_BLANK.search(text)) == bool(text.strip()), hex(code)


def test_too_many_texts_are_a_declared_413_and_the_limits_are_in_the_schema(schema: Any, server: LiveServer) -> None:
    """Found: 65 texts (over SENTIMENT_MAX_TEXTS) were schema-valid and answered 413."""
    settings = server.app.state.settings
    texts = schema.raw_schema["components"]["schemas"]["SentimentRequest"]["properties"]["texts"]
    assert texts["maxItems"] == settings.sentiment_max_texts
    assert texts["items"]["maxLength"] == settings.sentiment_max_chars
    response = check(schema, "/api/sentiment", "POST", body={"texts": ["0"] * (settings.sentiment_max_texts + 1)},
                     media_type="application/json")
    assert response.status_code == 413 and "Too many texts" in response.json()["detail"]


def test_a_body_that_is_not_utf8_is_a_declared_400(server: LiveServer, schema: Any) -> None:
    """Found: an undecodable body answered 400, which the document did not declare."""
    response = httpx.post(f"{server.base}/api/sentiment", content=b"~\x17\xff\xfe\x1cwV",
                          headers={"content-type": "application/json"})
    assert response.status_code == 400
    declared = schema.raw_schema["paths"]["/api/sentiment"]["post"]["responses"]["400"]
    assert declared["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorMessage")
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize("path", ["/api/{service}", "/api/history/{service}", "/api/export/{service}"])
def test_a_service_parameter_is_an_enum_and_an_unknown_one_a_declared_404(schema: Any, path: str) -> None:
    """Found: ``{service}`` was a free string, so the fuzzer met undeclared 404s and could not reach the data."""
    [parameter] = [p for p in schema.raw_schema["paths"][path]["get"]["parameters"] if p["name"] == "service"]
    assert parameter["schema"]["enum"] == list(SERVICE_NAMES)
    response = check(schema, path, "GET", path_parameters={"service": "prices"})
    assert response.status_code == 404
    assert response.json()["detail"]["available_services"] == list(SERVICE_NAMES)


def test_an_unknown_coin_is_a_declared_404(schema: Any) -> None:
    response = check(schema, "/api/history/market_data/{coin}", "GET", path_parameters={"coin": "nocoin"})
    assert response.status_code == 404 and "No stored prices" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("TRACE", "/healthz", "GET"), ("PUT", "/ws/stats", "GET"), ("DELETE", "/api/news", "GET"),
    ("OPTIONS", "/api/sentiment", "POST"), ("HEAD", "/api/history/news", "GET"),
    ("POST", "/api/history/market_data/bitcoin", "GET")])
def test_an_undeclared_method_is_a_405_with_allow(server: LiveServer, method: str, path: str, allow: str) -> None:
    """Found: such requests fell through to Gradio's 404; and Allow must list what the document declares for
    the path (a concrete path before a templated one, as OpenAPI matches them)."""
    response = httpx.request(method, server.base + path)
    assert response.status_code == 405 and response.headers["allow"] == allow


def test_gradio_routes_stay_out_of_the_document(schema: Any, server: LiveServer) -> None:
    paths = schema.raw_schema["paths"]
    assert set(paths) == {"/healthz", "/api/history/market_data/{coin}", "/api/history/{service}",
                          "/api/export/{service}", "/api/providers", "/api/sentiment", "/ws/stats", "/ws/runtime",
                          "/ws/services", "/ws/endpoints", "/api/{service}"}
    assert httpx.get(f"{server.base}/config").status_code == 200  # Gradio still serves its own routes


def test_every_operation_declares_its_bodies_and_has_examples(schema: Any) -> None:
    for path, item in schema.raw_schema["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                assert "application/json" in response.get("content", {}), (method, path, status)
            has_example = any("examples" in p for p in operation.get("parameters", ()))
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body is not None:
                name = body["$ref"].rsplit("/", 1)[1]
                props = schema.raw_schema["components"]["schemas"][name]["properties"]
                has_example = has_example or any("examples" in p for p in props.values())
            if not operation.get("parameters") and body is None:  # nothing to send: an example of the answer
                ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
                target = schema.raw_schema["components"]["schemas"][ok["$ref"].rsplit("/", 1)[1]]
                has_example = "examples" in target
            assert has_example, (method, path)


# -- the time parameters, exactly as documented -------------------------------------------------------------

@pytest.mark.parametrize(("value", "seconds"), [
    ("2026-11-26T10:00:00Z", 1795687200.0), ("2026-11-26t10:00:00.5+01:30", 1795681800.5),
    ("2016-12-31T23:59:60Z", 1483228800.0), ("0000-01-01T00:00:00Z", -62167219200.0), ("0", 0.0),
    ("1.5e3", 1500.0), (str(int(MAX_UNIX_SECONDS)), MAX_UNIX_SECONDS), ("", None)])
def test_times_the_document_calls_valid_are_accepted(value: str, seconds: float | None) -> None:
    assert _moment("since", value) == seconds


@pytest.mark.parametrize("value", ["null", "nan", "inf", "-1", "1e300", "1_000", " 5", "2026-11-26T10:00:00",
                                   "2026-02-29T00:00:00Z", "2026-11-26 10:00:00Z", "2026-11-26T10:00:00+24:00"])
def test_times_the_document_calls_invalid_are_refused(value: str) -> None:
    from fastapi.exceptions import RequestValidationError
    with pytest.raises(RequestValidationError):
        _moment("since", value)


def test_the_405_route_does_not_build_the_document() -> None:
    """Building the OpenAPI document takes over a second on the event loop: the 405 route reads the routes."""
    from fastapi import APIRouter, FastAPI
    from starlette.testclient import TestClient

    from api.methods import MethodNotAllowed
    app = FastAPI()
    router = APIRouter()
    router.add_api_route("/api/{service}", lambda service: {}, methods=["GET"])
    router.add_api_route("/api/sentiment", lambda: {}, methods=["POST"])
    router.add_api_route("/hidden", lambda: {}, methods=["GET"], include_in_schema=False)
    app.include_router(router)
    route = MethodNotAllowed(lambda: app.routes)
    app.router.routes.append(route)
    with TestClient(app) as client:
        assert client.request("TRACE", "/api/news").headers["allow"] == "GET"
        assert client.put("/api/sentiment").headers["allow"] == "POST"  # the concrete path wins
    assert route._allowed("/hidden") is None  # not in the document: not ours to answer
    assert app.openapi_schema is None
