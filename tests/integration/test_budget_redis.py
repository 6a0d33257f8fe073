"""The premium-budget window on a real redis-server: two replicas (two clients) share one
window, old buckets slide out."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from routeiq.state import redis_premium_window as budget_redis
from routeiq.state.keys import StateKeys
from routeiq.state.memory import WindowCounter
from tests._harness import RedisServer


def test_replicas_share_one_window_and_it_slides(redis_server: RedisServer, namespace: str) -> None:
    async def scenario() -> list[tuple[int, int]]:
        a, b = Redis.from_url(redis_server.url), Redis.from_url(redis_server.url)
        prefix = StateKeys(namespace)
        t = 10_000.0
        await budget_redis.count(a, prefix, True, 300, t)
        await budget_redis.count(b, prefix, False, 300, t + 1)
        await budget_redis.count(b, prefix, False, 300, t + 150)
        seen = [
            await budget_redis.share(a, prefix, 300, t + 150),
            await budget_redis.share(b, prefix, 300, t + 150),
            await budget_redis.share(a, prefix, 300, t + 310),  # the first two slid out
            await budget_redis.share(a, prefix, 60, t + 150),  # another window counts apart
        ]
        ttl = await a.ttl(prefix.budget(300, int(t // 10)))
        assert 0 < ttl <= 320
        await a.aclose()
        await b.aclose()
        return seen

    assert asyncio.run(scenario()) == [(1, 3), (1, 3), (0, 1), (0, 0)]


def test_redis_and_memory_windows_agree() -> None:
    """Same bucketing: the in-process counter gives the same answers at the same instants."""
    now = [10_000.0]
    counter = WindowCounter(lambda: now[0])
    for offset, premium in ((0, True), (1, False), (150, False)):
        now[0] = 10_000.0 + offset
        counter.add(premium, 300)
    assert counter.totals(300) == (1, 3)
    now[0] = 10_310.0
    assert counter.totals(300) == (0, 1)
