"""Two tenants (two client tokens) on one service cannot see or disturb each other, with
in-memory state and with a real redis-server: breakers, sessions, deployment stats,
experiments and their counters, runtime config, recent decisions, the premium window."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from routeiq.observability.metrics import Metrics
from routeiq.settings import Settings
from routeiq.state.build import build_state, redis_client
from tests._harness import RedisServer
from tests.conftest import make_client

A_TOKEN = "cluster-a-token-0123456789"
B_TOKEN = "cluster-b-token-0123456789"
KEY = "tenant-admin-key-0123456789"
A = {"Authorization": f"Bearer {A_TOKEN}"}
B = {"Authorization": f"Bearer {B_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {KEY}"}
CODE = "Write a Python function that merges two sorted lists"
# Both clusters name their deployments alike: the common case that must not share a breaker.
TWO = [
    {"deployment_id": "gpt-4o", "model": "openai/gpt-4o", "tier": "premium", "quality": 0.95},
    {"deployment_id": "mini", "model": "openai/gpt-4o-mini", "tier": "budget", "quality": 0.6},
]


@pytest.fixture(scope="module", params=["memory", "redis"])
def shared(request: pytest.FixtureRequest, redis_server: RedisServer) -> Iterator[TestClient]:
    extra: dict[str, Any] = {}
    if request.param == "redis":
        extra = {"redis_url": redis_server.url, "namespace": "t" + uuid.uuid4().hex[:10]}
    with make_client(
        auth_tokens=f"cluster-a:{A_TOKEN},cluster-b:{B_TOKEN}",
        admin_key=KEY,
        breaker_min_requests=3,
        breaker_open_seconds=60,
        redis_timeout_ms=3000,
        **extra,
    ) as client:
        yield client


def route(client: TestClient, headers: dict[str, str], body: dict[str, Any], **more: str) -> dict[str, Any]:
    response = client.post("/route", json=body, headers=headers | more)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def admin(tenant: str) -> dict[str, str]:
    return ADMIN | {"X-RouteIQ-Tenant": tenant}


def test_one_tenants_failures_do_not_open_anothers_breaker(shared: TestClient) -> None:
    failures = [{"deployment_id": "gpt-4o", "success": False, "error_class": "timeout"}] * 30
    assert shared.post("/feedback", json={"outcomes": failures}, headers=A).status_code == 200
    a = route(shared, A, {"prompt": CODE, "candidates": TWO})
    assert a["deployment_id"] == "mini" and "circuit_open:gpt-4o" in a["reason"]
    b = route(shared, B, {"prompt": CODE, "candidates": TWO})
    assert b["deployment_id"] == "gpt-4o" and "circuit_open" not in b["reason"]
    assert "gpt-4o" in shared.get("/admin/breakers", headers=admin("cluster-a")).json()["breakers"]
    assert shared.get("/admin/breakers", headers=admin("cluster-b")).json()["breakers"] == {}


def test_deployment_stats_are_per_tenant(shared: TestClient) -> None:
    outcome = [{"deployment_id": "only-a-knows", "success": True, "latency_ms": 12}]
    assert shared.post("/feedback", json={"outcomes": outcome}, headers=A).status_code == 200
    assert "only-a-knows" in shared.get("/v1/deployments/stats", headers=A).json()["deployments"]
    assert "only-a-knows" not in shared.get("/v1/deployments/stats", headers=B).json()["deployments"]
    assert shared.get("/v1/deployments/stats").status_code == 401  # no token: nothing at all


def test_same_session_id_in_two_tenants_is_two_sessions(shared: TestClient) -> None:
    session = {"X-RouteIQ-Session": "conversation-1"}
    first = route(shared, A, {"prompt": CODE, "candidates": TWO[1:]}, **session)
    assert first["deployment_id"] == "mini"
    again = route(shared, A, {"prompt": CODE, "candidates": TWO}, **session)
    assert again["strategy"] == "session" and again["deployment_id"] == "mini"
    other = route(shared, B, {"prompt": CODE, "candidates": TWO}, **session)
    assert other["strategy"] != "session" and other["deployment_id"] == "gpt-4o"


def test_runtime_config_is_per_tenant(shared: TestClient) -> None:
    changed = shared.put("/admin/config", json={"default_profile": "eco"}, headers=admin("cluster-a"))
    assert changed.status_code == 200, changed.text
    assert changed.json()["tenant"] == "cluster-a" and changed.json()["default_profile"] == "eco"
    assert route(shared, A, {"prompt": "hello there"})["profile"] == "eco"
    assert route(shared, B, {"prompt": "hello there"})["profile"] == "auto"
    assert shared.get("/admin/config", headers=admin("cluster-b")).json()["default_profile"] == "auto"
    shared.put("/admin/config", json={"default_profile": "auto"}, headers=admin("cluster-a"))


def test_experiments_and_their_counters_are_per_tenant(shared: TestClient) -> None:
    name = "exp" + uuid.uuid4().hex[:6]
    body = {
        "name": name,
        "variants": [{"name": "a", "weight": 1, "profile": "eco"}, {"name": "b", "weight": 1}],
        "assign_by": ["request"],
    }
    assert shared.post("/admin/experiments", json=body, headers=admin("cluster-a")).status_code == 201
    assert route(shared, A, {"prompt": "hi"})["experiment"] == name
    assert "experiment" not in route(shared, B, {"prompt": "hi"})
    listed = shared.get("/admin/experiments", headers=admin("cluster-b")).json()["experiments"]
    assert [e["name"] for e in listed] == []
    assert shared.get(f"/admin/experiments/{name}", headers=admin("cluster-b")).status_code == 404
    readout = shared.get(f"/admin/experiments/{name}", headers=admin("cluster-a")).json()
    assert readout["decisions"] == 1
    # the other tenant may create its own experiment under the same name
    assert shared.post("/admin/experiments", json=body, headers=admin("cluster-b")).status_code == 201
    shared.post(f"/admin/experiments/{name}/stop", headers=admin("cluster-a"))
    shared.post(f"/admin/experiments/{name}/stop", headers=admin("cluster-b"))


def test_recent_decisions_are_per_tenant(shared: TestClient) -> None:
    a = route(shared, A, {"prompt": "only cluster a asked this"})
    b = route(shared, B, {"prompt": "only cluster b asked this"})
    seen_a = {
        d["request_id"]
        for d in shared.get("/admin/decisions", headers=admin("cluster-a")).json()["decisions"]
    }
    seen_b = {
        d["request_id"]
        for d in shared.get("/admin/decisions", headers=admin("cluster-b")).json()["decisions"]
    }
    assert a["request_id"] in seen_a and a["request_id"] not in seen_b
    assert b["request_id"] in seen_b and b["request_id"] not in seen_a


def test_global_admin_must_name_a_tenant_when_auth_is_on(shared: TestClient) -> None:
    unnamed = shared.get("/admin/config", headers=ADMIN)
    assert unnamed.status_code == 422 and unnamed.json()["error"]["field"] == "tenant"
    assert "cluster-a" in unnamed.json()["error"]["message"]
    unknown = shared.get("/admin/config", headers=admin("cluster-z"))
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "tenant"
    by_query = shared.get("/admin/config?tenant=cluster-b", headers=ADMIN)
    assert by_query.status_code == 200 and by_query.json()["tenant"] == "cluster-b"


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_premium_window_is_per_tenant(backend: str, redis_server: RedisServer, namespace: str) -> None:
    settings = Settings(
        **({"redis_url": redis_server.url, "namespace": namespace} if backend == "redis" else {}),
        redis_timeout_ms=3000,
    )
    metrics = Metrics.create()
    client = redis_client(settings)
    a = build_state(settings, metrics, tenant="cluster-a", client=client)
    b = build_state(settings, metrics, tenant="cluster-b", client=client)
    for _ in range(5):
        await a.count_premium_decision(True, 60)
    assert await a.premium_share(60) == (5, 5)
    assert await b.premium_share(60) == (0, 0)
    await a.close()
    await b.close()


@pytest.mark.anyio
async def test_default_tenant_keeps_the_single_tenant_keys_and_tenants_get_their_own(
    redis_server: RedisServer, namespace: str
) -> None:
    settings = Settings(redis_url=redis_server.url, namespace=namespace, redis_timeout_ms=3000)
    metrics = Metrics.create()
    client = redis_client(settings)
    assert client is not None
    default = build_state(settings, metrics, client=client)
    tenant = build_state(settings, metrics, tenant="cluster-a", client=client)
    await default.update_config(default_profile="eco")
    await tenant.update_config(default_profile="premium")
    keys = sorted(k for k in await client.keys("routeiq:*") if namespace in k)
    assert keys == [
        f"routeiq:{{{namespace}:tenant:cluster-a}}:config",
        f"routeiq:{{{namespace}:tenant:cluster-a}}:version",
        f"routeiq:{{{namespace}}}:config",
        f"routeiq:{{{namespace}}}:version",
    ]
    assert (await default.load_config()).default_profile == "eco"
    assert (await tenant.load_config()).default_profile == "premium"
    await tenant.close()
    await default.close()
