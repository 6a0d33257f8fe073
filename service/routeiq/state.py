"""Shared routing state behind one interface.

`MemoryState` is the embedded default (one process, nothing to install). A Redis implementation
(ROUTEIQ_REDIS_URL) keeps the same contract so that every replica acts as one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from .breaker import BreakerInfo, BreakerPolicy, CircuitView, MemoryBreakers
from .experiments import ExperimentCounts, ExperimentSpec, outcome_increments


@dataclass(frozen=True)
class SessionRecord:
    deployment_id: str
    model: str
    profile: str
    category: str
    tier: str
    complexity: float

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionRecord:
        return cls(
            deployment_id=str(data["deployment_id"]),
            model=str(data["model"]),
            profile=str(data["profile"]),
            category=str(data["category"]),
            tier=str(data["tier"]),
            complexity=float(data["complexity"]),
        )


@dataclass
class DeploymentStats:
    """Outcome counters for one deployment, as reported through POST /feedback."""

    successes: int = 0
    failures: int = 0
    latency_ms_sum: float = 0.0
    latency_count: int = 0
    quality_sum: float = 0.0
    quality_count: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        total = self.successes + self.failures
        return {
            "requests": total,
            "successes": self.successes,
            "failures": self.failures,
            "success_rate": round(self.successes / total, 4) if total else None,
            "mean_latency_ms": round(self.latency_ms_sum / self.latency_count, 2)
            if self.latency_count
            else None,
            "mean_quality": round(self.quality_sum / self.quality_count, 4) if self.quality_count else None,
            "errors": dict(self.errors),
        }


@dataclass(frozen=True)
class OutcomeRecord:
    deployment_id: str
    success: bool
    latency_ms: float | None = None
    error_class: str | None = None
    quality: float | None = None
    experiment: str | None = None
    variant: str | None = None


@dataclass(frozen=True)
class RuntimeConfig:
    """What admins change at run time, shared by every worker and replica. `version` grows with
    every change; workers poll it and apply a new snapshot (runtime.py). None = use settings."""

    version: int = 0
    strategy: str | None = None
    default_profile: str | None = None
    reload: int = 0  # bumped by POST /admin/reload: every worker re-reads its artifacts
    experiments: tuple[ExperimentSpec, ...] = ()

    def experiment(self, name: str) -> ExperimentSpec | None:
        return next((e for e in self.experiments if e.name == name), None)


class State(Protocol):
    backend: str

    async def get_session(self, key: str, ttl_seconds: float) -> SessionRecord | None:
        """The affinity record, its TTL refreshed on use; None when absent or expired."""
        ...

    async def set_session(self, key: str, record: SessionRecord, ttl_seconds: float) -> None: ...

    async def record_outcomes(self, outcomes: list[OutcomeRecord]) -> None: ...

    async def deployment_stats(self) -> dict[str, DeploymentStats]: ...

    async def open_circuits(self) -> frozenset[str]:
        """Deployments whose circuit breaker is open now."""
        ...

    async def count_premium_decision(self, premium: bool, window_seconds: int) -> None:
        """Count one decision (and whether it went to a premium model) in the sliding window."""
        ...

    async def premium_share(self, window_seconds: int) -> tuple[int, int]:
        """(premium decisions, all decisions) over the last `window_seconds`, across replicas
        when the state is shared."""
        ...

    async def circuit_view(self) -> CircuitView:
        """Open (demote) and half-open-with-probe-slots deployments, in one read."""
        ...

    async def claim_probe(self, deployment_id: str) -> None:
        """A decision picked a half-open deployment: take one of its probe slots."""
        ...

    async def breakers(self) -> dict[str, BreakerInfo]: ...

    async def reset_breaker(self, deployment_id: str) -> bool: ...

    async def config_version(self) -> int: ...

    async def load_config(self) -> RuntimeConfig: ...

    async def update_config(
        self, *, strategy: str | None = None, default_profile: str | None = None, reload: bool = False
    ) -> RuntimeConfig:
        """Set the given fields (None = leave as is), bump the version, return the new snapshot."""
        ...

    async def create_experiment(self, spec: ExperimentSpec) -> bool:
        """False when an experiment of that name exists (names are never reused: counters)."""
        ...

    async def stop_experiment(self, name: str) -> ExperimentSpec | None: ...

    async def count_decision(self, experiment: str, variant: str) -> None: ...

    async def experiment_counts(self, name: str) -> ExperimentCounts: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...


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
        self._sessions: dict[str, tuple[float, SessionRecord]] = {}
        self._stats: dict[str, DeploymentStats] = {}
        self._budget = WindowCounter(clock)
        self._breakers = MemoryBreakers(breaker_policy or BreakerPolicy(), clock)
        self._config = RuntimeConfig()
        self._counts: dict[str, ExperimentCounts] = {}

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
        return record

    async def set_session(self, key: str, record: SessionRecord, ttl_seconds: float) -> None:
        if len(self._sessions) >= self._max_sessions and key not in self._sessions:
            self._evict_expired()
            if len(self._sessions) >= self._max_sessions:
                # Bounded memory: drop the oldest insertion (dicts keep insertion order).
                self._sessions.pop(next(iter(self._sessions)))
        self._sessions[key] = (self._clock() + ttl_seconds, record)

    def _evict_expired(self) -> None:
        now = self._clock()
        for key in [k for k, (exp, _) in self._sessions.items() if exp <= now]:
            del self._sessions[key]

    async def record_outcomes(self, outcomes: list[OutcomeRecord]) -> None:
        for outcome in outcomes:
            stats = self._stats.setdefault(outcome.deployment_id, DeploymentStats())
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
                sums = self._counts.setdefault(outcome.experiment, ExperimentCounts()).outcomes
                per_variant = sums.setdefault(outcome.variant, {})
                for name, value in outcome_increments(
                    outcome.success, outcome.latency_ms, outcome.quality
                ).items():
                    per_variant[name] = per_variant.get(name, 0) + value

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

    async def load_config(self) -> RuntimeConfig:
        return self._config

    async def update_config(
        self, *, strategy: str | None = None, default_profile: str | None = None, reload: bool = False
    ) -> RuntimeConfig:
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

    async def count_decision(self, experiment: str, variant: str) -> None:
        decisions = self._counts.setdefault(experiment, ExperimentCounts()).decisions
        decisions[variant] = decisions.get(variant, 0) + 1

    async def experiment_counts(self, name: str) -> ExperimentCounts:
        counts = self._counts.get(name, ExperimentCounts())
        return ExperimentCounts(dict(counts.decisions), {k: dict(v) for k, v in counts.outcomes.items()})

    async def count_premium_decision(self, premium: bool, window_seconds: int) -> None:
        self._budget.add(premium, window_seconds)

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
