"""What the decision path and the admin API need from shared state, one protocol per concern.

`State` is all of them together: the one object the engine holds (`MemoryState` or
`RedisState`). A consumer that needs one concern types against that protocol only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from routeiq.decision.experiments import ExperimentCounts, ExperimentSpec
from routeiq.state.breakers import BreakerInfo, CircuitView
from routeiq.state.records import DeploymentStats, OutcomeRecord, SessionRecord, SharedConfig


class SessionStore(Protocol):
    async def get_session(self, key: str, ttl_seconds: float) -> SessionRecord | None:
        """The affinity record, its TTL refreshed on use; None when absent or expired."""
        ...

    async def set_session(self, key: str, record: SessionRecord, ttl_seconds: float) -> None: ...


class OutcomeStore(Protocol):
    async def record_outcomes(self, outcomes: list[OutcomeRecord]) -> None:
        """Count outcomes per deployment (and per experiment variant) and feed the breakers."""
        ...

    async def deployment_stats(self) -> dict[str, DeploymentStats]: ...


class BreakerStore(Protocol):
    async def open_circuits(self) -> frozenset[str]:
        """Deployments whose circuit breaker is open now."""
        ...

    async def circuit_view(self) -> CircuitView:
        """Open (demote) and half-open-with-probe-slots deployments, in one read."""
        ...

    async def claim_probe(self, deployment_id: str) -> None:
        """A decision picked a half-open deployment: take one of its probe slots."""
        ...

    async def breakers(self) -> dict[str, BreakerInfo]: ...

    async def reset_breaker(self, deployment_id: str) -> bool: ...


class PremiumWindow(Protocol):
    async def count_premium_decision(self, premium: bool, window_seconds: int) -> None:
        """Count one decision (and whether it went to a premium model) in the sliding window."""
        ...

    async def premium_share(self, window_seconds: int) -> tuple[int, int]:
        """(premium decisions, all decisions) over the last `window_seconds`, across replicas
        when the state is shared."""
        ...


class QuotaStore(Protocol):
    async def take_quota(self, bucket: str, rate: float, n: int) -> float:
        """Take `n` from the token bucket `bucket` (`rate` per second, one second's worth held;
        `state.quotas`) that every worker sharing this state takes from. 0.0 when taken; else
        the seconds until `n` would fit, and nothing is taken."""
        ...

    async def quota_available(self, bucket: str, rate: float) -> float:
        """The bucket's tokens now; negative while a large batch's debt is paid off."""
        ...


class ConfigStore(Protocol):
    async def config_version(self) -> int: ...

    async def load_config(self) -> SharedConfig: ...

    async def update_config(
        self, *, strategy: str | None = None, default_profile: str | None = None, reload: bool = False
    ) -> SharedConfig:
        """Set the given fields (None = leave as is), bump the version, return the new snapshot."""
        ...

    async def create_experiment(self, spec: ExperimentSpec) -> bool:
        """False when an experiment of that name exists (names are never reused: counters)."""
        ...

    async def stop_experiment(self, name: str) -> ExperimentSpec | None: ...

    async def reweight_experiment(
        self, name: str, weights: Mapping[str, float], at: float
    ) -> ExperimentSpec | None:
        """Give a running experiment new variant weights in place (`ExperimentSpec.reweighted`:
        counters kept, the change recorded) and bump the version. None when there is no such
        experiment; a stopped one is returned unchanged. ValueError when the weights do not fit
        its variants."""
        ...

    async def delete_experiment(self, name: str) -> bool | None:
        """Remove a stopped experiment and its counters (the name becomes free again). None when
        there is no such experiment, False when it is still running (stop it first)."""
        ...


class ExperimentCounters(Protocol):
    async def count_decision(self, experiment: str, variant: str, phase: int | None = None) -> None:
        """One decision for `variant`, in its total and, when given, in ramp phase `phase`."""
        ...

    async def experiment_counts(self, name: str) -> ExperimentCounts: ...


class State(
    SessionStore,
    OutcomeStore,
    BreakerStore,
    PremiumWindow,
    QuotaStore,
    ConfigStore,
    ExperimentCounters,
    Protocol,
):
    backend: str

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...
