"""A tenant's quota on /feedback outcomes per second: past it 429 naming the tenant and the
limit, with Retry-After, and nothing of the refused batch applied; other tenants' feedback and
decisions go on. Real HTTP through the app."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from routeiq.http.auth import TokenSet, startup_warnings
from routeiq.settings import Settings
from routeiq.state.quotas import Quota
from tests._harness import RedisServer, ServeProcess
from tests.conftest import make_client

A_TOKEN = "cluster-a-token-0123456789"
B_TOKEN = "cluster-b-token-0123456789"
KEY = "global-admin-key-0123456789"
A = {"Authorization": f"Bearer {A_TOKEN}"}
B = {"Authorization": f"Bearer {B_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {KEY}"}
TOKENS = f"cluster-a:{A_TOKEN},cluster-b:{B_TOKEN}"


def outcomes(n: int, success: bool = True, deployment_id: str = "gpt-4o") -> dict[str, Any]:
    return {"outcomes": [{"deployment_id": deployment_id, "success": success} for _ in range(n)]}


def reported(client: Any, headers: dict[str, str], deployment_id: str = "gpt-4o") -> int:
    stats = client.get("/v1/deployments/stats", headers=headers).json()["deployments"]
    row = stats.get(deployment_id)
    return 0 if row is None else int(row["successes"] + row["failures"])


def tenants_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "tenants.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_over_its_outcome_quota_a_batch_is_refused_whole_with_429_naming_tenant_and_limit(
    tmp_path: Path,
) -> None:
    path = tenants_file(tmp_path, "tenants:\n  cluster-a:\n    max_feedback_outcomes_per_second: 10\n")
    with make_client(auth_tokens=TOKENS, tenants_file=path, admin_key=KEY) as client:
        assert client.post("/feedback", json=outcomes(8), headers=A).json() == {"accepted": 8}
        # 2 left in the bucket: a batch of 5 is refused whole, not cut to 2
        refused = client.post(
            "/feedback", json=outcomes(5, success=False), headers=A | {"X-Request-ID": "fb-429"}
        )
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert error["type"] == "tenant_over_quota"
        assert error["tenant"] == "cluster-a" and error["limit"] == 10
        assert "max_feedback_outcomes_per_second" in error["message"] and "10" in error["message"]
        assert int(refused.headers["Retry-After"]) >= 1 and refused.headers["X-Request-ID"] == "fb-429"
        assert reported(client, A) == 8  # nothing of the refused batch reached state
        metrics = client.get("/metrics").text
        assert 'routeiq_tenant_refusals_total{reason="feedback_over_quota",tenant="cluster-a"} 1.0' in metrics
        assert 'routeiq_feedback_outcomes_total{outcome="failure"} 0.0' in metrics
        row = client.get("/admin/tenants", headers=ADMIN).json()["tenants"]["cluster-a"]
        assert row["max_feedback_outcomes_per_second"] == 10
        assert row["feedback_outcomes_available"] < 5
        assert (
            client.get("/admin/tenants", headers=ADMIN).json()["tenants"]["cluster-b"][
                "max_feedback_outcomes_per_second"
            ]
            is None
        )


def test_a_batch_larger_than_a_second_is_let_in_on_a_full_bucket_then_retry_after_covers_the_debt(
    tmp_path: Path,
) -> None:
    path = tenants_file(tmp_path, "tenants:\n  cluster-a:\n    max_feedback_outcomes_per_second: 100\n")
    with make_client(auth_tokens=TOKENS, tenants_file=path) as client:
        assert client.post("/feedback", json=outcomes(1000), headers=A).json() == {"accepted": 1000}
        refused = client.post("/feedback", json=outcomes(1), headers=A)
        assert refused.status_code == 429
        # 900 outcomes of debt at 100/s: the next outcome is let in ~9 s later, not in 1
        assert 8 <= int(refused.headers["Retry-After"]) <= 10
        assert reported(client, A) == 1000


def test_one_tenant_at_its_feedback_quota_does_not_stop_another_tenants_feedback_or_decisions(
    tmp_path: Path,
) -> None:
    path = tenants_file(
        tmp_path,
        "tenants:\n  cluster-a:\n    max_feedback_outcomes_per_second: 5\n"
        "  cluster-b:\n    max_feedback_outcomes_per_second: 2000\n",
    )
    with make_client(auth_tokens=TOKENS, tenants_file=path) as client:
        answers = [client.post("/feedback", json=outcomes(5), headers=A).status_code for _ in range(5)]
        assert answers[0] == 200 and answers.count(429) >= 3  # a is held at its quota
        for _ in range(3):
            assert client.post("/feedback", json=outcomes(500), headers=B).json() == {"accepted": 500}
        assert reported(client, B) == 1500
        # decisions have their own quota: a's feedback quota does not touch them, nor b's
        assert client.post("/route", json={"prompt": "hi from b"}, headers=B).status_code == 200
        assert client.post("/route", json={"prompt": "hi from a"}, headers=A).status_code == 200
        metrics = client.get("/metrics").text
        assert 'routeiq_tenant_refusals_total{reason="feedback_over_quota",tenant="cluster-b"}' not in metrics


def test_an_empty_bucket_refuses_before_the_body_is_read(tmp_path: Path) -> None:
    path = tenants_file(tmp_path, "tenants:\n  cluster-a:\n    max_feedback_outcomes_per_second: 1\n")
    with make_client(auth_tokens=TOKENS, tenants_file=path) as client:
        assert client.post("/feedback", json=outcomes(50), headers=A).status_code == 200  # debt of 49
        # the body would be a 422; the refusal does not parse it
        garbage = client.post(
            "/feedback", content=b"{not json", headers=A | {"Content-Type": "application/json"}
        )
        assert garbage.status_code == 429 and garbage.json()["error"]["tenant"] == "cluster-a"
        assert int(garbage.headers["Retry-After"]) >= 40
        # another tenant's bad body is still its own 400/422
        assert client.post("/feedback", json={"outcomes": []}, headers=B).status_code == 422


def test_the_service_default_applies_to_tenants_the_tenants_file_does_not_set(tmp_path: Path) -> None:
    path = tenants_file(tmp_path, "tenants:\n  cluster-b:\n    max_feedback_outcomes_per_second: 1000\n")
    with make_client(
        auth_tokens=TOKENS,
        tenants_file=path,
        admin_key=KEY,
        tenant_max_feedback_outcomes_per_second=20,
    ) as client:
        assert client.post("/feedback", json=outcomes(20), headers=A).status_code == 200
        refused = client.post("/feedback", json=outcomes(20), headers=A)
        assert refused.status_code == 429 and refused.json()["error"]["limit"] == 20
        assert "ROUTEIQ_TENANT_MAX_FEEDBACK_OUTCOMES_PER_SECOND" in refused.json()["error"]["message"]
        for _ in range(2):  # b's own entry wins over the default
            assert client.post("/feedback", json=outcomes(400), headers=B).status_code == 200
        rows = client.get("/admin/tenants", headers=ADMIN).json()["tenants"]
        assert rows["cluster-a"]["max_feedback_outcomes_per_second"] == 20
        assert rows["cluster-b"]["max_feedback_outcomes_per_second"] == 1000


def test_a_changed_tenants_file_puts_a_new_feedback_quota_in_force(tmp_path: Path) -> None:
    path = tenants_file(tmp_path, "tenants:\n  cluster-a:\n    max_feedback_outcomes_per_second: 1\n")
    with make_client(auth_tokens=TOKENS, tenants_file=path, admin_key=KEY) as client:
        assert client.post("/feedback", json=outcomes(10), headers=A).status_code == 200
        assert client.post("/feedback", json=outcomes(1), headers=A).status_code == 429
        path.write_text(
            "tenants:\n  cluster-a:\n    max_feedback_outcomes_per_second: 500\n", encoding="utf-8"
        )
        reloaded = client.post("/admin/tenants/reload", headers=ADMIN)
        assert reloaded.status_code == 200 and reloaded.json()["changed"] == ["cluster-a"]
        assert client.post("/feedback", json=outcomes(400), headers=A).status_code == 200


def test_auth_off_the_default_tenant_has_no_feedback_quota_like_it_has_no_decision_quota() -> None:
    with make_client(tenant_max_feedback_outcomes_per_second=10) as client:
        for _ in range(3):
            assert client.post("/feedback", json=outcomes(1000)).json() == {"accepted": 1000}
    off, on = TokenSet({}), TokenSet.from_settings(Settings(auth_tokens=TOKENS))
    warned = startup_warnings(Settings(tenant_max_feedback_outcomes_per_second=10), off)
    assert any("ROUTEIQ_TENANT_MAX_FEEDBACK_OUTCOMES_PER_SECOND" in w for w in warned)
    assert startup_warnings(Settings(tenant_max_feedback_outcomes_per_second=10), on) == []


def test_quota_says_how_long_until_a_batch_would_be_let_in() -> None:
    quota = Quota(10.0)
    assert quota.allows(10) and quota.wait(10) == 0.0
    assert quota.take(10)
    assert not quota.allows(1)
    assert 0.05 < quota.wait(1) <= 0.1
    assert 0.9 < quota.wait(50) <= 1.0  # capped at one second's worth: a full bucket lets it in


def test_other_tenants_requests_are_served_while_a_large_batch_is_applied() -> None:
    """A 1000-outcome batch is applied in slices with turns of the event loop between them: a
    decision of another tenant that arrives meanwhile is answered before the batch is done."""
    import asyncio

    import httpx

    with make_client(auth_tokens=TOKENS) as client:
        prompt = {"prompt": "translate good morning into French"}
        assert client.post("/route", json=prompt, headers=B).status_code == 200  # cached from now on
        assert client.post("/feedback", json=outcomes(1), headers=A).status_code == 200  # a is built
        tenants = client.app.state.tenants  # type: ignore[attr-defined]
        state = tenants.peek("cluster-a").engine.state
        record = state.record_outcomes
        seen: list[bool] = []  # per call that applies part of a's batch: was b answered already?
        b_answered = asyncio.Event()

        async def spy(batch: Any) -> None:
            seen.append(b_answered.is_set())
            await record(batch)

        state.record_outcomes = spy

        async def scenario() -> tuple[int, int]:
            transport = httpx.ASGITransport(app=client.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://routeiq") as http:

                async def b() -> int:
                    while not seen:  # a's batch is being applied
                        await asyncio.sleep(0)
                    answer = await http.post("/route", json=prompt, headers=B)
                    b_answered.set()
                    return answer.status_code

                a_task = asyncio.create_task(http.post("/feedback", json=outcomes(1000), headers=A))
                b_status = await b()
                return (await a_task).status_code, b_status

        a_status, b_status = client.portal.call(scenario)  # type: ignore[union-attr]
        assert a_status == 200 and b_status == 200
        assert seen and seen[0] is False and seen[-1] is True, seen
        assert reported(client, A) == 1001


def test_with_redis_a_refused_batch_leaves_shared_state_untouched_and_an_accepted_one_lands_whole(
    tmp_path: Path, redis_server: RedisServer, namespace: str
) -> None:
    path = tenants_file(tmp_path, "tenants:\n  cluster-a:\n    max_feedback_outcomes_per_second: 100\n")
    with make_client(
        auth_tokens=TOKENS,
        tenants_file=path,
        redis_url=redis_server.url,
        namespace=namespace,
        redis_timeout_ms=3000,
        breaker_min_requests=3,
    ) as client:
        assert client.post("/feedback", json=outcomes(1000, success=False), headers=A).status_code == 200
        refused = client.post("/feedback", json=outcomes(10, deployment_id="claude-3.5-haiku"), headers=A)
        assert refused.status_code == 429
        stats = client.get("/v1/deployments/stats", headers=A).json()["deployments"]
        assert stats["gpt-4o"]["failures"] == 1000  # every slice of the batch reached Redis
        assert "claude-3.5-haiku" not in stats  # nothing of the refused one
        assert client.get("/readyz").json()["state"] == "redis"


def _reporter(url: str, **config: Any) -> tuple[Any, Any]:
    from prometheus_client import CollectorRegistry

    from routeiq_client import ClientConfig
    from routeiq_client.feedback import FeedbackReporter
    from routeiq_client.metrics import ClientMetrics

    metrics = ClientMetrics(registry=CollectorRegistry())
    settings = {"feedback_interval_s": 0.05} | config
    return FeedbackReporter(ClientConfig(url=url, token=A_TOKEN, **settings), metrics), metrics


def test_the_client_holds_a_refused_batch_and_sends_it_after_retry_after(tmp_path: Path) -> None:
    """routeiq-client against a real server: a batch refused with 429 + Retry-After stays queued
    (bounded) and is sent once the quota lets it in, instead of being dropped."""
    path = tenants_file(tmp_path, "tenants:\n  cluster-a:\n    max_feedback_outcomes_per_second: 10\n")
    with (
        ServeProcess(tmp_path / "serve", auth_tokens=TOKENS, tenants_file=path, admin_key=KEY) as server,
        httpx.Client(base_url=server.url, timeout=10, trust_env=False) as http,
    ):
        reporter, metrics = _reporter(server.url, feedback_batch=8)
        try:
            for _ in range(16):
                reporter.report("gpt-4o", True)
            assert reporter.flush(timeout=15)
        finally:
            reporter.close()
        counts = metrics.snapshot()["feedback"]
        # 8 let in, the next 8 refused (2 left in the bucket), held ~1 s, then let in whole
        assert counts.get("deferred", 0) >= 8 and counts.get("dropped", 0) == 0, counts
        assert counts["sent"] == 16 and reported(http, A) == 16


def test_the_client_drops_what_it_cannot_hold_and_gives_up_at_close(tmp_path: Path) -> None:
    """Held batches count against the queue bound, and close() does not wait out a Retry-After."""
    path = tenants_file(tmp_path, "tenants:\n  cluster-a:\n    max_feedback_outcomes_per_second: 1\n")
    with ServeProcess(tmp_path / "serve", auth_tokens=TOKENS, tenants_file=path, admin_key=KEY) as server:
        reporter, metrics = _reporter(server.url, feedback_batch=5, feedback_queue=6)
        for _ in range(6):
            reporter.report("gpt-4o", True)
        time.sleep(1.0)  # the first 5 are let in on the full bucket; the sixth is refused and held
        for _ in range(10):
            reporter.report("gpt-4o", True)  # 5 fit beside the held one, 5 are dropped
        started = time.monotonic()
        reporter.close(timeout=5)
        assert time.monotonic() - started < 3
        counts = metrics.snapshot()["feedback"]
        assert counts["sent"] == 5 and counts["dropped"] == 11, counts
