"""Which state backend a process runs, and how it reaches Redis.

In-memory by default. Redis in one of three topologies (docs/state.md):
- one Redis, or one behind a proxy: `ROUTEIQ_REDIS_URL`;
- a Sentinel-managed primary: `ROUTEIQ_REDIS_SENTINELS` + `ROUTEIQ_REDIS_SENTINEL_SERVICE`; the
  client asks the Sentinels for the primary on every new connection, so after a failover the
  first reconnect lands on the promoted replica (a `ROUTEIQ_REDIS_URL` next to it gives only
  scheme, user, password and database);
- Redis Cluster: `ROUTEIQ_REDIS_URL` (any node) + `ROUTEIQ_REDIS_CLUSTER=true`; all keys of a
  namespace share one hash tag (`state.keys`), so scripts and transactions stay on one slot.
Each can add TLS (`rediss://` or `ROUTEIQ_REDIS_TLS`, `ROUTEIQ_REDIS_TLS_CA_FILE`) and an ACL
user (`ROUTEIQ_REDIS_USERNAME` / `ROUTEIQ_REDIS_PASSWORD`, or in the URL).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelManagedSSLConnection
from redis.backoff import NoBackoff

from routeiq.observability.metrics import Metrics
from routeiq.settings import Settings
from routeiq.state.breakers import BreakerPolicy
from routeiq.state.keys import tenant_namespace
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


def _auth_and_tls(settings: Settings, tls: bool) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if settings.redis_sentinels and settings.redis_url:
        # Behind Sentinel the URL's host is not used (the Sentinels name the primary), but its
        # user, password and database are: a Secret can hold them the same way in every topology.
        url = urlsplit(settings.redis_url)
        if url.username:
            options["username"] = unquote(url.username)
        if url.password:
            options["password"] = unquote(url.password)
        if url.path.strip("/").isdigit():
            options["db"] = int(url.path.strip("/"))
    if settings.redis_username:
        options["username"] = settings.redis_username
    if settings.redis_password is not None:
        options["password"] = settings.redis_password.get_secret_value()
    if tls and settings.redis_tls_ca_file is not None:
        options["ssl_ca_certs"] = str(settings.redis_tls_ca_file)
    return options


def connect_redis(
    settings: Settings, *, decode_responses: bool = True, max_connections: int | None = None
) -> Redis | RedisCluster:
    """A client for the configured topology. No connection is made here.

    Socket reads are bounded by the admin timeout (an admin readout may be large); decision-path
    operations are cut at `ROUTEIQ_REDIS_TIMEOUT_MS` by `RedisState` itself."""
    timeout = settings.redis_admin_timeout_ms / 1000
    size = max_connections or settings.redis_max_connections
    if settings.redis_sentinels:
        sentinel_options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        if settings.redis_sentinel_username:
            sentinel_options["username"] = settings.redis_sentinel_username
        if settings.redis_sentinel_password is not None:
            sentinel_options["password"] = settings.redis_sentinel_password.get_secret_value()
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            settings.sentinel_addresses, sentinel_kwargs=sentinel_options
        )
        tls = settings.redis_tls or (settings.redis_url or "").startswith("rediss://")
        node: dict[str, Any] = _auth_and_tls(settings, tls)
        if tls:
            node["connection_class"] = SentinelManagedSSLConnection
        client: Redis = sentinel.master_for(
            settings.redis_sentinel_service,
            redis_class=Redis,
            decode_responses=decode_responses,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            max_connections=size,
            **node,
        )
        return client
    assert settings.redis_url is not None
    tls = settings.redis_url.startswith("rediss://")
    if settings.redis_cluster:
        return RedisCluster.from_url(
            settings.redis_url,
            decode_responses=decode_responses,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            max_connections=size,
            **_auth_and_tls(settings, tls),
        )
    if not decode_responses:
        return Redis.from_url(
            settings.redis_url,
            decode_responses=False,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            max_connections=size,
            **_auth_and_tls(settings, tls),
        )
    return connect(settings.redis_url, timeout, size, **_auth_and_tls(settings, tls))


def redis_client(settings: Settings) -> Redis | RedisCluster | None:
    """The one client (and connection pool) every tenant's state shares; None: in-memory state."""
    return connect_redis(settings) if settings.redis_configured else None


def build_state(
    settings: Settings,
    metrics: Metrics,
    *,
    tenant: str | None = None,
    client: Redis | RedisCluster | None = None,
) -> State:
    """No connection is made here: the first operation connects (and falls back if it cannot).
    `tenant`: that tenant's own state (its own keys in Redis); `client`: a shared client."""
    policy = breaker_policy(settings)
    if not settings.redis_configured:
        return MemoryState(breaker_policy=policy)
    return RedisState(
        client or connect_redis(settings),
        tenant_namespace(settings.namespace, tenant),
        timeout_s=settings.redis_timeout_ms / 1000,
        admin_timeout_s=settings.redis_admin_timeout_ms / 1000,
        retry_seconds=settings.redis_retry_seconds,
        breaker_policy=policy,
        metrics=metrics,
        view_cache_seconds=settings.breaker_view_cache_ms / 1000,
        deployment_ttl_seconds=settings.deployment_state_ttl_seconds,
    )
