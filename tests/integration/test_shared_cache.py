"""The shared embedding cache on a real redis-server: one worker's embedding serves another,
a hit still goes through the current profile, and Redis down never stops routing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from tests._harness import RedisServer
from tests.conftest import make_client

PROMPT = {"prompt": "Write a Python function that merges two sorted lists"}


def _cache_counts(metrics: str) -> dict[str, float]:
    out = {}
    for line in metrics.splitlines():
        if line.startswith("routeiq_embedding_cache_total{"):
            result = line.split('result="')[1].split('"')[0]
            out[result] = float(line.rsplit(" ", 1)[1])
    return out


def _wait_for_shared_entry(redis_server: RedisServer, namespace: str) -> None:
    """Until the first worker's SET has landed (a fixed sleep is too short on a loaded box)."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        deadline = time.monotonic() + 5.0
        while not client.keys(f"routeiq:emb:{namespace}:*"):
            assert time.monotonic() < deadline, "the shared embedding never reached Redis"
            time.sleep(0.01)
    finally:
        client.close()


def test_an_embedding_made_by_one_worker_is_a_hit_for_another(
    redis_server: RedisServer, namespace: str
) -> None:
    # A timeout that holds on a loaded 2-core machine: the default 20 ms is a production budget,
    # and a GET or SET that misses it here would turn the hit this test expects into a miss.
    settings = {
        "redis_url": redis_server.url,
        "embedding_cache_redis": True,
        "namespace": namespace,
        "embedding_cache_redis_timeout_ms": 2000,
    }
    with make_client(**settings) as first, make_client(**settings) as second:
        a = first.post("/route", json=PROMPT)
        assert a.status_code == 200
        _wait_for_shared_entry(redis_server, namespace)  # the SET is fire-and-forget
        b = second.post("/route", json=PROMPT)
        assert b.status_code == 200
        assert _cache_counts(first.get("/metrics").text).get("miss") == 1.0
        counts = _cache_counts(second.get("/metrics").text)
        assert counts.get("shared_hit") == 1.0 and counts.get("miss", 0) == 0  # present at 0 from start
        assert (a.json()["category"], a.json()["tier"]) == (b.json()["category"], b.json()["tier"])
        # The shared entry is an embedding, not a decision: the profile asked for now applies.
        eco = second.post("/route", json=PROMPT, headers={"X-RouteIQ-Profile": "eco"}).json()
        premium = second.post("/route", json=PROMPT, headers={"X-RouteIQ-Profile": "premium"}).json()
        assert eco["profile"] == "eco" and premium["profile"] == "premium"
        assert eco["deployment_id"] != premium["deployment_id"]


def test_redis_down_means_local_embedding_not_an_error(tmp_path: Path) -> None:
    settings = {
        "redis_url": f"unix://{tmp_path / 'nobody-listens.sock'}",
        "embedding_cache_redis": True,
        "embedding_cache_redis_timeout_ms": 50,
    }
    with make_client(**settings) as client:
        start = time.perf_counter()
        for i in range(5):
            response = client.post("/route", json={"prompt": f"summarise chapter {i} of the report"})
            assert response.status_code == 200
        # One failed attempt, then Redis is left alone for a second: no request waits again.
        assert time.perf_counter() - start < 2.0
        assert _cache_counts(client.get("/metrics").text).get("shared_hit", 0) == 0


def test_shared_cache_without_redis_url_is_a_start_up_error() -> None:
    from pydantic import ValidationError

    from routeiq.settings import Settings

    with pytest.raises(ValidationError, match="ROUTEIQ_REDIS_URL"):
        Settings(embedding_cache_redis=True)
