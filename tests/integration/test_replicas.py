"""Two replicas (each `routeiq serve --workers 2`) sharing one real Redis act as one service."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests._harness import RedisServer, ServeProcess, no_keepalive_client, replicas_of

pytestmark = pytest.mark.slow

KEY = "replica-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {KEY}"}
CODE = "Write a Python function that merges two sorted lists"
PROPAGATION_S = 3.0  # generous bound for "every worker saw it" on a loaded 2-core box


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[list[ServeProcess]]:
    settings: dict[str, object] = {
        "redis_url": redis_server.url,
        "admin_key": KEY,
        "breaker_min_requests": 3,
        # Exactness is about atomic counters, not timeouts: on a loaded 2-core box a short Redis
        # timeout would send some increments to local fallback state (documented behaviour).
        "redis_timeout_ms": 3000,
        # Nor about admission: 16 concurrent clients on 4 workers of a 2-core box outrun the
        # default 15 ms queue budget in bursts, and a shed request (503) is never counted.
        "max_queue_wait_ms": 30_000,
    }
    with replicas_of(tmp_path_factory.mktemp, **settings) as services:
        yield services


fresh = no_keepalive_client


def every_worker(service: ServeProcess, check: Callable[[dict[str, Any]], bool], what: str) -> None:
    """Poll /admin/config over new connections until each of `service`'s workers (told apart by
    pid) has passed `check`; fail after PROPAGATION_S."""
    passed: set[int] = set()
    with fresh() as http:
        deadline = time.monotonic() + PROPAGATION_S  # from here: making a client is not propagation
        while len(passed) < service.workers:
            view = http.get(service.url + "/admin/config", headers=ADMIN).json()
            if check(view):
                passed.add(view["worker_pid"])
            assert time.monotonic() < deadline, f"{what}: only workers {passed} of {service.url}"


@pytest.fixture
def baseline(replicas: list[ServeProcess]) -> int:
    """Each test starts from the same shared state, whatever the test before it did or where it
    failed: default profile auto, no experiment running, and every worker of both replicas has
    seen that config version (returned: later writes move it past)."""
    a = replicas[0]
    with fresh() as http:
        for spec in http.get(a.url + "/admin/experiments", headers=ADMIN).json()["experiments"]:
            if spec["status"] == "running":
                stopped = http.post(a.url + f"/admin/experiments/{spec['name']}/stop", headers=ADMIN)
                assert stopped.status_code == 200
        config = http.put(a.url + "/admin/config", json={"default_profile": "auto"}, headers=ADMIN)
        assert config.status_code == 200
        version = config.json()["version"]
    for service in replicas:
        every_worker(service, lambda v: v["version"] >= version, "baseline config")
    return int(version)


def applied_after(version: int) -> Callable[[dict[str, Any]], bool]:
    return lambda view: int(view["version"]) > version


def test_a_session_keeps_its_model_across_replicas(replicas: list[ServeProcess], baseline: int) -> None:
    a, b = replicas
    session = f"conv-{uuid.uuid4().hex[:8]}"
    with fresh() as http:
        first = http.post(a.url + "/route", json={"prompt": CODE, "session_id": session}).json()
        assert first["strategy"] == "centroid"
        for _ in range(6):  # both workers of the other replica
            later = http.post(
                b.url + "/route", json={"prompt": "thanks! now add tests", "session_id": session}
            )
            assert later.json()["strategy"] == "session"
            assert later.json()["deployment_id"] == first["deployment_id"]


def test_an_admin_change_reaches_every_worker_of_the_other_replica_within_a_second(
    replicas: list[ServeProcess], baseline: int
) -> None:
    a, b = replicas
    with fresh() as http:
        before: set[int] = set()
        for _ in range(100):  # the kernel hands each new connection to one of b's workers
            view = http.get(b.url + "/admin/config", headers=ADMIN).json()
            # not yet eco anywhere, or the propagation below would be measured as instant
            assert view["default_profile"] == "auto", view
            before.add(view["worker_pid"])
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
    replicas: list[ServeProcess], baseline: int
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
    for service in replicas:
        every_worker(service, applied_after(baseline), "experiment created")
    responses = asyncio.run(_load([a.url, b.url], total=2000, concurrency=16))
    refused = Counter(r.status_code for r in responses if r.status_code != 200)
    assert not refused, f"not every request was routed: {dict(refused)}"
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
        created = int(http.get(b.url + "/admin/config", headers=ADMIN).json()["version"])
        assert http.post(b.url + "/admin/experiments/split-2000/stop", headers=ADMIN).status_code == 200
    # the stop, made through b, reaches every worker of both replicas
    for service in replicas:
        every_worker(service, applied_after(created), "experiment stopped")
    with fresh() as http:
        for service in replicas:
            for _ in range(4):
                assert "experiment" not in http.post(service.url + "/route", json={"prompt": CODE}).json()


def test_a_breaker_opened_through_one_replica_drops_the_deployment_on_the_other(
    replicas: list[ServeProcess], baseline: int
) -> None:
    a, b = replicas
    # ids of its own: no breaker state from another test (or an earlier run) applies
    strong, weak = (f"shared-{kind}-{uuid.uuid4().hex[:6]}" for kind in ("strong", "weak"))
    two = [
        {"deployment_id": strong, "model": "x/strong", "tier": "premium", "quality": 0.95},
        {"deployment_id": weak, "model": "x/weak", "tier": "budget", "quality": 0.6},
    ]
    body = {"prompt": CODE, "candidates": two}
    with fresh() as http:
        assert http.post(b.url + "/route", json=body).json()["deployment_id"] == strong
        failures = [{"deployment_id": strong, "success": False, "error_class": "5xx"}] * 3
        assert http.post(a.url + "/feedback", json={"outcomes": failures}).status_code == 200
        time.sleep(0.15)  # other workers reuse their breaker view up to ROUTEIQ_BREAKER_VIEW_CACHE_MS=100
        for _ in range(4):
            after = http.post(b.url + "/route", json=body).json()
            assert after["deployment_id"] == weak
            assert f"circuit_open:{strong}" in after["reason"]
        assert (
            http.get(b.url + "/admin/breakers", headers=ADMIN).json()["breakers"][strong]["state"] == "open"
        )


def test_a_ramp_through_one_replica_reaches_every_worker_and_moves_users_one_way(
    replicas: list[ServeProcess], baseline: int
) -> None:
    a, b = replicas
    spec = {
        "name": "ramp-replicas",
        "variants": [
            {"name": "control", "weight": 90},
            {"name": "treatment", "weight": 10, "profile": "eco"},
        ],
        "assign_by": ["user"],
    }
    users = [f"user-{i}" for i in range(400)]

    def variants(http: httpx.Client) -> dict[str, set[str]]:
        """Each user's variants as both replicas (over new connections: every worker) see them."""
        seen: dict[str, set[str]] = {}
        for n, start in enumerate(range(0, len(users), 50)):
            chunk = users[start : start + 50]
            url = (a.url, b.url)[n % 2]
            for target in (url, (b.url if url == a.url else a.url)):
                body = [{"prompt": "hello there", "user": u} for u in chunk]
                response = http.post(target + "/route/batch", json=body)
                assert response.status_code == 200, response.text
                for u, r in zip(chunk, response.json()["results"], strict=True):
                    seen.setdefault(u, set()).add(r["variant"])
        return seen

    with fresh() as http:
        assert http.post(a.url + "/admin/experiments", json=spec, headers=ADMIN).status_code == 201
        for service in replicas:
            every_worker(service, applied_after(baseline), "experiment created")
        before = variants(http)
        created = int(http.get(b.url + "/admin/config", headers=ADMIN).json()["version"])
        body = {"weights": {"control": 50, "treatment": 50}}
        ramped = http.patch(b.url + "/admin/experiments/ramp-replicas", json=body, headers=ADMIN)
        assert ramped.status_code == 200, ramped.text
        for service in replicas:
            every_worker(service, applied_after(created), "experiment ramped")
        after = variants(http)
        assert all(len(v) == 1 for v in (*before.values(), *after.values()))  # one answer per user
        moved = Counter((before[u].pop(), after[u].pop()) for u in users)
        assert set(moved) <= {("control", "control"), ("control", "treatment"), ("treatment", "treatment")}
        assert 0.3 < moved["control", "treatment"] / len(users) < 0.5, moved  # ~40% of users
        out = http.get(a.url + "/admin/experiments/ramp-replicas", headers=ADMIN).json()
        assert out["decisions"] == 4 * len(users)  # both replicas' counts, kept through the ramp
        assert [p["weights"] for p in out["phases"]] == [dict(control=90, treatment=10), body["weights"]]
