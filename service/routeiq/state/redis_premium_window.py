"""The premium-budget window in Redis, so every replica counts into one window.

Same bucketing as `state.WindowCounter` (BUCKETS_PER_WINDOW buckets per window): one hash per
bucket, `StateKeys.budget` (`routeiq:{<namespace>}:budget:<window>:<bucket>`) with fields
`premium` and `total`, HINCRBY (exact across replicas) and an expiry of one window past the
bucket's end. Reading sums the window's buckets in one pipelined round trip. `RedisState`
wires these two functions into `count_premium_decision` / `premium_share` behind its timeout
and local fallback.
Bucket numbers come from wall-clock time (replicas must agree on it; NTP is enough).
"""

from __future__ import annotations

from typing import Any

from routeiq.state.keys import StateKeys
from routeiq.state.memory import bucket_seconds


async def count(client: Any, keys: StateKeys, premium: bool, window_seconds: int, now: float) -> None:
    size = bucket_seconds(window_seconds)
    bucket = int(now // size)
    key = keys.budget(window_seconds, bucket)
    pipe = client.pipeline(transaction=False)
    if premium:
        pipe.hincrby(key, "premium", 1)
    pipe.hincrby(key, "total", 1)
    pipe.expire(key, window_seconds + 2 * size)
    await pipe.execute()


async def share(client: Any, keys: StateKeys, window_seconds: int, now: float) -> tuple[int, int]:
    size = bucket_seconds(window_seconds)
    newest = int(now // size)
    pipe = client.pipeline(transaction=False)
    for bucket in range(newest - window_seconds // size + 1, newest + 1):
        pipe.hmget(keys.budget(window_seconds, bucket), "premium", "total")
    premium = total = 0
    for p, t in await pipe.execute():
        premium += int(p or 0)
        total += int(t or 0)
    return premium, total
