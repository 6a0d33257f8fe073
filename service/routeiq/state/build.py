"""Which state backend a process runs: in-memory by default, Redis when ROUTEIQ_REDIS_URL is set."""

from __future__ import annotations

from routeiq.observability.metrics import Metrics
from routeiq.settings import Settings
from routeiq.state.breakers import BreakerPolicy
from routeiq.state.memory import MemoryState
from routeiq.state.protocols import State
from routeiq.state.redis_state import RedisState, connect


def breaker_policy(settings: Settings) -> BreakerPolicy:
    return BreakerPolicy(
        enabled=settings.breaker_enabled,
        window_seconds=settings.breaker_window_seconds,
        min_requests=settings.breaker_min_requests,
        failure_rate=settings.breaker_failure_rate,
        open_seconds=settings.breaker_open_seconds,
        half_open_probes=settings.breaker_half_open_probes,
    )


def build_state(settings: Settings, metrics: Metrics) -> State:
    """No connection is made here: the first operation connects (and falls back if it cannot)."""
    policy = breaker_policy(settings)
    if settings.redis_url is None:
        return MemoryState(breaker_policy=policy)
    return RedisState(
        connect(settings.redis_url, settings.redis_timeout_ms / 1000, settings.redis_max_connections),
        settings.namespace,
        timeout_s=settings.redis_timeout_ms / 1000,
        retry_seconds=settings.redis_retry_seconds,
        breaker_policy=policy,
        metrics=metrics,
        view_cache_seconds=settings.breaker_view_cache_ms / 1000,
    )
