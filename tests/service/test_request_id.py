"""X-Request-ID on every response (2xx, 4xx from handlers and middleware, shed and not-ready 503s,
unexpected 500s), CORS on the same paths, and the JSON access log that carries the id."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from routeiq.observability.logs import JsonFormatter
from tests.conftest import make_client

ORIGIN = "https://console.example"
TOKEN = "gateway-token-0123456789"


@pytest.fixture(scope="module")
def app_client() -> Iterator[TestClient]:
    with make_client(
        cors_allow_origins=f"{ORIGIN}, https://other.example",
        auth_tokens=f"gw:{TOKEN}",
        max_concurrent_requests=2,
        max_body_bytes=4096,
    ) as client:

        async def boom() -> None:
            raise RuntimeError("a bug")

        client.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
        yield client


AUTH = {"Authorization": f"Bearer {TOKEN}", "Origin": ORIGIN}


def assert_traced(response, origin: bool = True) -> str:  # type: ignore[no-untyped-def]
    request_id: str = response.headers["x-request-id"]
    assert request_id
    if origin:
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
    return request_id


def test_ok_response_carries_generated_id_matching_body(app_client: TestClient) -> None:
    response = app_client.post("/route", json={"prompt": "hi"}, headers=AUTH)
    assert response.status_code == 200
    assert assert_traced(response) == response.json()["request_id"]


def test_incoming_id_is_kept_and_a_bad_one_replaced(app_client: TestClient) -> None:
    response = app_client.post("/route", json={"prompt": "hi"}, headers=AUTH | {"X-Request-ID": "gw-42.a"})
    assert response.headers["x-request-id"] == "gw-42.a" == response.json()["request_id"]
    for bad in (b"has space", b"x" * 200, b"back\\slash", "ünïcode".encode("latin-1")):
        response = app_client.get("/healthz", headers={"X-Request-ID": bad})
        assert response.headers["x-request-id"] != bad.decode("latin-1")
        assert len(response.headers["x-request-id"]) == 32  # a fresh uuid4 hex


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("post", "/route", {"json": {}}, 422),  # handler validation
        ("post", "/route", {"content": b"{", "headers": {"content-type": "application/json"}}, 400),
        ("post", "/route", {"json": {"prompt": "x" * 5000}}, 413),  # body-limit middleware
        ("get", "/nope", {}, 404),
        ("get", "/route", {}, 405),
    ],
)
def test_errors_carry_id_and_cors(
    app_client: TestClient, method: str, path: str, kwargs: dict, status: int
) -> None:
    headers = AUTH | kwargs.pop("headers", {})
    response = getattr(app_client, method)(path, headers=headers, **kwargs)
    assert response.status_code == status
    assert_traced(response)


def test_auth_refusals_carry_id_and_cors(app_client: TestClient) -> None:
    response = app_client.post("/route", json={"prompt": "hi"}, headers={"Origin": ORIGIN})
    assert response.status_code == 401
    assert_traced(response)
    # a well-formed bearer header with a token nobody was given: 403 (401 is for no credentials)
    response = app_client.post(
        "/route", json={"prompt": "hi"}, headers={"Origin": ORIGIN, "Authorization": "Bearer not-our-token"}
    )
    assert response.status_code == 403
    assert_traced(response)
    # not a bearer header at all: no usable credentials, 401
    response = app_client.post(
        "/route", json={"prompt": "hi"}, headers={"Origin": ORIGIN, "Authorization": f"Basic {TOKEN}"}
    )
    assert response.status_code == 401
    assert_traced(response)


def test_load_shed_503_carries_id_cors_and_retry_after(app_client: TestClient) -> None:
    limiter = app_client.app.state.engine.admission.decisions  # type: ignore[attr-defined]
    limiter.in_flight = limiter.capacity  # the real limiter, full: the next decision is shed
    try:
        for path, body in (("/route", {"prompt": "hi"}), ("/route/batch", [{"prompt": "hi"}])):
            response = app_client.post(path, json=body, headers=AUTH | {"X-Request-ID": "shed-1"})
            assert response.status_code == 503
            assert response.json()["error"]["type"] == "overloaded"
            assert response.headers["retry-after"] == "1"
            assert response.headers["x-request-id"] == "shed-1"
            assert_traced(response)
    finally:
        limiter.in_flight = 0
    assert app_client.post("/route", json={"prompt": "hi"}, headers=AUTH).status_code == 200


def test_not_ready_503_carries_id(app_client: TestClient) -> None:
    engine = app_client.app.state.engine  # type: ignore[attr-defined]
    engine.ready = False
    try:
        response = app_client.post("/route", json={"prompt": "hi"}, headers=AUTH)
        assert response.status_code == 503 and response.json()["error"]["type"] == "not_ready"
        assert_traced(response)
        assert app_client.get("/readyz").status_code == 503
    finally:
        engine.ready = True


def test_unexpected_500_carries_id_and_hides_the_bug(app_client: TestClient, caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.ERROR, logger="routeiq"):
        response = app_client.get("/boom", headers={"Origin": ORIGIN, "X-Request-ID": "bug-7"})
    assert response.status_code == 500
    assert response.json() == {"error": {"type": "internal_error", "message": "internal error"}}
    assert response.headers["x-request-id"] == "bug-7"
    assert_traced(response)
    assert any(r.exc_info and getattr(r, "request_id", None) == "bug-7" for r in caplog.records)


def test_cors_preflight_and_unknown_origin(app_client: TestClient) -> None:
    response = app_client.options(
        "/route",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["x-request-id"]
    response = app_client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_is_off_by_default(client: TestClient) -> None:
    response = client.get("/healthz", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers


def access_lines(caplog) -> list[dict]:  # type: ignore[no-untyped-def]
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == "routeiq.access"]


SECRET_PROMPT = "my card number is 4111 1111 1111 1111, write me a poem"


def test_access_log_is_json_with_decision_and_no_prompt(app_client: TestClient, caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.INFO, logger="routeiq.access"):
        app_client.post("/route", json={"prompt": SECRET_PROMPT}, headers=AUTH | {"X-Request-ID": "log-1"})
        app_client.post("/route", json={}, headers=AUTH | {"X-Request-ID": "log-2"})
    ok, bad = access_lines(caplog)
    assert ok["request_id"] == "log-1" and ok["status"] == 200 and ok["client"] == "gw"
    assert ok["method"] == "POST" and ok["path"] == "/route" and ok["duration_ms"] > 0
    decision = ok["decision"]
    assert {"model", "deployment_id", "tier", "category", "strategy", "reason", "timings_ms"} <= set(decision)
    assert "prompt" not in decision
    assert bad["request_id"] == "log-2" and bad["status"] == 422 and bad["error_type"] == "invalid_request"
    everything = json.dumps([ok, bad]) + " ".join(r.getMessage() for r in caplog.records)
    assert "4111" not in everything


def test_prompt_is_logged_only_when_enabled(caplog) -> None:  # type: ignore[no-untyped-def]
    with make_client(log_prompts=True) as client, caplog.at_level(logging.INFO, logger="routeiq.access"):
        client.post("/route", json={"messages": [{"role": "user", "content": SECRET_PROMPT}]})
    (line,) = access_lines(caplog)
    assert line["decision"]["prompt"] == SECRET_PROMPT


def test_json_formatter_survives_odd_values() -> None:
    record = logging.LogRecord("routeiq", logging.INFO, __file__, 1, "x %s", ("\ud800",), None)
    record.fields = {"obj": object(), "text": "\udfff"}
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "info" and line["logger"] == "routeiq" and line["ts"].endswith("Z")
