"""Prometheus metrics, all in one place. Units in names, bounded labels, injectable registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Decisions take 0.1-50 ms; buckets resolve that range finely.
_DURATION_BUCKETS = (
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
)
_MAX_LABEL = 64


def label(value: str | None) -> str:
    """Label values are bounded in length; unknown becomes 'none'."""
    return (value or "none")[:_MAX_LABEL]


class BoundedLabels:
    """At most `limit` distinct label values, then "other". Model names can come from callers'
    `candidates`: without a bound, a client sending random names grows a series per name until
    the process runs out of memory (and /metrics scrapes with it)."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        bounded = label(value)
        if bounded in self._seen:
            return bounded
        if len(self._seen) >= self.limit:
            return "other"
        self._seen.add(bounded)
        return bounded


@dataclass
class Metrics:
    registry: CollectorRegistry
    stage_duration: Histogram
    decisions: Counter
    cache: Counter
    rejected: Counter
    errors: Counter
    feedback: Counter
    load_duration: Histogram
    inflight: Gauge
    premium_share: Gauge
    budget_downgrades: Counter
    state_fallbacks: Counter
    state_degraded: Gauge
    experiment_decisions: Counter
    breaker_state: Gauge
    auth: Counter
    tenant_decisions: Counter
    tenant_refusals: Counter
    tenant_duration: Histogram
    connections_closed: Counter
    _stages: dict[str, Any] = field(default_factory=dict)
    model_label: BoundedLabels = field(default_factory=BoundedLabels)
    # Tenants come from configuration, never from callers; the bound only guards a very long
    # tenants list from making every scrape huge.
    tenant_label: BoundedLabels = field(default_factory=lambda: BoundedLabels(128))

    def stage(self, name: str) -> Any:
        """The duration histogram child for a stage; children are cached (hot path)."""
        child = self._stages.get(name)
        if child is None:
            child = self._stages[name] = self.stage_duration.labels(name)
        return child

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        registry = registry or CollectorRegistry()
        return cls(
            registry=registry,
            stage_duration=Histogram(
                "routeiq_decision_duration_seconds",
                "Time spent per decision stage (stage=total for the whole decision).",
                ["stage"],
                buckets=_DURATION_BUCKETS,
                registry=registry,
            ),
            decisions=Counter(
                "routeiq_decisions_total",
                "Routing decisions made.",
                ["model", "tier", "category", "profile", "strategy"],
                registry=registry,
            ),
            cache=Counter(
                "routeiq_embedding_cache_total",
                "Embedding cache lookups.",
                ["result"],
                registry=registry,
            ),
            rejected=Counter(
                "routeiq_requests_rejected_total",
                "Requests refused before a decision.",
                ["reason"],
                registry=registry,
            ),
            errors=Counter(
                "routeiq_errors_total",
                "Error responses by type.",
                ["type"],
                registry=registry,
            ),
            feedback=Counter(
                "routeiq_feedback_outcomes_total",
                "Outcomes reported through /feedback.",
                ["outcome"],
                registry=registry,
            ),
            load_duration=Histogram(
                "routeiq_model_load_duration_seconds",
                "Time to load an artifact at start-up.",
                ["artifact"],
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
                registry=registry,
            ),
            inflight=Gauge(
                "routeiq_decisions_in_flight",
                "Decisions running or waiting for an inference thread.",
                registry=registry,
                multiprocess_mode="livesum",
            ),
            premium_share=Gauge(
                "routeiq_premium_share_ratio",
                "Share of budgeted decisions that went to premium models over the sliding window.",
                registry=registry,
                multiprocess_mode="mostrecent",
            ),
            budget_downgrades=Counter(
                "routeiq_premium_budget_downgrades_total",
                "Decisions moved off a premium model to keep the premium share at its target.",
                registry=registry,
            ),
            state_fallbacks=Counter(
                "routeiq_state_fallbacks_total",
                "State operations served from local memory because Redis failed or was down.",
                ["op"],
                registry=registry,
            ),
            state_degraded=Gauge(
                "routeiq_state_degraded",
                "1 while shared state (Redis) is unreachable and local state is used.",
                registry=registry,
                multiprocess_mode="livemax",
            ),
            experiment_decisions=Counter(
                "routeiq_experiment_decisions_total",
                "Decisions assigned to an A/B experiment variant (A/B traffic split).",
                ["experiment", "variant"],
                registry=registry,
            ),
            breaker_state=Gauge(
                "routeiq_circuit_breaker_state",
                "Circuit breaker per deployment as last seen: 0 closed, 1 half-open, 2 open.",
                ["deployment"],
                registry=registry,
                multiprocess_mode="livemax",
            ),
            auth=Counter(
                "routeiq_auth_requests_total",
                "Authentication checks on protected endpoints, by configured client name and result.",
                ["client", "result"],
                registry=registry,
            ),
            tenant_decisions=Counter(
                "routeiq_tenant_decisions_total",
                "Decisions made, per tenant (the authenticated client; 'default' with auth off).",
                ["tenant"],
                registry=registry,
            ),
            tenant_refusals=Counter(
                "routeiq_tenant_refusals_total",
                "Requests refused for capacity, per tenant: over_share, over_quota (429), overloaded (503).",
                ["tenant", "reason"],
                registry=registry,
            ),
            tenant_duration=Histogram(
                "routeiq_tenant_decision_duration_seconds",
                "Whole-decision time per tenant.",
                ["tenant"],
                buckets=_DURATION_BUCKETS,
                registry=registry,
            ),
            connections_closed=Counter(
                "routeiq_connections_closed_total",
                "Connections closed or refused by a connection limit (http/connections.py), by reason.",
                ["reason"],
                registry=registry,
            ),
        )
