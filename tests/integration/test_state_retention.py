"""Per-deployment state in Redis has a bounded life: a deployment id that stops reporting
disappears (stats, the reported-ids set, its breaker entries), and one that keeps reporting, or
whose breaker is still open, is never lost. Real redis-server, real (short) times."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from routeiq.state.breakers import BreakerPolicy
from routeiq.state.keys import StateKeys
from routeiq.state.records import OutcomeRecord
from routeiq.state.redis_state import RedisState, connect
from tests._harness import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

TTL = 1.0  # how long a deployment that stops reporting keeps its state (seconds)


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = connect(redis_server.url, 1.0)
    yield client
    await client.aclose()


def make_state(redis_server: RedisServer, namespace: str, policy: BreakerPolicy) -> RedisState:
    return RedisState(
        connect(redis_server.url, 1.0),
        namespace,
        timeout_s=1.0,
        breaker_policy=policy,
        deployment_ttl_seconds=TTL,
    )


def fail(deployment: str, n: int) -> list[OutcomeRecord]:
    return [OutcomeRecord(deployment, False, 100.0, "timeout")] * n


async def test_stats_of_a_silent_deployment_expire_and_a_reporting_one_stays(
    redis_server: RedisServer, raw: Redis, namespace: str
) -> None:
    state = make_state(redis_server, namespace, BreakerPolicy(enabled=False))
    k = StateKeys(namespace)
    try:
        await state.record_outcomes([OutcomeRecord("gone", True, 10.0), OutcomeRecord("live", True, 10.0)])
        ttl_ms = await raw.pttl(k.stats("gone"))
        assert 0 < ttl_ms <= TTL * 1000  # a TTL from the first write, not "no expiry" (-1)
        for _ in range(8):  # 1.6 s of reports: twice the TTL, alive only because writes refresh it
            await asyncio.sleep(0.2)
            await state.record_outcomes([OutcomeRecord("live", True, 10.0)])
        stats = await state.deployment_stats()
        assert set(stats) == {"live"}
        assert stats["live"].successes == 9  # none of the live deployment's counts lost
        assert not await raw.exists(k.stats("gone"))
        members = {str(m) for m in await raw.zrange(k.stats_ids, 0, -1)}
        assert members == {"live"}  # the silent id was pruned from the index too
        assert "gone" not in await state.breakers()
    finally:
        await state.close()


async def test_a_half_open_breaker_nobody_reports_on_is_pruned_an_open_one_is_kept(
    redis_server: RedisServer, raw: Redis, namespace: str
) -> None:
    short = BreakerPolicy(window_seconds=5, min_requests=2, failure_rate=0.5, open_seconds=0.2)
    long = BreakerPolicy(window_seconds=5, min_requests=2, failure_rate=0.5, open_seconds=30)
    k = StateKeys(namespace)
    gone = make_state(redis_server, namespace, short)
    held = make_state(redis_server, namespace, long)
    try:
        await gone.record_outcomes(fail("gone", 2))
        await held.record_outcomes(fail("still-open", 2))
        await asyncio.sleep(0.25)
        await gone.claim_probe("gone")  # half-open now: a probe claimed, its outcome never sent
        assert await raw.hget(k.breaker_probes, "gone")
        await asyncio.sleep(short.open_seconds + TTL + 0.1)  # half-open longer than the TTL
        view = await gone.circuit_view()  # every decision reads this script: it prunes
        assert "gone" not in view.open | view.probing
        assert await raw.zscore(k.breaker_open, "gone") is None
        assert not await raw.hexists(k.breaker_probes, "gone")
        # Opened before the TTL ran out but open for 30 s: still open, whatever the TTL.
        assert "still-open" in view.open
        assert (await held.breakers())["still-open"].state == "open"
    finally:
        await gone.close()
        await held.close()


async def test_ids_written_by_the_previous_version_get_a_life_too(
    redis_server: RedisServer, raw: Redis, namespace: str
) -> None:
    """The set older versions kept (`stats:deployments`, no expiry) is taken over on the first
    write: its ids join the index and their stats get the TTL, so nothing is stranded."""
    k = StateKeys(namespace)
    legacy = k.prefix + "stats:deployments"
    await raw.sadd(legacy, "old")
    await raw.hset(k.stats("old"), mapping={"successes": 3})
    state = make_state(redis_server, namespace, BreakerPolicy(enabled=False))
    try:
        await state.record_outcomes([OutcomeRecord("new", True, 10.0)])
        assert not await raw.exists(legacy)
        assert (await state.deployment_stats())["old"].successes == 3
        assert 0 < await raw.pttl(k.stats("old")) <= TTL * 1000
    finally:
        await state.close()
