"""`MemoryState`: the embedded default (one process, nothing to install). It implements every
protocol of `state.protocols`; `RedisState` keeps the same contract across replicas."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import replace

from routeiq.decision.experiments import ExperimentCounts, ExperimentSpec, outcome_increments
from routeiq.state.breakers import MAX_BREAKERS, BreakerInfo, BreakerPolicy, CircuitView, MemoryBreakers
from routeiq.state.quotas import LocalQuotas
from routeiq.state.records import DeploymentStats, OutcomeRecord, SessionRecord, SharedConfig

# Expired sessions dropped from the front of the table per insert: more than one, so the table
# shrinks after a burst, and a constant, so an insert never costs more than that.
_EXPIRE_PER_INSERT = 4


class MemoryState:
    """Process-local state. TTLs use a monotonic clock (injectable for tests)."""

    backend = "memory"

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        max_sessions: int = 100_000,
        breaker_policy: BreakerPolicy | None = None,
    ) -> None:
        self._clock = clock
        self._max_sessions = max_sessions
        self._sessions: OrderedDict[str, tuple[float, SessionRecord]] = OrderedDict()
        self._stats: OrderedDict[str, DeploymentStats] = OrderedDict()
        self._budget = WindowCounter(clock)
        self._breakers = MemoryBreakers(breaker_policy or BreakerPolicy(), clock)
        self._config = SharedConfig()
        self._counts: dict[str, ExperimentCounts] = {}
        self._quotas = LocalQuotas()

    async def get_session(self, key: str, ttl_seconds: float) -> SessionRecord | None:
        now = self._clock()
        item = self._sessions.get(key)
        if item is None:
            return None
        expires, record = item
        if expires <= now:
            del self._sessions[key]
            return None
        self._sessions[key] = (now + ttl_seconds, record)
        self._sessions.move_to_end(key)
        return record

    async def set_session(self, key: str, record: SessionRecord, ttl_seconds: float) -> None:
        # The table is kept in order of last use, so with one TTL it is also in order of expiry:
        # expired entries and, when full, the least recently used one are all at the front. Every
        # insert costs O(1) amortised; a full table is never scanned.
        now = self._clock()
        sessions = self._sessions
        for _ in range(_EXPIRE_PER_INSERT):
            if not sessions:
                break
            oldest = next(iter(sessions))
            if sessions[oldest][0] > now:
                break
            del sessions[oldest]
        if key in sessions:
            sessions.move_to_end(key)
        elif len(sessions) >= self._max_sessions:
            sessions.popitem(last=False)
        sessions[key] = (now + ttl_seconds, record)

    def session_count(self) -> int:
        return len(self._sessions)

    async def record_outcomes(self, outcomes: list[OutcomeRecord]) -> None:
        for outcome in outcomes:
            stats = self._stats.get(outcome.deployment_id)
            if stats is None:
                if len(self._stats) >= MAX_BREAKERS:  # same bound as the breakers: oldest goes
                    self._stats.popitem(last=False)
                stats = self._stats[outcome.deployment_id] = DeploymentStats()
            else:
                self._stats.move_to_end(outcome.deployment_id)
            if outcome.success:
                stats.successes += 1
            else:
                stats.failures += 1
                error = outcome.error_class or "unknown"
                stats.errors[error] = stats.errors.get(error, 0) + 1
            if outcome.latency_ms is not None:
                stats.latency_ms_sum += outcome.latency_ms
                stats.latency_count += 1
            if outcome.quality is not None:
                stats.quality_sum += outcome.quality
                stats.quality_count += 1
            self._breakers.record(outcome.deployment_id, outcome.success)
            if outcome.experiment and outcome.variant:
                increments = outcome_increments(outcome.success, outcome.latency_ms, outcome.quality)
                counts = self._counts.setdefault(outcome.experiment, ExperimentCounts())
                counts.add(outcome.variant, increments, outcome.phase)

    async def deployment_stats(self) -> dict[str, DeploymentStats]:
        return dict(self._stats)

    async def open_circuits(self) -> frozenset[str]:
        return self._breakers.view().open

    async def circuit_view(self) -> CircuitView:
        return self._breakers.view()

    async def claim_probe(self, deployment_id: str) -> None:
        self._breakers.claim_probe(deployment_id)

    async def breakers(self) -> dict[str, BreakerInfo]:
        return self._breakers.info()

    async def reset_breaker(self, deployment_id: str) -> bool:
        return self._breakers.reset(deployment_id)

    async def config_version(self) -> int:
        return self._config.version

    async def load_config(self) -> SharedConfig:
        return self._config

    async def update_config(
        self, *, strategy: str | None = None, default_profile: str | None = None, reload: bool = False
    ) -> SharedConfig:
        c = self._config
        self._config = replace(
            c,
            version=c.version + 1,
            strategy=strategy or c.strategy,
            default_profile=default_profile or c.default_profile,
            reload=c.reload + 1 if reload else c.reload,
        )
        return self._config

    async def create_experiment(self, spec: ExperimentSpec) -> bool:
        if self._config.experiment(spec.name) is not None:
            return False
        c = self._config
        self._config = replace(c, version=c.version + 1, experiments=(*c.experiments, spec))
        return True

    async def stop_experiment(self, name: str) -> ExperimentSpec | None:
        c = self._config
        spec = c.experiment(name)
        if spec is None:
            return None
        if spec.running:
            stopped = spec.model_copy(update={"status": "stopped", "stopped_at": time.time()})
            experiments = tuple(stopped if e.name == name else e for e in c.experiments)
            self._config = replace(c, version=c.version + 1, experiments=experiments)
            return stopped
        return spec

    async def reweight_experiment(
        self, name: str, weights: Mapping[str, float], at: float
    ) -> ExperimentSpec | None:
        c = self._config
        spec = c.experiment(name)
        if spec is None or not spec.running:
            return spec
        ramped = spec.reweighted(weights, at)
        if ramped is spec:  # the weights it had
            return spec
        experiments = tuple(ramped if e.name == name else e for e in c.experiments)
        self._config = replace(c, version=c.version + 1, experiments=experiments)
        return ramped

    async def delete_experiment(self, name: str) -> bool | None:
        c = self._config
        spec = c.experiment(name)
        if spec is None:
            return None
        if spec.running:
            return False
        experiments = tuple(e for e in c.experiments if e.name != name)
        self._config = replace(c, version=c.version + 1, experiments=experiments)
        self._counts.pop(name, None)
        return True

    async def count_decision(self, experiment: str, variant: str, phase: int | None = None) -> None:
        self._counts.setdefault(experiment, ExperimentCounts()).count(variant, phase)

    async def experiment_counts(self, name: str) -> ExperimentCounts:
        return self._counts.get(name, ExperimentCounts()).copy()

    async def count_premium_decision(self, premium: bool, window_seconds: int) -> None:
        self._budget.add(premium, window_seconds)

    async def take_quota(self, bucket: str, rate: float, n: int) -> float:
        return self._quotas.take(bucket, rate, n)

    async def quota_available(self, bucket: str, rate: float) -> float:
        return self._quotas.available(bucket, rate)

    async def premium_share(self, window_seconds: int) -> tuple[int, int]:
        return self._budget.totals(window_seconds)

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        return None


# Windows are counted in BUCKETS_PER_WINDOW buckets: the window slides in steps of 1/30 of
# itself (10 s for the default 300 s), which bounds memory and Redis round trips.
BUCKETS_PER_WINDOW = 30


def bucket_seconds(window_seconds: int) -> int:
    return max(1, window_seconds // BUCKETS_PER_WINDOW)


class WindowCounter:
    """(premium, total) counts in time buckets; the last window's buckets are summed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[tuple[int, int], list[int]] = {}

    def add(self, premium: bool, window_seconds: int) -> None:
        size = bucket_seconds(window_seconds)
        bucket = int(self._clock() // size)
        counts = self._buckets.setdefault((window_seconds, bucket), [0, 0])
        counts[0] += int(premium)
        counts[1] += 1
        oldest = bucket - window_seconds // size
        for key in [k for k in self._buckets if k[0] == window_seconds and k[1] <= oldest]:
            del self._buckets[key]

    def totals(self, window_seconds: int) -> tuple[int, int]:
        size = bucket_seconds(window_seconds)
        oldest = int(self._clock() // size) - window_seconds // size
        premium = total = 0
        for (window, bucket), (p, t) in self._buckets.items():
            if window == window_seconds and bucket > oldest:
                premium += p
                total += t
        return premium, total
