"""The values the state layer stores and returns: plain frozen data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from routeiq.decision.experiments import ExperimentSpec
from routeiq.decision.sessions import SessionRecord

__all__ = ["DeploymentStats", "OutcomeRecord", "SessionRecord", "SharedConfig"]


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
    phase: int | None = None  # the experiment's ramp phase when the outcome arrived


@dataclass(frozen=True)
class SharedConfig:
    """What admins change at run time, shared by every worker and replica. `version` grows with
    every change; workers poll it and publish a new snapshot under it (config_sync.py).
    None = use settings."""

    version: int = 0
    strategy: str | None = None
    default_profile: str | None = None
    reload: int = 0  # bumped by POST /admin/reload: every worker re-reads its artifacts
    experiments: tuple[ExperimentSpec, ...] = ()
    # /feedback looks experiments up by name: a dict made with the config, not a walk per call.
    _by_name: dict[str, ExperimentSpec] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        for e in self.experiments:
            self._by_name.setdefault(e.name, e)  # names are unique; the first wins as before

    def experiment(self, name: str) -> ExperimentSpec | None:
        return self._by_name.get(name)
