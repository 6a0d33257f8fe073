"""Every request limit: the status, the field, the limit and the setting's name in the message."""

from __future__ import annotations

import json

import pytest

from routeiq.http.request_limits import scrub
from tests.conftest import make_client

LIMITS = {
    "max_messages": 3,
    "max_candidates": 2,
    "max_tools": 2,
    "max_content_parts": 2,
    "max_message_chars": 100,
    "max_total_chars": 250,
    "max_json_depth": 4,
    "max_batch_size": 3,
}


@pytest.fixture(scope="module")
def small():  # type: ignore[no-untyped-def]
    with make_client(**LIMITS) as client:
        yield client


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def cand(i: int) -> dict:
    return {"deployment_id": f"d{i}", "model": f"m{i}"}


@pytest.mark.parametrize(
    ("body", "status", "field", "setting"),
    [
        ({"messages": [user("hi")] * 4}, 413, "messages", "max_messages"),
        ({"prompt": "hi", "candidates": [cand(i) for i in range(3)]}, 413, "candidates", "max_candidates"),
        ({"prompt": "hi", "tools": [{"type": "function"}] * 3}, 413, "tools", "max_tools"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}] * 3}]},
            413,
            "messages.0.content",
            "max_content_parts",
        ),
        ({"messages": [user("x" * 101)]}, 413, "messages.0.content", "max_message_chars"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "x" * 60}] * 2}]},
            413,
            "messages.0.content",
            "max_message_chars",
        ),
        ({"prompt": "x" * 101}, 413, "prompt", "max_message_chars"),
        ({"input": ["ok", "x" * 101]}, 413, "input.1", "max_message_chars"),
        ({"messages": [user("x" * 90)] * 3}, 413, "body", "max_total_chars"),
        ({"prompt": ["x" * 90] * 3}, 413, "body", "max_total_chars"),
        ({"prompt": "hi", "metadata": {"a": {"b": {"c": {"d": {}}}}}}, 422, "metadata", "max_json_depth"),
        ({"prompt": "hi", "tools": [{"f": [[[{}]]]}]}, 422, "tools", "max_json_depth"),
        (
            {"messages": [{"role": "user", "content": "hi", "extra": [[[[1]]]]}]},
            422,
            "messages.0",
            "max_json_depth",
        ),
        (
            {"messages": [{"role": "assistant", "content": None, "tool_calls": [{"f": {"a": {"b": {}}}}]}]},
            422,
            "messages.0",
            "max_json_depth",
        ),
    ],
)
def test_each_limit_names_itself(small, body: dict, status: int, field: str, setting: str) -> None:  # type: ignore[no-untyped-def]
    response = small.post("/route", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert error["limit"] == LIMITS[setting]
    assert f"ROUTEIQ_{setting.upper()}" in error["message"]


def test_at_the_limit_is_accepted(small) -> None:  # type: ignore[no-untyped-def]
    body = {
        "messages": [user("x" * 100), {"role": "assistant", "content": "y" * 50}, user("z" * 100)],
        "candidates": [cand(0), cand(1)],
        "tools": [{"type": "function", "function": {"parameters": {}}}] * 2,  # 4 levels with the list
        "metadata": {"a": {"b": {"c": {}}}},
    }
    response = small.post("/route", json=body)
    assert response.status_code == 200, response.text


def test_batch_items_are_checked_with_their_index(small) -> None:  # type: ignore[no-untyped-def]
    response = small.post("/route/batch", json=[{"prompt": "ok"}, {"prompt": "x" * 101}])
    assert response.status_code == 413
    assert response.json()["error"]["field"] == "1.prompt"
    response = small.post("/route/batch", json=[{"prompt": "ok"}] * 4)
    assert response.status_code == 413 and response.json()["error"]["limit"] == 3


def test_feedback_outcome_count_is_bounded(client) -> None:  # type: ignore[no-untyped-def]
    outcome = {"deployment_id": "a", "success": True}
    response = client.post("/feedback", json={"outcomes": [outcome] * 1001})
    # refused by the list's length before a single outcome is validated
    assert response.status_code == 413 and response.json()["error"]["field"] == "outcomes"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"prompt": "\\ud800 lone surrogate"}',
        b'{"messages": [{"role": "user", "content": "x \\udfff y"}]}',
        b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "\\ud83d"}]}]}',
        b'{"input": ["\\udc00", "fine"]}',
        b'{"prompt": "\\u0000\\u0007\\u001b[31m control \\u202e"}',
    ],
)
def test_unencodable_and_control_text_is_routed(client, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/route", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    batch = b"[" + raw + b"]"
    response = client.post("/route/batch", content=batch, headers={"content-type": "application/json"})
    assert response.status_code == 200 and "error" not in response.json()["results"][0]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'{"prompt": "hi", "metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400),  # parser gives up
        (b'{"prompt": "hi", "metadata": {"a": ' + b"[" * 500 + b"]" * 500 + b"}}", 422),
        (
            b'{"prompt": "hi", "candidates": [{"deployment_id": "a", "model": "m", "max_input_tokens": '
            + b"9" * 5000
            + b"}]}",
            400,
        ),
        (
            b'{"prompt": "hi", "candidates": [{"deployment_id": "a", "model": "m", "max_input_tokens": 1e999}]}',
            422,
        ),
        (b'{"prompt": "hi", "candidates": [{"deployment_id": "a", "model": "m", "quality": NaN}]}', 422),
        (
            b'{"prompt": "hi", "candidates": [{"deployment_id": "a", "model": "m", "input_cost_per_mtok": -1}]}',
            422,
        ),
        (b'{"prompt": 12345678901234567890}', 422),
        (b'{"prompt": "hi", "explain": 1e308}', 422),
        (b'{"prompt": {"text": "hi"}}', 422),
        (
            b'{"messages": [{"role": "user", "content": [{"type": "text", "text": {"nested": ["deep"]}}]}]}',
            422,
        ),
        (b'{"messages": [{"role": "user", "content": [[{"type": "text", "text": "hi"}]]}]}', 422),
    ],
)
def test_hostile_json_is_a_clean_4xx(client, raw: bytes, status: int) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/route", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and response.json()["error"]["type"]


def test_scrub_keeps_valid_text_and_repairs_lone_surrogates() -> None:
    assert scrub("héllo 🙂") == "héllo 🙂"
    assert scrub("a\ud800b") == "a\ufffdb"
    assert json.dumps(scrub("\udfff")) == '"\\ufffd"'


def test_caller_model_names_cannot_grow_metrics_without_bound() -> None:
    with make_client() as client:
        client.app.state.engine.metrics.model_label.limit = 5  # type: ignore[attr-defined]
        for i in range(12):
            body = {"prompt": "hi", "candidates": [{"deployment_id": f"d{i}", "model": f"random-model-{i}"}]}
            assert client.post("/route", json=body).status_code == 200
        scraped = client.get("/metrics").text
    models = {
        line.split('model="')[1].split('"')[0]
        for line in scraped.splitlines()
        if "routeiq_decisions_total{" in line
    }
    assert len(models) == 6 and "other" in models
