"""Client-side observability: how each routing decision was made and how long it took.

Always: in-process counters (`snapshot()`) and logging (fallbacks rate-limited per reason,
circuit transitions at WARNING). Also Prometheus metrics when the host process has
prometheus_client installed (LiteLLM's proxy usually does); nothing breaks when it has not.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

log = logging.getLogger("routeiq_client")

# Sources of a decision. `reason` is "" for all but fallback (why the sidecar was not used).
SIDECAR = "sidecar"  # the sidecar's answer was used
FALLBACK = "fallback"  # LiteLLM selects alone because the sidecar failed (reason says how)
CIRCUIT_OPEN = "circuit_open"  # LiteLLM selects alone without asking: the circuit is open
REJECTED = "rejected"  # the sidecar refused the request (unknown profile, nothing fits)
RETRY = "retry"  # a retry or fallback of a call already decided: no second /route
SINGLE = "single"  # one model among the healthy deployments: nothing to decide

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class _Prometheus:
    """The collectors, registered once per registry (two strategies in one process share them)."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter as PCounter
        from prometheus_client import Gauge, Histogram

        self.decisions = PCounter(
            "routeiq_client_decisions_total",
            "Routing decisions by source (sidecar, fallback, circuit_open, rejected, retry, single), reason.",
            ["source", "reason"],
            registry=registry,
        )
        self.duration = Histogram(
            "routeiq_client_decision_duration_seconds",
            "Time spent choosing a deployment, including the sidecar call, by source.",
            ["source"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.circuit_open = Gauge(
            "routeiq_client_circuit_open", "1 while the circuit to the sidecar is open.", registry=registry
        )
        self.feedback = PCounter(
            "routeiq_client_feedback_outcomes_total",
            "Outcomes reported to POST /feedback, by result (sent, dropped).",
            ["result"],
            registry=registry,
        )


_PROMETHEUS: weakref.WeakKeyDictionary[Any, _Prometheus] = weakref.WeakKeyDictionary()
_PROMETHEUS_LOCK = threading.Lock()


def _prometheus_for(registry: Any) -> _Prometheus | None:
    try:
        import prometheus_client
    except ImportError:
        return None
    target = prometheus_client.REGISTRY if registry is None else registry
    with _PROMETHEUS_LOCK:
        found = _PROMETHEUS.get(target)
        if found is None:
            found = _PROMETHEUS[target] = _Prometheus(target)
        return found


class ClientMetrics:
    def __init__(
        self,
        registry: Any = None,
        prometheus: bool = True,
        log_every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._prom = _prometheus_for(registry) if prometheus else None
        self._lock = threading.Lock()
        self._decisions: Counter[tuple[str, str]] = Counter()
        self._feedback: Counter[str] = Counter()
        self._log_every_s = log_every_s
        self._clock = clock
        self._last_logged: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def decision(self, source: str, seconds: float, reason: str = "", detail: str = "") -> None:
        with self._lock:
            self._decisions[(source, reason)] += 1
        if self._prom is not None:
            self._prom.decisions.labels(source, reason).inc()
            self._prom.duration.labels(source).observe(seconds)
        if source == FALLBACK:
            self._log_fallback(reason, detail)
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("routeiq decision source=%s in %.2f ms", source, seconds * 1000)

    def _log_fallback(self, reason: str, detail: str) -> None:
        # Under an outage every request falls back: log the first one, then one line per period.
        now = self._clock()
        with self._lock:
            last = self._last_logged.get(reason)
            if last is not None and now - last < self._log_every_s:
                self._suppressed[reason] += 1
                return
            self._last_logged[reason] = now
            suppressed = self._suppressed.pop(reason, 0)
        extra = f" (+{suppressed} more since last report)" if suppressed else ""
        log.warning("routeiq sidecar not used (%s): %s; LiteLLM selects alone%s", reason, detail, extra)

    def circuit(self, old: str, new: str) -> None:
        if new == "open":
            log.warning("routeiq circuit open: not calling the sidecar for a while (was %s)", old)
        elif new == "closed":
            log.warning("routeiq circuit closed: sidecar answering again")
        if self._prom is not None:
            self._prom.circuit_open.set(1 if new == "open" else 0)

    def feedback(self, result: str, count: int = 1) -> None:
        with self._lock:
            self._feedback[result] += count
        if self._prom is not None:
            self._prom.feedback.labels(result).inc(count)

    def snapshot(self) -> dict[str, Any]:
        """Counts so far: {"decisions": {"fallback:timeout": 3, "sidecar": 10}, "feedback": {...}}."""
        with self._lock:
            decisions = {(f"{s}:{r}" if r else s): n for (s, r), n in sorted(self._decisions.items())}
            return {"decisions": decisions, "feedback": dict(self._feedback)}
