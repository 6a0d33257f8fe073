"""Redis-backed shared state: every worker and replica acts as one (keys in docs/state.md).

Two kinds of operation:
- on the decision path (sessions, circuits, outcomes, experiment counters): a per-operation
  timeout, and on any Redis failure the local `MemoryState` answers instead; Redis is then left
  alone for `retry_seconds` so requests do not each pay the timeout. Routing never fails
  because of Redis.
- admin changes and readouts: raise `StateUnavailable` (503) instead; a change that only one
  worker would see is worse than a clear refusal.

Read-modify-write steps (breakers, outcome sums) run as Lua scripts: atomic across replicas.
Times are wall-clock seconds (`time.time`), shared by every host; keep their clocks in sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

import redis
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from routeiq.decision.experiments import OUTCOME_FIELDS, ExperimentCounts, ExperimentSpec
from routeiq.errors import StateUnavailable
from routeiq.observability.metrics import Metrics
from routeiq.state import redis_premium_window as budget_redis
from routeiq.state.breakers import BreakerInfo, BreakerPolicy, CircuitView
from routeiq.state.keys import StateKeys
from routeiq.state.lua import (
    BUMP_VERSION,
    CHANGE_EXPERIMENT,
    CIRCUIT_VIEW,
    CLAIM_PROBE,
    LOAD_CONFIG,
    RECORD_OUTCOMES,
    TAKE_QUOTA,
)
from routeiq.state.memory import MemoryState
from routeiq.state.quotas import refilled
from routeiq.state.records import DeploymentStats, OutcomeRecord, SessionRecord, SharedConfig

log = logging.getLogger("routeiq.state")
T = TypeVar("T")
_CHANGE_ATTEMPTS = 50  # read-change-write rounds an experiment change tries before giving up
# Not only RedisError: during a cluster failover redis-py's cluster client also raises
# RedisClusterException (not a RedisError) and RuntimeError from connections it is tearing down.
# Whatever the client library raises, a decision goes on with local state.
_FAILURES = (RedisError, RedisClusterException, OSError, RuntimeError, asyncio.TimeoutError)
_CLIENT_DIR = os.path.dirname(redis.__file__) + os.sep


def _client_failure(exc: BaseException) -> bool:
    """A failure of the connection to Redis, not a bug of ours: one of `_FAILURES`, or an
    exception raised inside redis-py itself. On a cluster failover under load its connection
    can lose its writer while a command is being sent, and it raises AttributeError from its own
    code. An AttributeError raised in our code is still raised."""
    if isinstance(exc, _FAILURES):
        return True
    tb, last = exc.__traceback__, None
    while tb is not None:
        last, tb = tb, tb.tb_next
    return last is not None and last.tb_frame.f_code.co_filename.startswith(_CLIENT_DIR)


def connect(url: str, timeout_s: float, max_connections: int = 32, **options: Any) -> Redis:
    """One Redis (or one behind a proxy): redis:// rediss:// unix://. A blocking pool: a burst
    waits for a free connection instead of failing. No client-side retries: the local fallback
    is the retry. `timeout_s` bounds a socket read; decision-path operations are cut shorter by
    `RedisState` itself. Sentinel and Cluster: `state.build.connect_redis`."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        decode_responses=True,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
        **options,
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


