"""The metrics an SRE expects on a fresh /metrics scrape: HTTP requests by route and status,
process and Python collectors, a deployment label on decisions, counters present at 0."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests._harness import ServeProcess, free_port
from tests.conftest import make_client


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_fresh_scrape_has_zero_counters_and_process_collectors() -> None:
    with make_client() as client:
        samples = _samples(client.get("/metrics").text)
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"):
        assert name in samples, name
    assert any(k.startswith("python_gc_") for k in samples)
    rejected = {labels["reason"]: v for labels, v in samples["routeiq_requests_rejected_total"]}
    assert rejected == {"overloaded": 0.0, "queue_full": 0.0, "deadline": 0.0}
    errors = {labels["type"] for labels, _ in samples["routeiq_errors_total"]}
    assert {"overloaded", "invalid_request", "no_candidate", "internal_error"} <= errors
    assert {labels["result"] for labels, _ in samples["routeiq_embedding_cache_total"]} >= {"hit", "miss"}
    assert samples["routeiq_state_degraded"] == [({}, 0.0)]
    assert samples["routeiq_premium_budget_downgrades_total"] == [({}, 0.0)]
    assert {labels["outcome"] for labels, _ in samples["routeiq_feedback_outcomes_total"]} == {
        "success",
        "failure",
    }


def test_http_requests_by_route_template_and_status_and_deployment_label() -> None:
    with make_client() as client:
        body = {"prompt": "hi", "candidates": [{"deployment_id": "eu-1", "model": "x/small"}]}
        assert client.post("/route", json=body).status_code == 200
        assert client.post("/route", json={"prompt": ""}).status_code == 422
        assert client.get("/no/such/path/abc123").status_code == 404
        samples = _samples(client.get("/metrics").text)
    http = {
        (labels["method"], labels["route"], labels["status"]): v
        for labels, v in samples["routeiq_http_requests_total"]
    }
    assert http[("POST", "/route", "200")] == 1
    assert http[("POST", "/route", "422")] == 1
    # An unmatched path is one series, never the path itself (scanners would grow one per URL).
    assert http[("GET", "unmatched", "404")] == 1
    assert not any("abc123" in route for _, route, _ in http)
    counts = [
        v
        for labels, v in samples["routeiq_http_request_duration_seconds_count"]
        if labels["route"] == "/route" and labels["method"] == "POST"
    ]
    assert sum(counts) == 2
    decided = [labels for labels, v in samples["routeiq_decisions_total"] if v > 0]
    assert decided and decided[0]["deployment"] == "eu-1" and decided[0]["model"] == "x/small"


def test_metrics_only_listener_serves_metrics_and_nothing_else(tmp_path: Path) -> None:
    port = free_port()
    with ServeProcess(tmp_path, metrics_port=port, metrics_host="127.0.0.1") as server:
        assert httpx.post(f"{server.url}/route", json={"prompt": "hi"}, trust_env=False).status_code == 200
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", trust_env=False)
        assert scraped.status_code == 200 and "routeiq_decisions_total{" in scraped.text
        route = httpx.post(f"http://127.0.0.1:{port}/route", json={"prompt": "hi"}, trust_env=False)
        assert route.status_code != 200


def test_unknown_http_methods_are_one_label_value() -> None:
    with make_client() as client:
        for method in ("BREW", "WHEN", "XYZZY"):
            client.request(method, "/route")
        samples = _samples(client.get("/metrics").text)
    methods = {labels["method"] for labels, _ in samples["routeiq_http_requests_total"]}
    assert methods <= {"GET", "POST", "other"} and "other" in methods
