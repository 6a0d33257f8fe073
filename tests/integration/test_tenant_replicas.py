"""Tenants across two replicas (each `routeiq serve --workers 2`) sharing one real Redis: one
tenant's breaker is not another's on any replica, and a token rotated or revoked in the tokens
file is in force on every worker of both within a second, without a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._harness import RedisServer, ServeProcess, no_keepalive_client, replicas_of

pytestmark = pytest.mark.slow

OLD_A = "cluster-a-old-token-0123456789"
NEW_A = "cluster-a-new-token-0123456789"
B_TOKEN = "cluster-b-token-0123456789abc"
CODE = "Write a Python function that merges two sorted lists"
TWO = [
    {"deployment_id": "gpt-4o", "model": "openai/gpt-4o", "tier": "premium", "quality": 0.95},
    {"deployment_id": "mini", "model": "openai/gpt-4o-mini", "tier": "budget", "quality": 0.6},
]
REVOKED_WITHIN_S = 1.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_tokens(path: Path, a_tokens: list[str]) -> None:
    listed = ", ".join(a_tokens)
    # Write then rename: a replica never reads half a file.
    partial = path.with_suffix(".partial")
    partial.write_text(f"clients:\n  cluster-a: [{listed}]\n  cluster-b: {B_TOKEN}\n", encoding="utf-8")
    partial.replace(path)


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "tokens.yaml"
    write_tokens(path, [OLD_A])
    return path


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, tokens_file: Path
) -> Iterator[list[ServeProcess]]:
    settings: dict[str, object] = {
        "redis_url": redis_server.url,
        "auth_tokens_file": tokens_file,
        "breaker_min_requests": 3,
        "breaker_open_seconds": 60,
        "breaker_view_cache_ms": 0,
        "redis_timeout_ms": 3000,
    }
    with replicas_of(tmp_path_factory.mktemp, **settings) as services:
        yield services


fresh = no_keepalive_client


def status(http: httpx.Client, service: ServeProcess, token: str) -> int:
    return http.get(service.url + "/v1/catalog", headers=bearer(token)).status_code


def everywhere(
    http: httpx.Client, replicas: list[ServeProcess], token: str, expected: int, runs: int = 20
) -> bool:
    """`runs` requests in a row over new connections give `expected` on each replica (with two
    workers each, both are all but certainly among them)."""
    return all(all(status(http, s, token) == expected for _ in range(runs)) for s in replicas)


def test_one_tenants_failures_open_its_breaker_on_every_replica_and_no_one_elses(
    replicas: list[ServeProcess],
) -> None:
    first, second = replicas
    failures = [{"deployment_id": "gpt-4o", "success": False, "error_class": "timeout"}] * 10
    with fresh() as http:
        sent = http.post(first.url + "/feedback", json={"outcomes": failures}, headers=bearer(OLD_A))
        assert sent.status_code == 200
        for _ in range(4):  # new connections: both workers of the other replica
            a = http.post(
                second.url + "/route", json={"prompt": CODE, "candidates": TWO}, headers=bearer(OLD_A)
            )
            b = http.post(
                second.url + "/route", json={"prompt": CODE, "candidates": TWO}, headers=bearer(B_TOKEN)
            )
            assert "circuit_open:gpt-4o" in a.json()["reason"]
            assert b.json()["deployment_id"] == "gpt-4o" and "circuit_open" not in b.json()["reason"]


def test_rotation_then_revocation_reach_every_worker_of_both_replicas(
    replicas: list[ServeProcess], tokens_file: Path
) -> None:
    # One client for the whole test, made before the clock starts: each new httpx client builds
    # an SSL context, which on a crowded box costs a good part of the second measured here.
    with fresh() as http:
        assert everywhere(http, replicas, OLD_A, 200, runs=4)
        assert everywhere(http, replicas, NEW_A, 403, runs=4)
        write_tokens(tokens_file, [NEW_A, OLD_A])  # rotation: both valid
        deadline = time.monotonic() + REVOKED_WITHIN_S
        while not everywhere(http, replicas, NEW_A, 200):
            assert time.monotonic() < deadline, "the new token is not accepted everywhere within 1 s"
        assert everywhere(http, replicas, OLD_A, 200)

        write_tokens(tokens_file, [NEW_A])  # revocation of the old one
        written = time.monotonic()
        while not everywhere(http, replicas, OLD_A, 403):
            assert time.monotonic() - written < REVOKED_WITHIN_S, "the revoked token still works somewhere"
        assert everywhere(http, replicas, NEW_A, 200) and everywhere(http, replicas, B_TOKEN, 200)
