"""A tenant's quotas hold for the whole service, not per worker: two replicas (each
`routeiq serve --workers 2`) sharing one real Redis let a tenant through at its
`max_decisions_per_second` and `max_feedback_outcomes_per_second` in all, where each of the four
workers used to let it through at the full rate on its own. Another tenant is not counted in."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import pytest

from tests._harness import RedisServer, ServeProcess, no_keepalive_client, replicas_of

pytestmark = pytest.mark.slow

A_TOKEN = "cluster-a-token-0123456789abc"
B_TOKEN = "cluster-b-token-0123456789abc"
KEY = "global-admin-key-0123456789ab"
DECISIONS_PER_S = 3.0
OUTCOMES_PER_S = 10.0
TWO = [
    {"deployment_id": "gpt-4o", "model": "openai/gpt-4o", "tier": "premium", "quality": 0.95},
    {"deployment_id": "mini", "model": "openai/gpt-4o-mini", "tier": "budget", "quality": 0.6},
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer
) -> Iterator[list[ServeProcess]]:
    files = tmp_path_factory.mktemp("files")
    tokens = files / "tokens.yaml"
    tokens.write_text(f"clients:\n  cluster-a: {A_TOKEN}\n  cluster-b: {B_TOKEN}\n", encoding="utf-8")
    tenants = files / "tenants.yaml"
    tenants.write_text(
        "tenants:\n  cluster-a:\n"
        f"    max_decisions_per_second: {DECISIONS_PER_S:g}\n"
        f"    max_feedback_outcomes_per_second: {OUTCOMES_PER_S:g}\n",
        encoding="utf-8",
    )
    settings: dict[str, object] = {
        "redis_url": redis_server.url,
        "redis_namespace": "quota-replicas",
        "auth_tokens_file": tokens,
        "tenants_file": tenants,
        "admin_key": KEY,
        "redis_timeout_ms": 3000,
    }
    with replicas_of(tmp_path_factory.mktemp, **settings) as services:
        yield services


fresh = no_keepalive_client


def burst(replicas: list[ServeProcess], send: int, call: str, token: str) -> tuple[list[int], float]:
    """`send` requests as fast as one client goes, alternating replicas (new connections, so
    both workers of each are among them): their statuses and the seconds they took."""
    statuses: list[int] = []
    with fresh() as http:
        started = time.monotonic()
        for service in itertools.islice(itertools.cycle(replicas), send):
            if call == "route":
                body: dict[str, object] = {"prompt": "Say hello", "candidates": TWO}
                r = http.post(service.url + "/route", json=body, headers=bearer(token))
            else:
                outcome = {"deployment_id": "gpt-4o", "success": True}
                r = http.post(
                    service.url + "/feedback", json={"outcomes": [outcome] * 2}, headers=bearer(token)
                )
            statuses.append(r.status_code)
        return statuses, time.monotonic() - started


def test_the_decision_quota_holds_across_both_replicas_and_all_their_workers(
    replicas: list[ServeProcess],
) -> None:
    statuses, seconds = burst(replicas, 40, "route", A_TOKEN)
    assert set(statuses) <= {200, 429}, statuses
    # A full bucket (one second's worth) plus what refills while the burst runs; per worker it
    # was up to four times that.
    allowed = DECISIONS_PER_S + DECISIONS_PER_S * seconds + 1
    assert statuses.count(200) <= allowed, (statuses.count(200), seconds)
    assert statuses.count(200) >= DECISIONS_PER_S  # the quota lets its rate through
    with fresh() as http:  # any worker of either replica reads the one, emptied bucket
        rows = [
            http.get(service.url + "/admin/tenants", headers=bearer(KEY)).json()["tenants"]
            for service in replicas * 2
        ]
    assert all(row["cluster-a"]["decisions_available"] < DECISIONS_PER_S for row in rows), rows
    assert all(row["cluster-b"]["decisions_available"] is None for row in rows)  # no quota
    other, _ = burst(replicas, 12, "route", B_TOKEN)
    assert other == [200] * 12  # another tenant, no quota: not counted in cluster-a's bucket


def test_the_feedback_quota_holds_across_both_replicas_and_shows_service_wide(
    replicas: list[ServeProcess],
) -> None:
    statuses, seconds = burst(replicas, 40, "feedback", A_TOKEN)
    assert set(statuses) <= {200, 429}, statuses
    outcomes = 2 * statuses.count(200)
    assert outcomes <= OUTCOMES_PER_S + OUTCOMES_PER_S * seconds + 2, (outcomes, seconds)
    with fresh() as http:
        available = [
            http.get(service.url + "/admin/tenants", headers=bearer(KEY)).json()["tenants"]["cluster-a"][
                "feedback_outcomes_available"
            ]
            for service in replicas * 2
        ]
    # Whichever worker answers reads the one bucket: what the burst just used is used everywhere.
    assert all(n < OUTCOMES_PER_S for n in available), available
