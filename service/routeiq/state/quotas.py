"""Quotas: token buckets that every worker sharing a state counts into.

`Quota` is the bucket itself: `rate` per second, holding one second's worth (at least one). A
batch larger than that is let in on a full bucket and leaves it in debt, so the average rate
holds and no batch size is refused forever. `MemoryState` keeps one per bucket name (one
process); `RedisState` keeps the same bucket in Redis (`state.lua.TAKE_QUOTA`), so a tenant's
quota is the service's, whatever the number of workers and replicas.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# The bucket names a tenant's state holds (a fixed set: nothing a caller sends names a bucket).
DECISIONS = "decisions"
FEEDBACK = "feedback"


@dataclass
class Quota:
    """Token bucket: `rate` decisions (or outcomes) per second, bursts up to one second's worth."""

    rate: float
    tokens: float = 0.0
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = burst_of(self.rate)

    def _refill(self) -> float:
        """The tokens now; returns the burst."""
        now = time.monotonic()
        self.tokens = refilled(self.tokens, self.at, self.rate, now)
        self.at = now
        return burst_of(self.rate)

    def take(self, n: int = 1) -> bool:
        burst = self._refill()
        if self.tokens < min(n, burst):
            return False
        self.tokens -= n
        return True

    def allows(self, n: int = 1) -> bool:
        """Whether `take(n)` would succeed now (nothing is taken)."""
        return self.tokens >= min(n, self._refill())

    def wait(self, n: int = 1) -> float:
        """Seconds until `take(n)` would succeed (0 if it would now)."""
        burst = self._refill()
        return max(0.0, (min(n, burst) - self.tokens) / self.rate)

    def available(self) -> float:
        """The tokens now; negative while a large batch's debt is paid off."""
        self._refill()
        return self.tokens


def burst_of(rate: float) -> float:
    return max(rate, 1.0)


def refilled(tokens: float | None, at: float | None, rate: float, now: float) -> float:
    """A stored bucket's tokens at `now` (full when nothing is stored: the key expires only
    once the bucket would be full again). A clock behind `at` refills nothing."""
    burst = burst_of(rate)
    if tokens is None or at is None:
        return burst
    return min(burst, tokens + max(0.0, now - at) * rate)


class LocalQuotas:
    """The buckets of one process, by name. A bucket whose rate changed starts again full, as a
    new quota does."""

    def __init__(self) -> None:
        self._buckets: dict[str, Quota] = {}

    def _bucket(self, name: str, rate: float) -> Quota:
        bucket = self._buckets.get(name)
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[name] = Quota(rate)
        return bucket

    def take(self, name: str, rate: float, n: int) -> float:
        """0.0 when `n` were taken, else the seconds until they would fit (nothing taken)."""
        bucket = self._bucket(name, rate)
        if bucket.take(n):
            return 0.0
        return max(bucket.wait(n), 1e-6)

    def available(self, name: str, rate: float) -> float:
        return self._bucket(name, rate).available()
