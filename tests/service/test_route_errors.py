"""Bad input gets a clear 4xx JSON error that names the problem; never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_client


def error_of(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(
    ("body", "status", "kind", "field"),
    [
        ({}, 422, "invalid_request", "body"),
        ({"messages": []}, 422, "invalid_request", "messages"),
        ({"messages": "hello"}, 422, "invalid_request", "messages"),
        ({"messages": [{"content": "no role"}]}, 422, "invalid_request", "messages.0.role"),
        ({"messages": [{"role": "user", "content": 42}]}, 422, "invalid_request", "messages.0.content.str"),
        ({"messages": [{"role": "assistant", "content": ""}]}, 422, "invalid_request", "messages"),
        ({"prompt": "   "}, 422, "invalid_request", "prompt"),
        ({"prompt": "hi", "profile": "nope"}, 422, "unknown_profile", "profile"),
        ({"prompt": "hi", "explain": "very"}, 422, "invalid_request", "explain"),
        (
            {"prompt": "hi", "candidates": [{"deployment_id": "x"}]},
            422,
            "invalid_request",
            "candidates.0.model",
        ),
        (
            {
                "prompt": "hi",
                "candidates": [{"deployment_id": "x", "model": "m", "input_cost_per_mtok": 1e300}],
            },
            422,
            "invalid_request",
            "candidates.0.input_cost_per_mtok",
        ),
        ([1, 2], 422, "invalid_request", "body"),
        (
            {
                "prompt": "hi",
                "candidates": [{"deployment_id": "x", "model": "m"}, {"deployment_id": "x", "model": "n"}],
            },
            422,
            "invalid_request",
            "candidates",
        ),
    ],
)
def test_invalid_bodies(client: TestClient, body: object, status: int, kind: str, field: str) -> None:
    response = client.post("/route", json=body)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["type"] == kind
    assert error["field"] == field


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post("/route", content=b'{"prompt": "hi"', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert error_of(response)["type"] == "bad_request"


def test_unknown_profile_header_names_the_header(client: TestClient) -> None:
    response = client.post("/route", json={"prompt": "hi"}, headers={"X-RouteIQ-Profile": "gold"})
    assert response.status_code == 422
    error = error_of(response)
    assert error["field"] == "X-RouteIQ-Profile" and "eco" in error["message"]


def test_no_candidate_can_satisfy_lists_why(client: TestClient) -> None:
    body = {
        "prompt": "describe this",
        "messages": None,
        "tools": [{"type": "function"}],
        "candidates": [
            {"deployment_id": "a", "model": "m1", "supports_tools": False},
            {"deployment_id": "b", "model": "m2", "supports_tools": False},
        ],
    }
    response = client.post("/route", json=body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["type"] == "no_candidate"
    assert error["excluded"] == {"a": "needs_tools", "b": "needs_tools"}


def test_oversized_body_is_413_before_parsing() -> None:
    with make_client(max_body_bytes=2048) as small:
        response = small.post("/route", json={"prompt": "x" * 5000})
        assert response.status_code == 413
        error = error_of(response)
        assert error["type"] == "payload_too_large" and error["limit"] == 2048
        assert response.headers["x-request-id"]
        # a chunked body without Content-Length is counted as it streams
        chunks = iter([b'{"prompt": "', b"y" * 4000, b'"}'])
        response = small.post("/route", content=chunks, headers={"content-type": "application/json"})
        assert response.status_code == 413


def test_batch_limits() -> None:
    with make_client(max_batch_size=2) as small:
        response = small.post("/route/batch", json=[{"prompt": "a"}] * 3)
        assert response.status_code == 413 and error_of(response)["limit"] == 2
        assert small.post("/route/batch", json=[]).status_code == 422


def test_unknown_path_and_method_are_json(client: TestClient) -> None:
    assert error_of(client.get("/nope"))["type"] == "not_found"
    assert error_of(client.get("/route"))["type"] == "method_not_allowed"


def test_weird_unicode_is_routed_not_crashed(client: TestClient) -> None:
    for text in (
        "\x00\x01\x02 control",
        "\ud800 lone surrogate".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
        "🙂" * 500,
        "\u202e\u200b zero width",
        "a" * 100_000,
    ):
        response = client.post("/route", json={"prompt": text})
        assert response.status_code == 200, response.text
