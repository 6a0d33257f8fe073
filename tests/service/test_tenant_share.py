"""Fair share between tenants: the tenant over its share is refused (429) while another is
served; quotas; the order embeddings run in; the tenants file; tenant admin tokens."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from routeiq.errors import ConfigError
from routeiq.inference.admission import EmbedQueue
from routeiq.inference.fair_share import FairDispatcher, FairShare
from routeiq.state.quotas import Quota
from tests.conftest import make_client

A_TOKEN = "cluster-a-token-0123456789"
B_TOKEN = "cluster-b-token-0123456789"
A_ADMIN = "cluster-a-admin-0123456789"
KEY = "global-admin-key-0123456789"
A = {"Authorization": f"Bearer {A_TOKEN}"}
B = {"Authorization": f"Bearer {B_TOKEN}"}
TOKENS = f"cluster-a:{A_TOKEN},cluster-b:{B_TOKEN}"


def test_tenant_over_its_share_gets_429_while_the_other_is_served() -> None:
    with make_client(
        auth_tokens=TOKENS, inference_threads=1, queue_depth_per_thread=4, max_queue_wait_ms=60_000
    ) as client:
        engine = client.app.state.engine  # type: ignore[attr-defined]
        queue, share = engine.admission.embeddings, engine.capacity.embeddings
        cached = {"prompt": "translate good morning into French"}
        assert client.post("/route", json=cached, headers=A).status_code == 200
        # cluster-a holds the whole queue, as four of its embeddings in progress would
        for _ in range(4):
            assert share.admit(queue, "cluster-a") == "ok"
        try:
            alone = client.post("/route", json={"prompt": "a's first new prompt"}, headers=A)
            assert alone.status_code == 503  # no other tenant active: plain overload
            # cluster-b holds nothing: admitted past the full queue
            assert client.post("/route", json={"prompt": "a new prompt from b"}, headers=B).status_code == 200
            refused = client.post(
                "/route", json={"prompt": "a new prompt from a"}, headers=A | {"X-Request-ID": "a-429"}
            )
            assert refused.status_code == 429, refused.text
            assert refused.headers["Retry-After"] == "1" and refused.headers["X-Request-ID"] == "a-429"
            assert refused.json()["error"]["type"] == "tenant_over_share"
            assert refused.json()["error"]["tenant"] == "cluster-a"
            # and stays within its share (1 of the last 6 admitted, its part is 1/2)
            assert client.post("/route", json={"prompt": "b again"}, headers=B).status_code == 200
            # a's cached prompt needs no inference thread: still answered
            assert client.post("/route", json=cached, headers=A).status_code == 200
            metrics = client.get("/metrics").text
            assert 'routeiq_tenant_refusals_total{reason="over_share",tenant="cluster-a"} 1.0' in metrics
            assert 'routeiq_tenant_decisions_total{tenant="cluster-b"} 2.0' in metrics
        finally:
            for _ in range(4):
                share.release(queue, "cluster-a")
        assert queue.in_flight == 0 and share.held == {}


def test_a_full_gate_admits_the_tenant_under_its_share_and_refuses_the_one_over() -> None:
    now = [0.0]
    alone = FairShare(clock=lambda: now[0])
    queue = EmbedQueue(threads=1, depth_per_thread=2, max_wait_s=10.0)
    assert alone.admit(queue, "default") == alone.admit(queue, "default") == "ok"
    assert alone.admit(queue, "default") == "full"  # no other tenant to protect: plain overload

    share = FairShare({"a": 3.0, "b": 1.0}, clock=lambda: now[0])
    queue = EmbedQueue(threads=1, depth_per_thread=8, max_wait_s=10.0)
    for _ in range(8):  # an idle tenant's share is lent while the queue has room
        assert share.admit(queue, "a") == "ok"
    assert share.admit(queue, "a") == "full"  # b is idle: nobody to protect yet
    assert share.admit(queue, "b") == "ok"  # b holds nothing: admitted past the full gate
    assert share.admit(queue, "a") == "over_share"  # a took 8 of 9 recent, its fair part is 3/4
    assert share.admit(queue, "b") == "ok"  # b took 1 of 9, its part is 1/4
    assert share.admit(queue, "b") == "ok"
    assert share.admit(queue, "b") == "over_share"  # 3 of 11 > 1/4
    assert queue.in_flight == 11 <= 2 * queue.capacity
    now[0] += 10.0  # ten half-lives later the past is forgotten
    for _ in range(8):
        share.release(queue, "a")
    assert share.used_share("b") == 0.0 and share.recent == {} and share.held == {"b": 3}


def dispatch_order(heavy: int, share: FairShare | None) -> list[str]:
    """One inference thread: a's first job blocks it while a queues `heavy - 1` more, then b
    queues one. The order the jobs ran in."""

    async def scenario() -> list[str]:
        order: list[str] = []
        gate = threading.Event()
        with ThreadPoolExecutor(1) as executor:
            dispatch = FairDispatcher(executor, slots=1, share=share)

            def job(name: str) -> str:
                if name == "a0":
                    gate.wait(5)
                order.append(name)
                return name

            jobs = [asyncio.ensure_future(dispatch.run("a", lambda n=f"a{i}": job(n))) for i in range(heavy)]
            await asyncio.sleep(0.05)  # a0 runs, the rest of a's wait
            jobs.append(asyncio.ensure_future(dispatch.run("b", lambda: job("b0"))))
            await asyncio.sleep(0)
            gate.set()
            await asyncio.gather(*jobs)
        return order

    return asyncio.run(scenario())


def test_dispatcher_without_shares_takes_turns_between_tenants() -> None:
    assert dispatch_order(5, None) == ["a0", "a1", "b0", "a2", "a3", "a4"]


def test_dispatcher_serves_the_tenant_that_used_least_of_its_share_first() -> None:
    share = FairShare({"a": 1.0, "b": 1.0})
    share.recent = {"a": 5.0, "b": 0.5}
    assert dispatch_order(3, share) == ["a0", "b0", "a1", "a2"]


def tenants_file(tmp_path: Path) -> Path:
    catalog = tmp_path / "a-catalog.yaml"
    catalog.write_text(
        "models:\n  - deployment_id: a-only\n    model: a/private-model\n    tier: mid\n    quality: 0.7\n",
        encoding="utf-8",
    )
    path = tmp_path / "tenants.yaml"
    path.write_text(
        "tenants:\n"
        "  cluster-a:\n    default_profile: eco\n    catalog_file: a-catalog.yaml\n    weight: 2\n"
        "  cluster-b:\n    max_decisions_per_second: 1\n",
        encoding="utf-8",
    )
    return path


def test_tenants_file_gives_a_tenant_its_own_profile_catalog_and_quota(tmp_path: Path) -> None:
    with make_client(auth_tokens=TOKENS, tenants_file=tenants_file(tmp_path)) as client:
        a_models = {m["deployment_id"] for m in client.get("/v1/catalog", headers=A).json()["models"]}
        b_models = {m["deployment_id"] for m in client.get("/v1/catalog", headers=B).json()["models"]}
        assert "a-only" in a_models and "a-only" not in b_models
        assert "gpt-4o" in a_models  # the service's catalog is still there
        assert client.get("/v1/profiles", headers=A).json()["default"] == "eco"
        assert client.get("/v1/profiles", headers=B).json()["default"] == "auto"
        assert client.post("/route", json={"prompt": "hi"}, headers=A).json()["profile"] == "eco"
        # b: one decision per second, bursts of one
        answers = [client.post("/route", json={"prompt": "hi"}, headers=B) for _ in range(3)]
        assert answers[0].status_code == 200
        over = [r for r in answers if r.status_code == 429]
        assert over and over[0].json()["error"]["type"] == "tenant_over_quota"
        # the refusal names the tenant and its limit, like a /feedback one does
        assert over[0].json()["error"]["tenant"] == "cluster-b" and over[0].json()["error"]["limit"] == 1
        assert over[0].headers["Retry-After"] == "1"


def test_tenants_file_is_reloaded_without_restart(tmp_path: Path) -> None:
    path = tenants_file(tmp_path)
    admin = {"Authorization": f"Bearer {KEY}"}
    with make_client(auth_tokens=TOKENS, tenants_file=path, admin_key=KEY) as client:
        assert client.get("/v1/profiles", headers=A).json()["default"] == "eco"
        path.write_text(
            "tenants:\n  cluster-a:\n    default_profile: premium\n    weight: 5\n", encoding="utf-8"
        )
        reloaded = client.post("/admin/tenants/reload", headers=admin)
        assert reloaded.status_code == 200 and sorted(reloaded.json()["changed"]) == [
            "cluster-a",
            "cluster-b",
        ]
        assert client.get("/v1/profiles", headers=A).json()["default"] == "premium"
        assert "a-only" not in {
            m["deployment_id"] for m in client.get("/v1/catalog", headers=A).json()["models"]
        }
        assert client.get("/admin/tenants", headers=admin).json()["tenants"]["cluster-a"]["weight"] == 5
        # b lost its quota: no 429 any more
        assert all(
            client.post("/route", json={"prompt": "hi"}, headers=B).status_code == 200 for _ in range(3)
        )
        path.write_text("tenants:\n  cluster-a:\n    default_profile: no-such-profile\n", encoding="utf-8")
        refused = client.post("/admin/tenants/reload", headers=admin)
        assert refused.status_code == 422 and "no-such-profile" in refused.json()["error"]["message"]
        assert client.get("/v1/profiles", headers=A).json()["default"] == "premium"  # nothing changed
        # and a change is picked up on its own
        path.write_text("tenants:\n  cluster-a:\n    default_profile: eco\n", encoding="utf-8")
        assert _eventually(
            lambda: client.get("/v1/profiles", headers=A),
            within=5.0,
            check=lambda r: r.json()["default"] == "eco",
        )


def test_bad_tenants_file_stops_start_up_naming_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text("tenants:\n  cluster-a:\n    weight: -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tenant 'cluster-a': weight"):
        make_client(auth_tokens=TOKENS, tenants_file=path)
    path.write_text("tenants:\n  cluster-a:\n    colour: blue\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="colour"):
        make_client(auth_tokens=TOKENS, tenants_file=path)


def test_tenant_admin_token_changes_only_its_tenant(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        f"clients:\n  cluster-a: {A_TOKEN}\n  cluster-b: {B_TOKEN}\nadmins:\n  cluster-a: {A_ADMIN}\n",
        encoding="utf-8",
    )
    mine = {"Authorization": f"Bearer {A_ADMIN}"}
    with make_client(auth_tokens_file=tokens, admin_key=KEY) as client:
        changed = client.put("/admin/config", json={"default_profile": "eco"}, headers=mine)
        assert changed.status_code == 200 and changed.json()["tenant"] == "cluster-a"
        other = client.get("/admin/config", headers=mine | {"X-RouteIQ-Tenant": "cluster-b"})
        assert other.status_code == 403 and other.json()["error"]["field"] == "tenant"
        assert client.get("/admin/tenants", headers=mine).status_code == 403
        listed = client.get("/admin/tenants", headers={"Authorization": f"Bearer {KEY}"}).json()
        assert sorted(listed["tenants"]) == ["cluster-a", "cluster-b"]
        # a client token is no admin token
        assert client.get("/admin/config", headers=A).status_code == 403


def test_changed_tokens_file_rotates_and_revokes_without_restart(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    new_a = "cluster-a-rotated-0123456789"
    tokens.write_text(f"clients:\n  cluster-a: {A_TOKEN}\n  cluster-b: {B_TOKEN}\n", encoding="utf-8")
    with make_client(auth_tokens_file=tokens) as client:
        assert client.get("/v1/catalog", headers=A).status_code == 200
        # rotation: old and new token both valid
        tokens.write_text(
            f"clients:\n  cluster-a: [{new_a}, {A_TOKEN}]\n  cluster-b: {B_TOKEN}\n", encoding="utf-8"
        )
        assert _eventually(lambda: client.get("/v1/catalog", headers={"Authorization": f"Bearer {new_a}"}))
        assert client.get("/v1/catalog", headers=A).status_code == 200
        # revocation of the old one
        tokens.write_text(f"clients:\n  cluster-a: {new_a}\n  cluster-b: {B_TOKEN}\n", encoding="utf-8")
        assert _eventually(lambda: client.get("/v1/catalog", headers=A), status=403)
        # a broken file or an empty one changes nothing
        tokens.write_text("clients: [oops\n", encoding="utf-8")
        time.sleep(0.3)
        assert client.get("/v1/catalog", headers={"Authorization": f"Bearer {new_a}"}).status_code == 200
        tokens.write_text("clients: {}\n", encoding="utf-8")
        time.sleep(0.3)
        assert client.get("/v1/catalog").status_code == 401  # auth did not turn off


def _eventually(call, status: int = 200, within: float = 1.0, check=None) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        response = call()
        if response.status_code == status and (check is None or check(response)):
            return True
        time.sleep(0.05)
    return False


def test_quota_lets_a_large_batch_in_on_a_full_bucket_and_keeps_the_average() -> None:
    quota = Quota(1.0)
    assert quota.take(5)  # larger than the burst: admitted on a full bucket, leaves a debt
    assert not quota.take(1)
    assert quota.tokens < -3.9


def _two_tenants_with_a_tenant_admin(tmp_path: Path) -> Path:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        f"clients:\n  cluster-a: {A_TOKEN}\n  cluster-b: {B_TOKEN}\nadmins:\n  cluster-a: {A_ADMIN}\n",
        encoding="utf-8",
    )
    return tokens


EXPERIMENT = {
    "name": "b-only",
    "variants": [
        {"name": "control", "weight": 1, "strategy": "centroid"},
        {"name": "treatment", "weight": 1, "profile": "eco"},
    ],
}


def test_the_dashboards_overview_is_the_callers_tenant(tmp_path: Path) -> None:
    """A tenant admin sees its own tenant's experiments, config and decision counts, never another
    tenant's; the global key picks a tenant with X-RouteIQ-Tenant and is told which exist."""
    glob = {"Authorization": f"Bearer {KEY}"}
    mine = {"Authorization": f"Bearer {A_ADMIN}"}
    with make_client(auth_tokens_file=_two_tenants_with_a_tenant_admin(tmp_path), admin_key=KEY) as client:
        started = client.post(
            "/admin/experiments", json=EXPERIMENT, headers=glob | {"X-RouteIQ-Tenant": "cluster-b"}
        )
        assert started.status_code == 201, started.text
        for _ in range(3):
            assert client.post("/route", json={"prompt": "hello from b"}, headers=B).status_code == 200
        assert client.post("/route", json={"prompt": "hello from a"}, headers=A).status_code == 200

        own = client.get("/admin/overview", headers=mine).json()
        assert own["config"]["tenant"] == "cluster-a" and own["tenants"] == ["cluster-a"]
        assert own["experiments"] == []
        assert own["metrics_scope"] == "tenant"
        assert sum(s["value"] for s in own["metrics"]["decisions"]) == 1
        assert own["metrics"]["stages"]["total"]["count"] == 1
        other = client.get("/admin/overview", headers=mine | {"X-RouteIQ-Tenant": "cluster-b"})
        assert other.status_code == 403 and other.json()["error"]["field"] == "tenant"

        b = client.get("/admin/overview", headers=glob | {"X-RouteIQ-Tenant": "cluster-b"}).json()
        assert b["config"]["tenant"] == "cluster-b" and b["tenants"] == ["cluster-a", "cluster-b"]
        assert [e["experiment"]["name"] for e in b["experiments"]] == ["b-only"]
        assert b["metrics_scope"] == "service"
        assert sum(s["value"] for s in b["metrics"]["decisions"]) == 4
        # No tenant named: the first one, and the list to choose from (the page's first poll).
        first = client.get("/admin/overview", headers=glob).json()
        assert first["config"]["tenant"] == "cluster-a" and first["tenants"] == ["cluster-a", "cluster-b"]
        missing = client.get("/admin/overview", headers=glob | {"X-RouteIQ-Tenant": "cluster-z"})
        assert missing.status_code == 404 and missing.json()["error"]["field"] == "tenant"


def test_a_decision_explains_itself_only_to_its_tenant(tmp_path: Path) -> None:
    glob = {"Authorization": f"Bearer {KEY}"}
    mine = {"Authorization": f"Bearer {A_ADMIN}"}
    with make_client(auth_tokens_file=_two_tenants_with_a_tenant_admin(tmp_path), admin_key=KEY) as client:
        b_id = client.post("/route", json={"prompt": "a secret of cluster b"}, headers=B).json()["request_id"]
        a_id = client.post("/route", json={"prompt": "a question of cluster a"}, headers=A).json()[
            "request_id"
        ]
        assert client.get(f"/admin/decisions/{a_id}/explain", headers=mine).status_code == 200
        assert client.get(f"/admin/decisions/{b_id}/explain", headers=mine).status_code == 404
        seen = client.get(
            f"/admin/decisions/{b_id}/explain", headers=glob | {"X-RouteIQ-Tenant": "cluster-b"}
        )
        assert seen.status_code == 200
