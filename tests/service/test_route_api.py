"""POST /route and friends, in process, on the real engine (real ONNX model, bundled config)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import make_client

CODE = "Write a Python function that merges two sorted lists"


def route(client: TestClient, body: dict, **headers: str) -> dict:
    response = client.post("/route", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_code_prompt_goes_to_a_premium_model_under_auto(client: TestClient) -> None:
    decision = route(client, {"prompt": CODE})
    assert decision["category"] == "code_generation"
    assert decision["profile"] == "auto"
    catalog = {m["deployment_id"]: m for m in client.get("/v1/catalog").json()["models"]}
    assert catalog[decision["deployment_id"]]["tier"] == "premium"
    assert decision["fallbacks"] and decision["deployment_id"] not in decision["fallbacks"]
    assert 0.0 <= decision["complexity"] <= 1.0 and 0.0 <= decision["confidence"] <= 1.0
    assert decision["strategy"] == "centroid"
    assert set(decision["timings_ms"]) >= {"signals", "embed", "classify", "select", "total"}


def test_greeting_under_eco_goes_to_a_budget_model(client: TestClient) -> None:
    decision = route(
        client,
        {"messages": [{"role": "user", "content": "hi, how are you?"}]},
        **{"X-RouteIQ-Profile": "eco"},
    )
    assert decision["profile"] == "eco" and decision["category"] == "conversation"
    assert decision["tier"] in ("trivial", "simple")
    catalog = {m["deployment_id"]: m for m in client.get("/v1/catalog").json()["models"]}
    assert catalog[decision["deployment_id"]]["tier"] == "budget"


def test_explain_lists_signals_scores_and_every_candidate(client: TestClient) -> None:
    decision = route(client, {"prompt": CODE, "explain": True, "tools": [{"type": "function"}]})
    assert decision["signals"]["code"] is True and decision["signals"]["tools"] == 1
    assert set(decision["scores"]["category"]) >= {"code_generation", "conversation"}
    rows = decision["candidates"]
    assert rows[0]["rank"] == 0 and rows[0]["deployment_id"] == decision["deployment_id"]
    excluded = [r for r in rows if r.get("excluded")]
    assert excluded and all(r["excluded"] in ("needs_tools",) for r in excluded)


def test_requested_model_group_narrows_the_catalog(client: TestClient) -> None:
    decision = route(client, {"prompt": CODE, "model": "gpt-4o-mini"})
    assert decision["deployment_id"] == "gpt-4o-mini"


def test_candidates_override_the_catalog(client: TestClient) -> None:
    body = {
        "prompt": "hello there",
        "candidates": [
            {"deployment_id": "a", "model": "openai/gpt-4o-mini", "model_group": "g"},
            {"deployment_id": "b", "model": "openai/gpt-4o", "model_group": "g"},
        ],
    }
    decision = route(client, body)
    assert decision["deployment_id"] in ("a", "b") and decision["model_group"] == "g"
    assert decision["fallbacks"] == [x for x in ("a", "b") if x != decision["deployment_id"]]


def test_session_affinity_keeps_the_model(client: TestClient) -> None:
    first = route(client, {"prompt": "hi!", "session_id": "s-1"})
    second = route(client, {"prompt": CODE, "session_id": "s-1"})
    assert second["strategy"] == "session" and second["deployment_id"] == first["deployment_id"]
    other = route(client, {"prompt": CODE, "session_id": "s-2"})
    assert other["strategy"] != "session"
    # a different profile is a new decision, except inside a tool loop
    switched = route(client, {"prompt": CODE, "session_id": "s-1", "profile": "premium"})
    assert switched["strategy"] != "session"


def test_tool_loop_never_switches_models(client: TestClient) -> None:
    tools = [{"type": "function", "function": {"name": "search"}}]
    opening = [
        {"role": "system", "content": "You are an agent."},
        {"role": "user", "content": "Find the cheapest flight to Lisbon"},
    ]
    first = route(client, {"messages": opening, "tools": tools})
    loop = [
        *opening,
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "[...results...]"},
    ]
    for profile in (None, "eco"):
        decision = route(client, {"messages": loop, "tools": tools, "profile": profile})
        assert decision["strategy"] == "session" and decision["reason"] == "session_affinity:tool_loop"
        assert decision["deployment_id"] == first["deployment_id"]


def test_batch_mixes_results_and_item_errors(client: TestClient) -> None:
    response = client.post("/route/batch", json=[{"prompt": CODE}, {"prompt": "x", "profile": "nope"}])
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["category"] == "code_generation"
    assert results[1]["error"]["type"] == "unknown_profile" and results[1]["error"]["index"] == 1


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    response = client.post("/route", json={"prompt": "hi"}, headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123" and response.json()["request_id"] == "abc-123"
    generated = client.post("/route", json={"prompt": "hi"}).headers["x-request-id"]
    assert len(generated) == 32
    assert client.post("/route", content=b"{").headers["x-request-id"]
    bad = client.post("/route", json={"prompt": "hi"}, headers={"X-Request-ID": "no spaces allowed"})
    assert bad.headers["x-request-id"] != "no spaces allowed"


def test_health_ready_catalog_profiles_docs(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["state"] == "memory"
    profiles = client.get("/v1/profiles").json()
    assert profiles["default"] == "auto" and "eco" in profiles["profiles"]
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/route" in spec["paths"] and "/route/batch" in spec["paths"]


def test_metrics_count_decisions_stages_and_cache(client: TestClient) -> None:
    route(client, {"prompt": "metrics probe prompt"})
    route(client, {"prompt": "metrics probe prompt"})
    text = client.get("/metrics").text
    assert 'routeiq_decision_duration_seconds_bucket{le="0.001",stage="embed"}' in text
    assert 'routeiq_embedding_cache_total{result="hit"}' in text
    assert "routeiq_decisions_total{" in text and 'profile="auto"' in text


def test_feedback_is_validated_and_aggregated(client: TestClient) -> None:
    ok = client.post(
        "/feedback",
        json={
            "outcomes": [
                {"deployment_id": "gpt-4o", "success": True, "latency_ms": 120},
                {"deployment_id": "gpt-4o", "success": False, "error_class": "RateLimitError"},
            ]
        },
    )
    assert ok.status_code == 200 and ok.json() == {"accepted": 2}
    stats = client.get("/v1/deployments/stats").json()["deployments"]["gpt-4o"]
    assert stats["successes"] >= 1 and stats["errors"]["RateLimitError"] >= 1
    bad = client.post("/feedback", json={"outcomes": [{"deployment_id": "x", "success": "maybe"}]})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "outcomes.0.success"


def test_not_ready_before_lifespan() -> None:
    client = make_client()  # not entered: lifespan has not run
    response = client.post("/route", json={"prompt": "hi"})
    assert response.status_code == 503 and response.json()["error"]["type"] == "not_ready"
    assert response.headers["retry-after"] == "1" and response.headers["x-request-id"]
