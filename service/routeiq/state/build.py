"""Which state backend a process runs: in-memory by default, Redis when ROUTEIQ_REDIS_URL is set."""

from __future__ import annotations

from redis.asyncio import Redis

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


def tenant_namespace(namespace: str, tenant: str | None) -> str:
    """The key namespace of one tenant's state. No tenant (auth off, the default tenant) is the
    namespace itself, so its keys are exactly those of a single-tenant service. ':' cannot occur
    in a namespace setting, so no tenant's keys can collide with another namespace's."""
    return namespace if tenant is None else f"{namespace}:tenant:{tenant}"


def redis_client(settings: Settings) -> Redis | None:
    """The one connection pool every tenant's state shares (None: in-memory state)."""
    if settings.redis_url is None:
        return None
    return connect(settings.redis_url, settings.redis_timeout_ms / 1000, settings.redis_max_connections)


def build_state(
    settings: Settings, metrics: Metrics, *, tenant: str | None = None, client: Redis | None = None
) -> State:
    """No connection is made here: the first operation connects (and falls back if it cannot).
    `tenant`: that tenant's own state (its own keys in Redis); `client`: a shared pool."""
    policy = breaker_policy(settings)
    if settings.redis_url is None:
        return MemoryState(breaker_policy=policy)
    if client is None:
        client = connect(settings.redis_url, settings.redis_timeout_ms / 1000, settings.redis_max_connections)
    return RedisState(
        client,
        tenant_namespace(settings.namespace, tenant),
        timeout_s=settings.redis_timeout_ms / 1000,
        retry_seconds=settings.redis_retry_seconds,
        breaker_policy=policy,
        metrics=metrics,
        view_cache_seconds=settings.breaker_view_cache_ms / 1000,
    )
