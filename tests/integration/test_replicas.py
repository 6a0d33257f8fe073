"""Two replicas (each `routeiq serve --workers 2`) sharing one real Redis act as one service."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.redis_server import RedisServer
from tests.service_proc import ServiceProcess

pytestmark = pytest.mark.slow

KEY = "replica-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {KEY}"}
CODE = "Write a Python function that merges two sorted lists"


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[list[ServiceProcess]]:
    env = {
        "ROUTEIQ_REDIS_URL": redis_server.url,
        "ROUTEIQ_ADMIN_KEY": KEY,
        "ROUTEIQ_BREAKER_MIN_REQUESTS": "3",
        # Exactness is about atomic counters, not timeouts: on a loaded 2-core box a short Redis
        # timeout would send some increments to local fallback state (documented behaviour).
        "ROUTEIQ_REDIS_TIMEOUT_MS": "3000",
    }
    services = [
        ServiceProcess(Path(tmp_path_factory.mktemp(name)), workers=2, **env).start() for name in ("a", "b")
    ]
    try:
        for s in services:
            s.wait_ready()
        yield services
    finally:
        for s in services:
            s.stop()


def fresh() -> httpx.Client:
    """No keep-alive: each request opens a connection, so the kernel spreads them over workers."""
    return httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0))


def test_a_session_keeps_its_model_across_replicas(replicas: list[ServiceProcess]) -> None:
    a, b = replicas
    with fresh() as http:
        first = http.post(a.url + "/route", json={"prompt": CODE, "session_id": "conv-42"}).json()
        assert first["strategy"] == "centroid"
        for _ in range(6):  # both workers of the other replica
            later = http.post(
                b.url + "/route", json={"prompt": "thanks! now add tests", "session_id": "conv-42"}
            )
            assert later.json()["strategy"] == "session"
            assert later.json()["deployment_id"] == first["deployment_id"]


def test_an_admin_change_reaches_every_worker_of_the_other_replica_within_a_second(
    replicas: list[ServiceProcess],
) -> None:
    a, b = replicas
    with fresh() as http:
        before: set[int] = set()
        for _ in range(100):  # the kernel hands each new connection to one of b's workers
            before.add(http.get(b.url + "/admin/config", headers=ADMIN).json()["worker_pid"])
            if len(before) == 2:
                break
        assert len(before) == 2, "expected to reach both workers of replica b"
        changed = http.put(a.url + "/admin/config", json={"default_profile": "eco"}, headers=ADMIN)
        assert changed.status_code == 200
        start = time.monotonic()
        seen: set[int] = set()
        while seen != before and time.monotonic() - start < 3:
            view = http.get(b.url + "/admin/config", headers=ADMIN).json()
            if view["default_profile"] == "eco":
                seen.add(view["worker_pid"])
        elapsed = time.monotonic() - start
        assert seen == before and elapsed < 1.0, f"{elapsed:.3f}s, workers updated: {seen} of {before}"
        assert http.post(b.url + "/route", json={"prompt": "hello"}).json()["profile"] == "eco"
        http.put(a.url + "/admin/config", json={"default_profile": "auto"}, headers=ADMIN)


async def _load(urls: list[str], total: int, concurrency: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as http:
        queue = iter(range(total))
        out: list[httpx.Response] = []

        async def worker() -> None:
            for i in queue:
                body = {"prompt": ("hello there", "summarise this", CODE)[i % 3]}
                out.append(await http.post(urls[i % len(urls)] + "/route", json=body))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return out


def test_experiment_counters_are_exact_over_2000_requests_on_both_replicas(
    replicas: list[ServiceProcess],
) -> None:
    a, b = replicas
    spec = {
        "name": "split-2000",
        "variants": [
            {"name": "centroid", "weight": 3, "strategy": "centroid"},
            {"name": "eco", "weight": 1, "profile": "eco"},
        ],
        "assign_by": ["request"],
    }
    with fresh() as http:
        assert http.post(a.url + "/admin/experiments", json=spec, headers=ADMIN).status_code == 201
    time.sleep(0.6)  # every worker polls within 250 ms
    responses = asyncio.run(_load([a.url, b.url], total=2000, concurrency=16))
    assert all(r.status_code == 200 for r in responses)
    variants = Counter(r.json()["variant"] for r in responses)
    assert all(r.json()["experiment"] == "split-2000" for r in responses)
    with fresh() as http:
        out = http.get(b.url + "/admin/experiments/split-2000", headers=ADMIN).json()
        assert out["decisions"] == 2000
        assert {v["variant"]: v["decisions"] for v in out["variants"]} == dict(variants)
        assert 0.65 < variants["centroid"] / 2000 < 0.85  # 3:1 by weight
        # /metrics adds up both workers of a replica (Prometheus multiprocess files).
        for service, sent in ((a, 1000), (b, 1000)):
            text = http.get(service.url + "/metrics").text
            counts = re.findall(
                r'routeiq_experiment_decisions_total\{experiment="split-2000",variant="\w+"\} (\S+)', text
            )
            assert sum(float(c) for c in counts) == sent
        assert http.post(b.url + "/admin/experiments/split-2000/stop", headers=ADMIN).status_code == 200
    time.sleep(0.6)  # the stop reaches every worker


def test_a_breaker_opened_through_one_replica_drops_the_deployment_on_the_other(
    replicas: list[ServiceProcess],
) -> None:
    a, b = replicas
    two = [
        {"deployment_id": "shared-strong", "model": "x/strong", "tier": "premium", "quality": 0.95},
        {"deployment_id": "shared-weak", "model": "x/weak", "tier": "budget", "quality": 0.6},
    ]
    body = {"prompt": CODE, "candidates": two}
    with fresh() as http:
        assert http.post(b.url + "/route", json=body).json()["deployment_id"] == "shared-strong"
        failures = [{"deployment_id": "shared-strong", "success": False, "error_class": "5xx"}] * 3
        assert http.post(a.url + "/feedback", json={"outcomes": failures}).status_code == 200
        time.sleep(0.15)  # other workers reuse their breaker view up to ROUTEIQ_BREAKER_VIEW_CACHE_MS=100
        for _ in range(4):
            after = http.post(b.url + "/route", json=body).json()
            assert "experiment" not in after  # stopped through b, seen by every worker
            assert after["deployment_id"] == "shared-weak"
            assert "circuit_open:shared-strong" in after["reason"]
        assert (
            http.get(b.url + "/admin/breakers", headers=ADMIN).json()["breakers"]["shared-strong"]["state"]
            == "open"
        )
