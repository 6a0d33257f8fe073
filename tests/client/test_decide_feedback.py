"""Decider and FeedbackReporter over httpx transports that answer in-process (the real
service and stub servers are exercised in tests/integration)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from routeiq_client import (
    CircuitBreaker,
    ClientConfig,
    ClientMetrics,
    Decider,
    Fallback,
    FeedbackReporter,
    Ranking,
    RouteIQClient,
)

HEALTHY = [
    {"model_name": "g", "litellm_params": {"model": f"m{i}"}, "model_info": {"id": f"d{i}"}} for i in range(3)
]
HI = [{"role": "user", "content": "hi"}]


def decider(handler: Any, registry: CollectorRegistry | None = None, threshold: int = 5) -> Decider:
    config = ClientConfig(url="http://sidecar", failure_threshold=threshold)
    http = httpx.AsyncClient(base_url=config.url, transport=httpx.MockTransport(handler))
    metrics = ClientMetrics(registry=registry or CollectorRegistry())
    return Decider(RouteIQClient(config, http), CircuitBreaker(threshold, 60), metrics)


def rank_many(d: Decider, n: int, healthy: list[dict[str, Any]] = HEALTHY) -> list[Ranking | Fallback]:
    async def go() -> list[Ranking | Fallback]:
        return [await d.rank("g", healthy, HI, None, {}) for _ in range(n)]

    return asyncio.run(go())


def test_the_answer_and_its_fallbacks_rank_models_each_once() -> None:
    two_regions = [
        *HEALTHY,
        {"model_name": "g", "litellm_params": {"model": "m2"}, "model_info": {"id": "d2b"}},
    ]
    answer = {"deployment_id": "d2", "fallbacks": ["nope", "d2b", "d0"]}
    d = decider(lambda request: httpx.Response(200, json=answer))
    (ranking,) = rank_many(d, 1, two_regions)
    assert isinstance(ranking, Ranking) and ranking.models == ["m2", "m0"]  # m1: not named, left out
    assert d.metrics.snapshot()["decisions"] == {"sidecar": 1}


@pytest.mark.parametrize(
    ("response", "reason", "trips"),
    [
        (httpx.Response(500), "http_error", True),
        (httpx.Response(403, json={"error": {"message": "unknown token"}}), "unauthorized", True),
        (httpx.Response(503), "overloaded", True),
        (httpx.Response(200, content=b"[1]"), "bad_response", True),
        (httpx.Response(200, json={"deployment_id": "gone"}), "unknown_deployment", False),
    ],
)
def test_sidecar_failures_are_fallbacks(response: httpx.Response, reason: str, trips: bool) -> None:
    d = decider(lambda request: response, threshold=2)
    outcomes = rank_many(d, 3)
    assert all(isinstance(o, Fallback) and not o.rejected for o in outcomes)
    counts = d.metrics.snapshot()["decisions"]
    if trips:  # two failures open the circuit: the third request does not ask
        assert counts == {f"fallback:{reason}": 2, "circuit_open": 1}
    else:
        assert counts == {f"fallback:{reason}": 3}


def test_a_rejection_names_the_service_error_type_and_keeps_the_circuit_closed() -> None:
    error = {"error": {"type": "unknown_profile", "message": "unknown profile 'ecoo'"}}
    d = decider(lambda request: httpx.Response(422, json=error), threshold=1)
    outcomes = rank_many(d, 2)
    assert all(isinstance(o, Fallback) and o.rejected and o.error_type == "unknown_profile" for o in outcomes)
    assert d.breaker.state == "closed"
    assert d.metrics.snapshot()["decisions"] == {"rejected": 2}


def test_no_text_never_calls() -> None:
    calls: list[httpx.Request] = []
    d = decider(lambda request: calls.append(request) or httpx.Response(200, json={"deployment_id": "d0"}))
    (outcome,) = asyncio.run(_rank_tokens(d))
    assert calls == [] and isinstance(outcome, Fallback)
    assert d.metrics.snapshot()["decisions"] == {"fallback:no_text": 1}


async def _rank_tokens(d: Decider) -> list[Ranking | Fallback]:
    return [await d.rank("g", HEALTHY, None, [[1, 2]], {})]


def test_prometheus_metrics_and_rate_limited_logs(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    d = decider(lambda request: httpx.Response(500), registry, threshold=100)
    with caplog.at_level(logging.WARNING, logger="routeiq_client"):
        rank_many(d, 5)
    assert (
        registry.get_sample_value(
            "routeiq_client_decisions_total", {"source": "fallback", "reason": "http_error"}
        )
        == 5
    )
    assert (
        registry.get_sample_value("routeiq_client_decision_duration_seconds_count", {"source": "fallback"})
        == 5
    )
    assert len([r for r in caplog.records if "not used (http_error)" in r.getMessage()]) == 1


def test_feedback_batches_and_counts_drops() -> None:
    received: list[list[dict[str, Any]]] = []
    fail = {"on": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if fail["on"]:  # refused for good (429 / 503 are "not now": held, see test_feedback_quota)
            return httpx.Response(500)
        received.append(json.loads(request.content)["outcomes"])
        return httpx.Response(200, json={"accepted": len(received[-1])})

    config = ClientConfig(url="http://sidecar", feedback_batch=2, feedback_queue=3, feedback_interval_s=0.01)
    metrics = ClientMetrics(registry=CollectorRegistry())
    reporter = FeedbackReporter(config, metrics, transport=httpx.MockTransport(handler))
    try:
        for i in range(3):
            reporter.report(
                f"d{i}", success=i != 1, latency_ms=12.5, error_class="RateLimitError" if i == 1 else None
            )
        assert reporter.flush()
        assert [o["deployment_id"] for batch in received for o in batch] == ["d0", "d1", "d2"]
        assert all(len(batch) <= 2 for batch in received)
        outcomes = {o["deployment_id"]: o for batch in received for o in batch}
        assert outcomes["d1"] == {
            "deployment_id": "d1",
            "success": False,
            "latency_ms": 12.5,
            "error_class": "RateLimitError",
        }
        fail["on"] = True
        reporter.report("d9", success=True)
        assert reporter.flush()
    finally:
        reporter.close()
    assert metrics.snapshot()["feedback"] == {"sent": 3, "dropped": 1}


def test_feedback_queue_is_bounded() -> None:
    config = ClientConfig(
        url="http://127.0.0.1:9", feedback_queue=2, feedback_interval_s=60, feedback_batch=10
    )
    metrics = ClientMetrics(prometheus=False)
    reporter = FeedbackReporter(config, metrics)
    reporter.close()  # closed: nothing more is queued, all is dropped and counted
    for i in range(3):
        reporter.report(f"d{i}", success=True)
    assert metrics.snapshot()["feedback"] == {"dropped": 3}


def test_the_feedback_thread_survives_an_error_that_is_not_an_http_error() -> None:
    """A transport bug (any exception) drops that batch; the thread lives on and sends the next."""
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("transport bug")
        return httpx.Response(200, json={"accepted": len(json.loads(request.content)["outcomes"])})

    config = ClientConfig(url="http://sidecar", feedback_batch=1, feedback_interval_s=0.01)
    metrics = ClientMetrics(registry=CollectorRegistry())
    reporter = FeedbackReporter(config, metrics, transport=httpx.MockTransport(handler))
    try:
        reporter.report("d0", success=True)
        assert reporter.flush()
        reporter.report("d1", success=True)
        assert reporter.flush()
    finally:
        reporter.close()
    assert metrics.snapshot()["feedback"] == {"dropped": 1, "sent": 1}
