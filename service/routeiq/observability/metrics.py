"""Prometheus metrics, all in one place. Units in names, bounded labels, injectable registry."""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    multiprocess,
    start_http_server,
)

from routeiq.settings import Settings

log = logging.getLogger("routeiq")

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
# HTTP latency: from a 0.3 ms health probe to a multi-second batch.
_HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Every value these labels take is listed here, so a fresh process exports each series at 0:
# `rate()` and alerts see a counter before its first increment, not "no data".
REJECT_REASONS = ("overloaded", "queue_full", "deadline")
ERROR_TYPES = (
    "bad_request",
    "unauthorized",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "payload_too_large",
    "invalid_request",
    "unknown_profile",
    "no_candidate",
    "overloaded",
    "deadline_exceeded",
    "not_ready",
    "state_unavailable",
    "internal_error",
)
CACHE_RESULTS = ("hit", "shared_hit", "miss")
# Any token is a valid HTTP method to the parser: others are one label value, not one each.
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
FEEDBACK_OUTCOMES = ("success", "failure")
# What became of a decision kept for learning (observability/training_rows.py).
TRAINING_ROW_RESULTS = ("queued", "written", "dropped", "failed", "unmatched")


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
    http_requests: Counter
    http_duration: Histogram
    spend: Counter
    premium_spend: Counter
    premium_target: Gauge
    training_rows: Counter
    _stages: dict[str, Any] = field(default_factory=dict)
    model_label: BoundedLabels = field(default_factory=BoundedLabels)
    # Deployment ids, like model names, can come from callers' `candidates`: bounded the same way.
    deployment_label: BoundedLabels = field(default_factory=BoundedLabels)
    # Tenants come from configuration, never from callers; the bound only guards a very long
    # tenants list from making every scrape huge.
    tenant_label: BoundedLabels = field(default_factory=lambda: BoundedLabels(128))
    _http: dict[tuple[str, str, int], tuple[Any, Any]] = field(default_factory=dict)

    def http(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """(counter, histogram) children for one request shape; cached: routes are templates
        and methods a handful, so the cache stays small."""
        if method not in _HTTP_METHODS:
            method = "other"
        key = (method, route, status)
        children = self._http.get(key)
        if children is None:
            labels = (method, route, str(status))
            children = self._http[key] = (
                self.http_requests.labels(*labels),
                self.http_duration.labels(*labels),
            )
        return children

    def _present_at_zero(self) -> None:
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
        for error_type in ERROR_TYPES:
            self.errors.labels(error_type)
        for result in CACHE_RESULTS:
            self.cache.labels(result)
        for outcome in FEEDBACK_OUTCOMES:
            self.feedback.labels(outcome)
        for result in TRAINING_ROW_RESULTS:
            self.training_rows.labels(result)
        self.state_degraded.set(0)

    def stage(self, name: str) -> Any:
        """The duration histogram child for a stage; children are cached (hot path)."""
        child = self._stages.get(name)
        if child is None:
            child = self._stages[name] = self.stage_duration.labels(name)
        return child

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None, process: bool = True) -> Metrics:
        """`process`: also register the process, platform and GC collectors (the default
        registry has them, a custom one does not). Off under multiprocess metrics, where a
        scrape is assembled from every worker's files and these would describe only the
        worker that happened to answer it."""
        registry = registry or CollectorRegistry()
        if process:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        metrics = cls(
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
                ["model", "deployment", "tier", "category", "profile", "strategy"],
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
            training_rows=Counter(
                "routeiq_training_rows_total",
                "Training rows (a decision joined with its /feedback outcome) by result: queued for "
                "the writer, written, dropped (writer queue full), failed (I/O error), unmatched "
                "(an outcome whose request_id no kept decision has).",
                ["result"],
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
                "Requests refused per tenant: over_share, over_quota (429), overloaded (503) for capacity; "
                "feedback_over_quota (429): a /feedback batch past its outcomes-per-second quota; "
                "unavailable (503): its files from the tenants file did not load.",
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
            http_requests=Counter(
                "routeiq_http_requests_total",
                "HTTP requests by method, route template ('unmatched' for none) and status.",
                ["method", "route", "status"],
                registry=registry,
            ),
            http_duration=Histogram(
                "routeiq_http_request_duration_seconds",
                "HTTP request duration, first byte in to last byte out, by method, route and status.",
                ["method", "route", "status"],
                buckets=_HTTP_BUCKETS,
                registry=registry,
            ),
            spend=Counter(
                "routeiq_estimated_spend_usd_total",
                "Estimated spend of routed requests: prompt tokens at the chosen deployment's blended "
                "catalog price (3:1 input:output).",
                ["deployment"],
                registry=registry,
            ),
            premium_spend=Counter(
                "routeiq_premium_alternative_spend_usd_total",
                "What the same requests would have cost on the best premium candidate, estimated the "
                "same way: the saving is this minus routeiq_estimated_spend_usd_total.",
                registry=registry,
            ),
            premium_target=Gauge(
                "routeiq_premium_share_target_ratio",
                "ROUTEIQ_PREMIUM_SHARE_TARGET (absent when unset): alerts compare the share with it.",
                registry=registry,
                multiprocess_mode="mostrecent",
            ),
        )
        metrics._present_at_zero()
        return metrics


class Listener(Protocol):
    def shutdown(self) -> None: ...


def start_metrics_listener(settings: Settings, metrics: Metrics) -> Listener | None:
    """The metrics-only listener (`ROUTEIQ_METRICS_PORT`), on a daemon thread. Under
    multiprocess metrics every worker tries the port and the first one holds it: each would
    serve the same totals, read from every worker's files."""
    if settings.metrics_port is None:
        return None
    registry = metrics.registry
    if settings.prometheus_multiproc_dir is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        server, _ = start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE and settings.prometheus_multiproc_dir is not None:
            return None  # another worker serves it
        raise
    log.info("metrics listener on %s:%d", settings.metrics_host, settings.metrics_port)
    listener: Listener = server
    return listener