class RedisState:
    backend = "redis"

    def __init__(
        self,
        client: Redis | RedisCluster,
        namespace: str = "default",
        *,
        timeout_s: float = 0.015,
        admin_timeout_s: float = 2.0,
        retry_seconds: float = 1.0,
        breaker_policy: BreakerPolicy | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        view_cache_seconds: float = 0.0,
        deployment_ttl_seconds: float = 7 * 86400.0,
    ) -> None:
        self._r = client
        self.keys = k = StateKeys(namespace)
        self._k = k
        self._timeout = timeout_s
        self._admin_timeout = max(timeout_s, admin_timeout_s)
        self._probe: asyncio.Task[None] | None = None
        self._retry_seconds = retry_seconds
        self._policy = breaker_policy or BreakerPolicy()
        self._metrics = metrics
        self._clock = clock
        # Local state: write-through copy of sessions and the stand-in while Redis is down.
        self.local = MemoryState(breaker_policy=self._policy)
        self._down_until = 0.0
        self._degraded = False
        self._last_view = CircuitView()
        # Every decision reads the circuit view; reusing it for a few ms saves a round trip per
        # decision. Breakers judge failure rates over tens of seconds: that staleness is noise.
        self._view_cache_seconds = view_cache_seconds
        self._view_expires = 0.0
        self._last_config = SharedConfig()
        # A deployment that stops reporting loses its stats and stale breaker entries after this
        # (docs/state.md, "Retention"); one that reports keeps them, refreshed by every report.
        self._ttl_ms = max(1, int(deployment_ttl_seconds * 1000))
        self._record = client.register_script(RECORD_OUTCOMES)
        self._view = client.register_script(CIRCUIT_VIEW)
        self._claim = client.register_script(CLAIM_PROBE)
        self._change_experiment = client.register_script(CHANGE_EXPERIMENT)
        self._load = client.register_script(LOAD_CONFIG)
        self._take_quota = client.register_script(TAKE_QUOTA)

    # -- failure handling
    async def _try(
        self,
        op: str,
        make: Callable[[], Awaitable[T]],
        fallback: Callable[[], Awaitable[T]],
        timeout_s: float | None = None,
    ) -> T:
        if self._degraded:
            # While degraded no request waits on Redis: one background ping per retry interval
            # finds out when it is back. Were each request after the interval a probe, every
            # one of them would pay the full timeout while Redis is still stalled.
            self._start_probe()
            self._count_fallback(op)
            return await fallback()
        try:
            async with asyncio.timeout(timeout_s or self._timeout):  # no extra task, unlike wait_for
                result = await make()
        except Exception as exc:
            if not _client_failure(exc):
                raise
            self._mark_down(op, exc)
            self._count_fallback(op)
            return await fallback()
        self._mark_up()
        return result

    def _start_probe(self) -> None:
        if self._probe is not None or time.monotonic() < self._down_until:
            return
        self._probe = asyncio.get_running_loop().create_task(self._run_probe(), name="routeiq-redis-probe")

    async def _run_probe(self) -> None:
        try:
            async with asyncio.timeout(self._admin_timeout):
                await self._r.ping()
        except Exception as exc:
            if not _client_failure(exc):
                raise
            self._mark_down("probe", exc)
        else:
            self._mark_up()
        finally:
            self._probe = None

    async def _must(self, op: str, make: Callable[[], Awaitable[T]], *, write: bool = False) -> T:
        try:
            async with asyncio.timeout(self._admin_timeout):
                result = await make()
        except Exception as exc:
            if not _client_failure(exc):
                raise
            self._mark_down(op, exc)
            message = f"shared state (Redis) is unavailable: {type(exc).__name__}"
            if write and isinstance(exc, (TimeoutError, asyncio.TimeoutError, OSError)):
                # The request may have reached Redis before the answer was lost: say so rather
                # than let a 503 read as "nothing changed".
                message += "; the change may have been applied: read GET /admin/config before retrying"
            raise StateUnavailable(message) from exc
        self._mark_up()
        return result

    def _count_fallback(self, op: str) -> None:
        if self._metrics is not None:
            self._metrics.state_fallbacks.labels(op).inc()

    def _mark_down(self, op: str, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self._retry_seconds
        if not self._degraded:
            self._degraded = True
            log.warning("redis unavailable (%s: %r); routing goes on with local state", op, exc)
            if self._metrics is not None:
                self._metrics.state_degraded.set(1)

    def _mark_up(self) -> None:
        if self._degraded:
            self._degraded = False
            log.warning("redis is back; shared state restored")
            if self._metrics is not None:
                self._metrics.state_degraded.set(0)

    # -- sessions
    def _session_key(self, key: str) -> str:
        return self._k.session(key)

    async def get_session(self, key: str, ttl_seconds: float) -> SessionRecord | None:
        async def read() -> SessionRecord | None:
            pipe = self._r.pipeline(transaction=False)
            pipe.hgetall(self._session_key(key))
            pipe.pexpire(self._session_key(key), int(ttl_seconds * 1000))
            data, _ = await pipe.execute()
            if not data:
                return await self.local.get_session(key, ttl_seconds)
            try:
                return SessionRecord.from_dict(data)
            except (KeyError, ValueError):
                return None

        return await self._try("get_session", read, lambda: self.local.get_session(key, ttl_seconds))

    async def set_session(self, key: str, record: SessionRecord, ttl_seconds: float) -> None:
        await self.local.set_session(key, record, ttl_seconds)

        async def write() -> None:
            pipe = self._r.pipeline(transaction=True)
            pipe.delete(self._session_key(key))
            pipe.hset(self._session_key(key), mapping=_mapping(record.to_dict()))
            pipe.pexpire(self._session_key(key), int(ttl_seconds * 1000))
            await pipe.execute()

        await self._try("set_session", write, _nothing)

    # -- outcomes and breakers
    async def record_outcomes(self, outcomes: list[OutcomeRecord]) -> None:
        p = self._policy
        k = self._k
        keys = [k.stats_ids, k.breaker_open, k.breaker_ok, k.breaker_probes, k.legacy_stats_ids]
        args: list[Any] = [
            repr(self._clock()),
            "1" if p.enabled else "0",
            int(p.window_seconds * 1000),
            p.min_requests,
            repr(p.failure_rate),
            repr(p.open_seconds),
            p.half_open_probes,
            self._ttl_ms,
        ]
        for o in outcomes:
            keys += [k.stats(o.deployment_id), k.breaker_window(o.deployment_id)]
            keys.append(k.exp_outcomes(o.experiment) if o.experiment else k.version)
            args += [
                o.deployment_id,
                "1" if o.success else "0",
                "" if o.latency_ms is None else repr(float(o.latency_ms)),
                o.error_class or "",
                "" if o.quality is None else repr(float(o.quality)),
                o.experiment or "",
                o.variant or "",
                "" if o.phase is None else str(o.phase),
            ]

        self._view_expires = 0.0  # this worker sees its own feedback at once

        async def write() -> None:
            opened, adopted = await self._record(keys=keys, args=args)
            for deployment_id in opened or ():
                log.warning("circuit breaker opened for deployment %s", deployment_id)
            if adopted:  # once, after an upgrade: the old set's stats had no expiry either
                pipe = self._r.pipeline(transaction=False)
                for deployment_id in adopted:
                    pipe.pexpire(k.stats(deployment_id), self._ttl_ms)
                await pipe.execute()

        await self._try("record_outcomes", write, lambda: self.local.record_outcomes(outcomes))

    async def deployment_stats(self) -> dict[str, DeploymentStats]:
        async def read() -> dict[str, DeploymentStats]:
            ids = await self._reported()
            pipe = self._r.pipeline(transaction=False)
            for deployment_id in ids:
                pipe.hgetall(self._k.stats(deployment_id))
            raws = await pipe.execute()
            return {d: _stats(raw) for d, raw in zip(ids, raws, strict=True) if raw}

        return await self._must("deployment_stats", read)

    async def open_circuits(self) -> frozenset[str]:
        return (await self.circuit_view()).open

    async def circuit_view(self) -> CircuitView:
        if not self._degraded and time.monotonic() < self._view_expires:
            return self._last_view

        async def read() -> CircuitView:
            open_, probing = await self._view(
                keys=[self._k.breaker_open, self._k.breaker_probes, self._k.breaker_ok],
                args=[repr(self._clock()), self._policy.half_open_probes, self._ttl_ms],
            )
            self._last_view = CircuitView(frozenset(open_), frozenset(probing))
            self._view_expires = time.monotonic() + self._view_cache_seconds
            return self._last_view

        async def local() -> CircuitView:
            # What was open when Redis went away stays open, plus what this worker saw since.
            mine = await self.local.circuit_view()
            return CircuitView(self._last_view.open | mine.open, mine.probing - self._last_view.open)

        return await self._try("circuit_view", read, local)

    async def claim_probe(self, deployment_id: str) -> None:
        self._view_expires = 0.0

        async def write() -> None:
            await self._claim(
                keys=[self._k.breaker_open, self._k.breaker_probes],
                args=[repr(self._clock()), deployment_id, repr(self._policy.open_seconds)],
            )

        await self._try("claim_probe", write, lambda: self.local.claim_probe(deployment_id))

    async def breakers(self) -> dict[str, BreakerInfo]:
        async def read() -> dict[str, BreakerInfo]:
            now = self._clock()
            k = self._k
            pairs = await self._r.zrange(k.breaker_open, 0, -1, withscores=True)
            opened = {str(d): float(score) for d, score in cast("list[tuple[str, float]]", pairs)}
            ids = sorted(set(await self._reported()) | set(opened))
            pipe = self._r.pipeline(transaction=False)
            for d in ids:
                pipe.hgetall(k.breaker_window(d))
                pipe.hget(k.breaker_probes, d)
                pipe.hget(k.breaker_ok, d)
            raw = await pipe.execute()
            out: dict[str, BreakerInfo] = {}
            for i, d in enumerate(ids):
                window, claim, ok = raw[3 * i : 3 * i + 3]
                probes = _claimed(claim, now)
                if d in opened and opened[d] > now:
                    out[d] = BreakerInfo("open", seconds_until_half_open=round(opened[d] - now, 3))
                elif d in opened:
                    out[d] = BreakerInfo(
                        "half_open", probes_claimed=int(probes or 0), probe_successes=int(ok or 0)
                    )
                elif window:
                    out[d] = BreakerInfo(
                        "closed", int(window.get("requests", 0)), int(window.get("failures", 0))
                    )
            return out

        return await self._must("breakers", read)

    async def reset_breaker(self, deployment_id: str) -> bool:
        async def write() -> bool:
            pipe = self._r.pipeline(transaction=True)
            k = self._k
            pipe.zrem(k.breaker_open, deployment_id)
            pipe.hdel(k.breaker_ok, deployment_id)
            pipe.hdel(k.breaker_probes, deployment_id)
            pipe.delete(k.breaker_window(deployment_id))
            removed, *_ = await pipe.execute()
            return bool(removed)

        await self.local.reset_breaker(deployment_id)
        self._view_expires = 0.0
        return await self._must("reset_breaker", write, write=True)

    # -- runtime config and experiments
    async def config_version(self) -> int:
        async def read() -> int:
            value = await self._r.get(self._k.version)
            if value is None and self._last_config.version > 0:
                await self._reseed(self._last_config)
                return self._last_config.version
            return int(value or 0)

        async def last() -> int:
            return self._last_config.version

        return await self._try("config_version", read, last, self._admin_timeout)

    async def _reseed(self, config: SharedConfig) -> None:
        """Redis came back empty (restarted without persistence): put back what every worker
        still holds, so admin changes and experiments survive. Idempotent across workers."""
        log.warning("redis lost the shared config; restoring version %d from memory", config.version)
        k = self._k
        pipe = self._r.pipeline(transaction=True)
        for field, value in (("strategy", config.strategy), ("default_profile", config.default_profile)):
            if value:
                pipe.hsetnx(k.config, field, value)
        pipe.hsetnx(k.config, "reload", config.reload)
        for spec in config.experiments:
            pipe.hsetnx(k.experiments, spec.name, spec.model_dump_json())
            pipe.zadd(k.experiments_log, {spec.name: config.version}, nx=True)
        pipe.set(k.version, config.version, nx=True)
        await pipe.execute()

    async def load_config(self) -> SharedConfig:
        async def last() -> SharedConfig:
            return self._last_config

        return await self._try("load_config", self._fetch_config, last, self._admin_timeout)

    async def _fetch_config(self) -> SharedConfig:
        """One consistent read. After the first, only the experiments changed since the version
        this worker holds are read: thousands of experiment definitions are not re-read and
        re-parsed on every admin change."""
        k, held = self._k, self._last_config
        version, flat_config, full, flat = await self._load(
            keys=[k.version, k.config, k.experiments, k.experiments_log], args=[held.version]
        )
        config = dict(zip(flat_config[::2], flat_config[1::2], strict=True))
        changes = dict(zip(flat[::2], flat[1::2], strict=True))
        specs = {} if full else {e.name: e for e in held.experiments}
        for name, raw in changes.items():
            if raw:
                specs[name] = ExperimentSpec.model_validate_json(raw)
            else:
                specs.pop(name, None)  # deleted
        self._last_config = SharedConfig(
            version=int(version or 0),
            strategy=config.get("strategy") or None,
            default_profile=config.get("default_profile") or None,
            reload=int(config.get("reload", 0)),
            experiments=tuple(sorted(specs.values(), key=lambda e: (e.created_at, e.name))),
        )
        return self._last_config

    async def _version_floor(self) -> int:
        """Before an admin write: if Redis lost the shared config, put back what this worker
        holds first (a write must not leave Redis with the change and nothing else), and return
        the version the write must move past."""
        if self._last_config.version > 0 and await self._r.get(self._k.version) is None:
            await self._reseed(self._last_config)
        return self._last_config.version

    async def update_config(
        self, *, strategy: str | None = None, default_profile: str | None = None, reload: bool = False
    ) -> SharedConfig:
        async def write() -> int:
            floor = await self._version_floor()
            pipe = self._r.pipeline(transaction=True)
            fields = {k: v for k, v in (("strategy", strategy), ("default_profile", default_profile)) if v}
            if fields:
                pipe.hset(self._k.config, mapping=_mapping(fields))
            if reload:
                pipe.hincrby(self._k.config, "reload", 1)
            pipe.eval(BUMP_VERSION, 1, self._k.version, floor)
            return int((await pipe.execute())[-1])

        version = await self._must("update_config", write, write=True)
        try:
            return await self._must("load_config", self._fetch_config)
        except StateUnavailable as exc:
            raise StateUnavailable(
                f"the change was written (version {version}) but could not be read back; every "
                "worker applies it with its next config poll"
            ) from exc

    async def create_experiment(self, spec: ExperimentSpec) -> bool:
        async def write() -> bool:
            floor = await self._version_floor()
            return bool(await self._experiment_change("create", spec.name, spec.model_dump_json(), floor))

        return await self._must("create_experiment", write, write=True)

    async def stop_experiment(self, name: str) -> ExperimentSpec | None:
        def stop(spec: ExperimentSpec) -> ExperimentSpec:
            return spec.model_copy(update={"status": "stopped", "stopped_at": time.time()})

        return await self._change_running("stop_experiment", name, stop)

    async def reweight_experiment(
        self, name: str, weights: Mapping[str, float], at: float
    ) -> ExperimentSpec | None:
        return await self._change_running("reweight_experiment", name, lambda s: s.reweighted(weights, at))

    async def _change_running(
        self, op: str, name: str, change: Callable[[ExperimentSpec], ExperimentSpec]
    ) -> ExperimentSpec | None:
        """Read a running experiment, change it, write it back only if nobody changed it in
        between (else read again): a ramp and a stop at the same time never undo each other.
        None when there is no such experiment; a stopped one is returned as it is."""

        async def write() -> ExperimentSpec | None:
            for _ in range(_CHANGE_ATTEMPTS):
                floor = await self._version_floor()
                raw = await self._r.hget(self._k.experiments, name)
                if raw is None:
                    return None
                spec = ExperimentSpec.model_validate_json(raw)
                if not spec.running:
                    return spec
                changed = change(spec)
                if changed is spec:  # nothing to write
                    return spec
                if await self._experiment_change("replace", name, changed.model_dump_json(), floor, raw) > 0:
                    return changed
            raise StateUnavailable(f"experiment {name!r} kept changing under this write; try again")

        return await self._must(op, write, write=True)

    async def _experiment_change(
        self, mode: str, name: str, spec: str, floor: int, read: str | bytes = ""
    ) -> int:
        k = self._k
        keys = [k.experiments, k.experiments_log, k.version, k.exp_decisions(name), k.exp_outcomes(name)]
        return int(await self._change_experiment(keys=keys, args=[mode, name, spec, floor, read]))

    async def delete_experiment(self, name: str) -> bool | None:
        async def write() -> bool | None:
            floor = await self._version_floor()
            raw = await self._r.hget(self._k.experiments, name)
            if raw is None:
                return None
            if ExperimentSpec.model_validate_json(raw).running:
                return False
            await self._experiment_change("delete", name, "", floor)
            return True

        return await self._must("delete_experiment", write, write=True)

    async def count_premium_decision(self, premium: bool, window_seconds: int) -> None:
        async def write() -> None:
            await budget_redis.count(self._r, self._k, premium, window_seconds, self._clock())

        await self._try(
            "count_premium_decision",
            write,
            lambda: self.local.count_premium_decision(premium, window_seconds),
        )

    async def premium_share(self, window_seconds: int) -> tuple[int, int]:
        async def read() -> tuple[int, int]:
            return await budget_redis.share(self._r, self._k, window_seconds, self._clock())

        return await self._try("premium_share", read, lambda: self.local.premium_share(window_seconds))

    async def take_quota(self, bucket: str, rate: float, n: int) -> float:
        # While Redis is unavailable each worker counts on its own bucket (the local state's),
        # at the full rate: a tenant may then get up to workers x replicas times its quota, as
        # with memory state, rather than be refused because of Redis.
        async def take() -> float:
            wait = await self._take_quota(keys=[self._k.quota(bucket)], args=[self._clock(), rate, n])
            return float(wait)

        return await self._try("take_quota", take, lambda: self.local.take_quota(bucket, rate, n))

    async def quota_available(self, bucket: str, rate: float) -> float:
        async def read() -> float:
            tokens, at, held_rate = await self._r.hmget(self._k.quota(bucket), "tokens", "at", "rate")
            if held_rate is None or float(held_rate) != rate or tokens is None or at is None:
                return refilled(None, None, rate, 0.0)  # none held, or at another rate: full
            return refilled(float(tokens), float(at), rate, self._clock())

        return await self._try("quota_available", read, lambda: self.local.quota_available(bucket, rate))

    async def count_decision(self, experiment: str, variant: str, phase: int | None = None) -> None:
        async def write() -> None:
            key = self._k.exp_decisions(experiment)
            if phase is None:
                await self._r.hincrby(key, variant, 1)
                return
            pipe = self._r.pipeline(transaction=False)  # one round trip; both keys in one hash
            pipe.hincrby(key, variant, 1)
            pipe.hincrby(key, f"{variant}{PHASE_MARK}{phase}", 1)
            await pipe.execute()

        await self._try(
            "count_decision", write, lambda: self.local.count_decision(experiment, variant, phase)
        )

    async def experiment_counts(self, name: str) -> ExperimentCounts:
        async def read() -> ExperimentCounts:
            pipe = self._r.pipeline(transaction=False)
            pipe.hgetall(self._k.exp_decisions(name))
            pipe.hgetall(self._k.exp_outcomes(name))
            decisions, outcomes = await pipe.execute()
            counts = ExperimentCounts()
            for key, value in decisions.items():
                variant, phase = _phased(key)
                where = counts if phase is None else counts.phase(phase)
                where.decisions[variant] = int(value)
            for key, value in outcomes.items():
                counted, _, field = key.rpartition(":")
                if field not in OUTCOME_FIELDS:
                    continue
                variant, phase = _phased(counted)
                where = counts if phase is None else counts.phase(phase)
                where.outcomes.setdefault(variant, {})[field] = float(value)
            return counts

        return await self._must("experiment_counts", read)

    async def _reported(self) -> list[str]:
        """Ids that reported within the TTL (older ones are pruned by the next write anyway)."""
        horizon = self._clock() - self._ttl_ms / 1000
        return sorted(str(m) for m in await self._r.zrangebyscore(self._k.stats_ids, horizon, "+inf"))

    # -- health
    @property
    def degraded(self) -> bool:
        return self._degraded

    async def healthy(self) -> bool:
        if self._degraded:
            # Readiness is not the decision path: it may wait briefly for the recovery probe,
            # so the first /readyz after Redis came back already says so.
            self._start_probe()
            if self._probe is not None:
                await asyncio.wait({self._probe}, timeout=self._timeout)
            if self.degraded:  # the property: the probe may have changed it meanwhile
                self._count_fallback("ping")
                return False
            return True

        async def ping() -> bool:
            return bool(await self._r.ping())

        async def down() -> bool:
            return False

        return await self._try("ping", ping, down)

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self._r.aclose()


def _mapping(values: dict[str, str]) -> Mapping[Any, Any]:
    return values  # redis-py's annotation wants a Mapping over every value type it accepts


async def _nothing() -> None:
    return None


def _claimed(value: str | None, now: float) -> int:
    """Probe claims from a `breaker:probes` field ("<claimed>:<lapse time>"); lapsed = 0."""
    count, _, lapse = (value or "").partition(":")
    try:
        return int(count) if float(lapse) > now else 0
    except ValueError:
        return 0


def _stats(raw: dict[str, str]) -> DeploymentStats:
    return DeploymentStats(
        successes=int(raw.get("successes", 0)),
        failures=int(raw.get("failures", 0)),
        latency_ms_sum=float(raw.get("latency_sum", 0)),
        latency_count=int(raw.get("latency_count", 0)),
        quality_sum=float(raw.get("quality_sum", 0)),
        quality_count=int(raw.get("quality_count", 0)),
        errors={k[4:]: int(v) for k, v in raw.items() if k.startswith("err:")},
    )


# A variant's counters in one ramp phase sit beside its totals as `<variant>@<phase>` (variant
# names cannot hold "@"): one hash per experiment still, deleted with it.
PHASE_MARK = "@"


def _phased(key: str) -> tuple[str, int | None]:
    variant, mark, phase = key.partition(PHASE_MARK)
    return (variant, int(phase)) if mark and phase.isdigit() else (key, None)
