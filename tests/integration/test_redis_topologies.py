"""RouteIQ on the Redis topologies platform teams run, all real processes on 127.0.0.1:

- a Sentinel-managed primary with a replica: the primary is killed under load;
- a 3-primary Redis Cluster with replicas: the primary of the namespace's slot is killed under load;
- one Redis with TLS (a throwaway CA) and an ACL user allowed only the commands RouteIQ needs.

Each asserts that not one /route fails and what the shared state looks like afterwards."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.crc import key_slot

from routeiq.state.keys import StateKeys
from tests._harness import RedisServer, ServeProcess, wait_until
from tests._harness.redis import make_tls_files
from tests._harness.redis_topologies import RedisClusterNodes, SentinelSet, cli

pytestmark = pytest.mark.slow

KEY = "topology-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {KEY}"}
EXPERIMENT = {
    "name": "ab",
    "variants": [{"name": "control", "weight": 1}, {"name": "eco", "weight": 1, "profile": "eco"}],
}
# Loaded 2-core CI box: a short timeout would send some operations to local state, which is
# correct behaviour but muddies "the state after" checks. The failover itself is what is tested.
COMMON: dict[str, object] = {
    "admin_key": KEY,
    "redis_timeout_ms": 200,
    "redis_retry_seconds": 0.2,
    # Failover, not admission, is under test: a loaded 2-core box (Redis nodes, sentinels and the
    # service on it) can outrun the default 15 ms queue budget, and a shed 503 would read as a
    # request lost to the failover.
    "max_queue_wait_ms": 30_000,
}

# What the ACL user of the TLS test may run: the list documented in docs/state.md.
ACL_COMMANDS = (
    "ping get set eval evalsha script|load multi exec discard "
    "hgetall hget hmget hset hsetnx hincrby hincrbyfloat hdel del pexpire expire "
    "hexists smembers sadd zrange zrangebyscore zadd zrem zscore"
)


def _seed(http: httpx.Client, url: str) -> int:
    assert http.put(url + "/admin/config", json={"default_profile": "eco"}, headers=ADMIN).status_code == 200
    assert http.post(url + "/admin/experiments", json=EXPERIMENT, headers=ADMIN).status_code == 201
    for i in range(20):
        assert http.post(url + "/route", json={"prompt": "hello there", "user": f"u{i}"}).status_code == 200
    return _decisions(http, url)


def _decisions(http: httpx.Client, url: str) -> int:
    readout = http.get(url + "/admin/experiments/ab", headers=ADMIN)
    assert readout.status_code == 200, readout.text
    return sum(int(v["decisions"]) for v in readout.json()["variants"])


async def _failover_under_load(
    service: ServeProcess, fail: Callable[[], None], recovered: Callable[[], float]
) -> dict[str, Any]:
    """Route from 4 clients, `fail()` (kill a primary) in a thread, wait for `recovered()` (the
    topology's own view: seconds until it has a new primary), then for /readyz to say ready."""
    results: list[int | str] = []
    stop = asyncio.Event()
    async with httpx.AsyncClient(timeout=10) as http:

        async def load(worker: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                body = {
                    "prompt": ("hello there", "summarise this")[i % 2],
                    "session_id": f"w{worker}-{i % 5}",
                }
                try:
                    results.append((await http.post(service.url + "/route", json=body)).status_code)
                except httpx.HTTPError as exc:
                    results.append(type(exc).__name__)

        tasks = [asyncio.create_task(load(w)) for w in range(4)]
        await asyncio.sleep(0.5)
        killed_at = time.monotonic()
        await asyncio.to_thread(fail)
        failover_s = await asyncio.to_thread(recovered)
        promoted_at = time.monotonic()
        ready_after_promotion = None
        while time.monotonic() - promoted_at < 15:
            if (await http.get(service.url + "/readyz")).json()["status"] == "ready":
                ready_after_promotion = time.monotonic() - promoted_at
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # routing on the new primary
        stop.set()
        await asyncio.gather(*tasks)
    return {
        "results": results,
        "failover_s": failover_s,
        "outage_s": promoted_at - killed_at,
        "ready_after_promotion_s": ready_after_promotion,
    }


def _assert_after(out: dict[str, Any], service: ServeProcess, decisions_before: int) -> None:
    results = out["results"]
    failed = [r for r in results if r != 200]
    assert len(results) > 50 and failed == [], f"{len(failed)} of {len(results)} /route failed: {failed[:5]}"
    # Degraded at most for the failover window: ready again soon after the new primary exists.
    assert out["ready_after_promotion_s"] is not None, "never ready again after the failover"
    with httpx.Client(timeout=10) as http:
        view = http.get(service.url + "/admin/config", headers=ADMIN).json()
        assert view["default_profile"] == "eco"
        experiments = http.get(service.url + "/admin/experiments", headers=ADMIN).json()["experiments"]
        assert [e["name"] for e in experiments] == ["ab"]
        # Replicated before the kill (WAIT), so nothing of it is lost; counts only grow.
        assert _decisions(http, service.url) >= decisions_before
        changed = http.put(service.url + "/admin/config", json={"default_profile": "auto"}, headers=ADMIN)
        assert changed.status_code == 200 and changed.json()["version"] > view["version"]
        metrics = http.get(service.url + "/metrics").text
    assert "routeiq_state_degraded 0.0" in metrics


def test_sentinel_failover_under_load(tmp_path: Path) -> None:
    with SentinelSet(tmp_path / "sentinel") as topology:
        service = ServeProcess(
            tmp_path / "serve",
            redis_sentinels=topology.addresses,
            redis_sentinel_service=topology.service,
            **COMMON,
        ).start()
        try:
            with httpx.Client(timeout=10) as http:
                before = _seed(http, service.url)
            # Async replication: only what a replica acknowledged survives a failover.
            wait_until(
                lambda: cli(topology.primary_port(), "wait", "1", "1000") == "1", 30.0, "replica acknowledged"
            )
            old: list[int] = []
            out = asyncio.run(
                _failover_under_load(
                    service,
                    lambda: old.append(topology.kill_primary()),
                    lambda: topology.wait_failover(old[0]),
                )
            )
            _assert_after(out, service, before)
            assert topology.primary_port() != old[0]
        finally:
            service.stop()
    print(f"sentinel: failover {out['failover_s']:.2f} s, ready {out['ready_after_promotion_s']:.2f} s later")


def test_cluster_primary_failover_under_load(tmp_path: Path) -> None:
    slot = key_slot(StateKeys("default").version.encode())
    with RedisClusterNodes(tmp_path / "cluster") as cluster:
        service = ServeProcess(
            tmp_path / "serve", redis_url=cluster.url, redis_cluster=True, **COMMON
        ).start()
        try:
            with httpx.Client(timeout=10) as http:
                before = _seed(http, service.url)
            old = cluster.port_of_slot(slot)
            # The replica must hold the seeded writes before its primary dies; on a loaded box
            # it can still be syncing after the cluster formed, so wait for it (bounded).
            wait_until(lambda: cli(old, "wait", "1", "1000") == "1", 30.0, "replica acknowledged")
            out = asyncio.run(
                _failover_under_load(
                    service, lambda: cluster.kill_port(old), lambda: cluster.wait_promoted(slot, old)
                )
            )
            _assert_after(out, service, before)
            assert cluster.port_of_slot(slot) != old
        finally:
            service.stop()
    print(f"cluster: failover {out['failover_s']:.2f} s, ready {out['ready_after_promotion_s']:.2f} s later")


def test_tls_and_an_acl_user_with_only_the_documented_commands(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    acl = ["--user", "default", "off", "--user", "routeiq", "on", ">s3cret", "~routeiq:*", "-@all"]
    acl += ["+" + c for c in ACL_COMMANDS.split()]
    redis = RedisServer(tmp_path / "redis", tls=tls, extra=acl, auth=("routeiq", "s3cret")).start()
    service = ServeProcess(
        tmp_path / "serve",
        redis_url=redis.url,
        redis_username="routeiq",
        redis_password="s3cret",
        redis_tls_ca_file=tls.ca,
        embedding_cache_redis=True,
        breaker_min_requests=2,
        **COMMON,
    )
    try:
        service.start()
        with httpx.Client(timeout=10) as http:
            before = _seed(http, service.url)
            first = http.post(service.url + "/route", json={"prompt": "write a sort", "session_id": "s1"})
            again = http.post(service.url + "/route", json={"prompt": "and tests", "session_id": "s1"})
            assert first.status_code == again.status_code == 200
            assert again.json()["strategy"] == "session"
            failing = [
                {"deployment_id": "gpt-4o", "success": False, "error_class": "rate_limit",
                 "experiment": "ab", "variant": "control", "latency_ms": 10}
            ] * 3  # fmt: skip
            assert http.post(service.url + "/feedback", json={"outcomes": failing}).status_code < 300
            breakers = http.get(service.url + "/admin/breakers", headers=ADMIN)
            assert breakers.status_code == 200 and breakers.json()["breakers"]["gpt-4o"]["state"] == "open"
            assert http.get(service.url + "/v1/deployments/stats").status_code == 200
            assert http.post(service.url + "/admin/breakers/gpt-4o/reset", headers=ADMIN).json()["reset"]
            assert _decisions(http, service.url) > before - 1
            ramp = {"weights": {"control": 3, "eco": 1}}
            assert (
                http.patch(service.url + "/admin/experiments/ab", json=ramp, headers=ADMIN).status_code == 200
            )
            assert http.post(service.url + "/admin/experiments/ab/stop", headers=ADMIN).status_code == 200
            assert http.get(service.url + "/readyz").json()["status"] == "ready"
            metrics = http.get(service.url + "/metrics").text
        fallbacks = re.findall(r'routeiq_state_fallbacks_total\{op="(\w+)"\} (\S+)', metrics)
        assert [op for op, n in fallbacks if float(n) > 0] == []  # no command refused, no TLS error
        assert "routeiq_state_degraded 0.0" in metrics
        # Really TLS, really restricted: plain TCP gets no answer, and the user cannot run
        # what RouteIQ does not need.
        assert "PONG" not in cli(redis.port or 0, "ping")
        admin_only = cli(
            redis.port or 0, "--tls", "--cacert", str(tls.ca), "--user", "routeiq", "--pass", "s3cret",
            "--no-auth-warning", "flushall",
        )  # fmt: skip
        assert "NOPERM" in admin_only
    finally:
        service.stop()
        redis.kill()
