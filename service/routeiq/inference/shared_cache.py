"""Embeddings shared across workers and replicas through Redis (off by default).

What is shared is the embedding of exactly the text a decision embeds (the same key as the
in-process cache), never the decision: a hit still runs classification, strategy, profile,
session and breaker state as they are now, so a cached prompt can never bring back a choice
that a profile change or an open circuit has since ruled out.

The cache is an optimisation and never a dependency: every Redis call has a short timeout,
and after a failure Redis is left alone for `retry_seconds` (requests embed locally meanwhile)
so no request pays the timeout twice in a row.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from routeiq.inference.embedder import Vector

log = logging.getLogger("routeiq.cache")
# Not only RedisError: during a cluster failover redis-py's cluster client also raises
# RedisClusterException (not a RedisError) and RuntimeError from connections it is tearing down.
# Whatever the client library raises, a decision goes on with local state.
_FAILURES = (RedisError, RedisClusterException, OSError, RuntimeError, asyncio.TimeoutError)


class RedisEmbeddingCache:
    def __init__(
        self,
        client: Redis | RedisCluster,
        prefix: bytes,
        dimension: int,
        *,
        ttl_seconds: int = 86400,
        timeout_s: float = 0.02,
        retry_seconds: float = 1.0,
    ) -> None:
        self._r = client
        self._prefix = prefix  # key names are made in state.keys (embedding_prefix)
        self._dimension = dimension
        self._ttl = ttl_seconds
        self._timeout = timeout_s
        self._retry_seconds = retry_seconds
        self._down_until = 0.0
        self._writes: set[asyncio.Task[None]] = set()  # strong refs: fire-and-forget SETs

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    async def get(self, key: bytes) -> Vector | None:
        if not self.available:
            return None
        try:
            raw = await asyncio.wait_for(self._r.get(self._prefix + key.hex().encode()), self._timeout)
        except _FAILURES as exc:
            self._failed(exc)
            return None
        if not isinstance(raw, bytes) or len(raw) != self._dimension * 4:
            return None  # absent, or written by another embedder: embed again
        vector: Vector = np.frombuffer(raw, dtype=np.float32).copy()
        return vector

    def put(self, key: bytes, vector: Vector) -> None:
        """Store without making the request wait for Redis."""
        if not self.available:
            return
        task = asyncio.get_running_loop().create_task(self._set(key, vector.astype(np.float32).tobytes()))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _set(self, key: bytes, value: bytes) -> None:
        try:
            await asyncio.wait_for(
                self._r.set(self._prefix + key.hex().encode(), value, ex=self._ttl), self._timeout
            )
        except _FAILURES as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        if self.available:
            log.warning("shared embedding cache unavailable, embedding locally: %r", exc)
        self._down_until = time.monotonic() + self._retry_seconds

    async def close(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await self._r.aclose()
