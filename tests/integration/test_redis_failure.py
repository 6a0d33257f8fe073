"""RedisState when Redis is down, hung or restarted empty: decisions go on with local state, admin
writes refuse clearly, health says degraded, and everything comes back by itself."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry

from routeiq.decision.experiments import ExperimentSpec, VariantSpec
from routeiq.errors import StateUnavailable
from routeiq.observability.metrics import Metrics
from routeiq.settings import Settings
from routeiq.state.breakers import BreakerPolicy
from routeiq.state.build import build_state
from routeiq.state.records import OutcomeRecord, SessionRecord
from routeiq.state.redis_state import RedisState, connect
from tests._harness import RedisServer

pytestmark = pytest.mark.anyio

RECORD = SessionRecord("gpt-4o", "openai/gpt-4o", "auto", "analysis", "moderate", 0.5)
POLICY = BreakerPolicy(min_requests=2, failure_rate=0.5, open_seconds=30)


def fallbacks(metrics: Metrics, op: str) -> float:
    value = metrics.registry.get_sample_value("routeiq_state_fallbacks_total", {"op": op})
    return value or 0.0


def degraded(metrics: Metrics) -> float | None:
    value: float | None = metrics.registry.get_sample_value("routeiq_state_degraded")
    return value


def make_state(server: RedisServer, namespace: str, metrics: Metrics, timeout_s: float = 0.05) -> RedisState:
    return RedisState(
        connect(server.url, timeout_s),
        namespace,
        timeout_s=timeout_s,
        retry_seconds=0.2,
        breaker_policy=POLICY,
        metrics=metrics,
    )


async def test_redis_absent_then_started(private_redis_server: RedisServer, namespace: str) -> None:
    server = private_redis_server  # not started: nothing listens on the socket yet
    metrics = Metrics.create(CollectorRegistry())
    state = make_state(server, namespace, metrics)
    try:
        assert await state.get_session("c", 60) is None
        await state.set_session("c", RECORD, 60)
        assert await state.get_session("c", 60) == RECORD  # served locally
        await state.record_outcomes([OutcomeRecord("d", False)] * 2)
        assert await state.open_circuits() == {"d"}  # local breakers keep working
        await state.count_decision("e", "a")
        # Quotas: each worker counts on its own bucket meanwhile, it is not refused for Redis.
        assert await state.take_quota("decisions", 2.0, 2) == 0.0
        assert await state.take_quota("decisions", 2.0, 1) > 0.0
        assert await state.healthy() is False
        assert degraded(metrics) == 1.0 and fallbacks(metrics, "get_session") >= 1
        with pytest.raises(StateUnavailable):
            await state.update_config(strategy="centroid")

        server.start()
        await asyncio.sleep(0.25)  # past retry_seconds
        assert await state.healthy() is True
        assert degraded(metrics) == 0.0
        await state.set_session("c2", RECORD, 60)
        other = make_state(server, namespace, Metrics.create(CollectorRegistry()))
        assert await other.get_session("c2", 60) == RECORD  # written to Redis again
        await other.close()
    finally:
        await state.close()
        server.kill()


async def test_hung_redis_costs_one_timeout_then_local_state(
    redis_server: RedisServer, namespace: str
) -> None:
    metrics = Metrics.create(CollectorRegistry())
    state = make_state(redis_server, namespace, metrics, timeout_s=0.05)
    await state.record_outcomes([OutcomeRecord("d", False)] * 2)
    assert await state.open_circuits() == {"d"}
    redis_server.pause()
    try:
        start = time.perf_counter()
        assert await state.get_session("x", 60) is None
        first = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(20):
            await state.get_session("x", 60)
            view = await state.circuit_view()
        rest = time.perf_counter() - start
        # One operation waits out the timeout; the next ones skip Redis for retry_seconds.
        assert 0.04 < first < 0.5 and rest < 0.05
        assert "d" in view.open  # what was open when Redis hung stays open
        assert await state.healthy() is False
    finally:
        redis_server.resume()
    await asyncio.sleep(0.25)
    assert await state.healthy() is True
    await state.close()


async def test_restart_that_lost_everything_reseeds_config(
    private_redis_server: RedisServer, namespace: str
) -> None:
    server = private_redis_server.start()
    metrics = Metrics.create(CollectorRegistry())
    state = make_state(server, namespace, metrics, timeout_s=0.5)
    try:
        spec = ExperimentSpec(
            name="exp",
            variants=[VariantSpec(name="a", weight=1), VariantSpec(name="b", weight=1, profile="eco")],
        )
        assert await state.create_experiment(spec)
        config = await state.update_config(default_profile="eco")
        server.kill()
        server.start()  # empty: no persistence
        await asyncio.sleep(0.25)
        assert await state.config_version() == config.version  # reseeded from memory
        other = make_state(server, namespace, Metrics.create(CollectorRegistry()))
        restored = await other.load_config()
        assert restored.default_profile == "eco" and restored.experiment("exp") == spec
        await other.close()
    finally:
        await state.close()
        server.kill()


async def test_admin_write_right_after_redis_was_emptied_reaches_every_worker(
    private_redis_server: RedisServer, namespace: str
) -> None:
    """The first admin write after Redis lost everything must land above the version every
    worker holds (else they discard it as older) and must not leave Redis with that change and
    without the experiments the workers still run."""
    server = private_redis_server.start()
    admin = make_state(server, namespace, Metrics.create(CollectorRegistry()), timeout_s=0.5)
    worker = make_state(server, namespace, Metrics.create(CollectorRegistry()), timeout_s=0.5)
    try:
        spec = ExperimentSpec(
            name="exp",
            variants=[VariantSpec(name="a", weight=1), VariantSpec(name="b", weight=1, profile="eco")],
        )
        assert await admin.create_experiment(spec)
        await admin.update_config(strategy="centroid")
        held = (await admin.update_config(strategy="centroid")).version
        assert (await worker.load_config()).version == held >= 3
        server.kill()
        server.start()  # empty: no persistence
        for _ in range(50):  # until the admin's connection is back (no shared-config read)
            if await admin.healthy():
                break
            await asyncio.sleep(0.05)
        written = await admin.update_config(default_profile="eco")
        assert written.version > held
        assert await worker.config_version() > held  # a worker holding `held` applies it
        seen = await worker.load_config()
        assert seen.default_profile == "eco" and seen.strategy == "centroid"
        assert seen.experiment("exp") == spec
    finally:
        await admin.close()
        await worker.close()
        server.kill()


async def test_retry_after_a_stall_is_not_paid_by_every_request(
    redis_server: RedisServer, namespace: str
) -> None:
    """Once the retry interval has passed and Redis is still hung, the requests in flight must
    not each wait out the timeout again: at most one of them may pay it."""
    metrics = Metrics.create(CollectorRegistry())
    timeout_s = 0.3
    state = make_state(redis_server, namespace, metrics, timeout_s=timeout_s)
    assert await state.healthy() is True
    redis_server.pause()
    try:
        await state.get_session("x", 60)  # this one detects the stall and pays the timeout
        await asyncio.sleep(0.25)  # past retry_seconds (0.2)

        async def timed() -> float:
            start = time.perf_counter()
            await state.get_session("x", 60)
            return time.perf_counter() - start

        waits = await asyncio.gather(*(timed() for _ in range(20)))
        paid = [w for w in waits if w >= timeout_s * 0.9]
        assert len(paid) <= 1, f"{len(paid)} of 20 requests waited out the Redis timeout"
    finally:
        redis_server.resume()
    await state.close()


def test_redis_timeout_leaves_the_client_deadline_room() -> None:
    """A stalled Redis adds one timeout to a decision; with the defaults that must leave most
    of the client's deadline for the decision itself."""
    from routeiq.settings import Settings
    from routeiq_client.config import ClientConfig

    assert Settings().redis_timeout_ms * 2 <= ClientConfig().deadline_ms


async def test_thousands_of_experiments_load_whatever_the_decision_timeout(
    redis_server: RedisServer, namespace: str
) -> None:
    """Loading the shared config is not a decision: a config with thousands of experiments loads
    in full even when the decision-path timeout is a millisecond (else every worker keeps the
    config it had and workers drift apart)."""

    def spec(i: int) -> ExperimentSpec:
        variants = [VariantSpec(name="a", weight=1), VariantSpec(name="b", weight=1, profile="eco")]
        return ExperimentSpec(name=f"exp{i}", variants=variants, created_at=float(i))

    state = make_state(redis_server, namespace, Metrics.create(CollectorRegistry()), timeout_s=1.0)
    assert await state.create_experiment(spec(0))
    await state.close()
    raw = connect(redis_server.url, 5.0)
    # The rest written straight into the hash the first one went to (faster than 5000 admin calls).
    [key] = [k async for k in raw.scan_iter(match=f"*{namespace}*experiments")]
    await raw.hset(key, mapping={f"exp{i}": spec(i).model_dump_json() for i in range(1, 5000)})  # type: ignore[arg-type]
    await raw.aclose()
    settings = Settings(redis_url=redis_server.url, namespace=namespace, redis_timeout_ms=1)
    reader = build_state(settings, Metrics.create(CollectorRegistry()))
    try:
        config = await reader.load_config()
        assert config.version >= 1 and len(config.experiments) == 5000
    finally:
        await reader.close()


async def test_an_admin_503_after_the_write_says_the_change_was_written(
    redis_server: RedisServer, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that reached Redis followed by a read-back that failed: the 503 must say the
    change is in (else the admin retries a change that is already live, or believes it is not)."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    state = make_state(redis_server, namespace, Metrics.create(CollectorRegistry()), timeout_s=1.0)

    async def lost() -> None:
        raise RedisConnectionError("connection lost after the write")

    monkeypatch.setattr(state, "_fetch_config", lost)
    try:
        with pytest.raises(StateUnavailable) as refused:
            await state.update_config(default_profile="eco")
        assert "written" in refused.value.message
        other = make_state(redis_server, namespace, Metrics.create(CollectorRegistry()), timeout_s=1.0)
        assert (await other.load_config()).default_profile == "eco"  # it was indeed written
        await other.close()
    finally:
        await state.close()


async def test_after_the_first_load_only_changed_experiments_are_read(
    redis_server: RedisServer, namespace: str
) -> None:
    """A worker that holds the config reads only what changed since: a definition nobody
    changed is not read again (here: tampered with behind RouteIQ's back, and still not read)."""
    admin = make_state(redis_server, namespace, Metrics.create(CollectorRegistry()), timeout_s=1.0)
    worker = make_state(redis_server, namespace, Metrics.create(CollectorRegistry()), timeout_s=1.0)
    variants = [VariantSpec(name="a", weight=1), VariantSpec(name="b", weight=1, profile="eco")]
    try:
        first = ExperimentSpec(name="first", variants=variants, created_at=1.0)
        assert await admin.create_experiment(first)
        assert (await worker.load_config()).experiment("first") == first
        raw = connect(redis_server.url, 1.0)
        [key] = [k async for k in raw.scan_iter(match=f"*{namespace}*experiments")]
        await raw.hset(key, "first", first.model_copy(update={"profile": "premium"}).model_dump_json())
        await raw.aclose()
        second = ExperimentSpec(name="second", variants=variants, created_at=2.0)
        assert await admin.create_experiment(second)
        await admin.stop_experiment("second")
        seen = await worker.load_config()
        assert seen.experiment("first") == first  # not re-read
        stopped = seen.experiment("second")
        assert stopped is not None and stopped.status == "stopped"
        assert await admin.delete_experiment("second") is True
        assert [e.name for e in (await worker.load_config()).experiments] == ["first"]
    finally:
        await admin.close()
        await worker.close()


@pytest.mark.redis
async def test_a_connection_torn_down_inside_the_client_is_redis_down_not_an_error(
    redis_server: RedisServer, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen in a cluster failover under load: redis-py's connection loses its writer while a
    command is being sent and raises AttributeError from its own code. A decision must go on
    with local state (it was a 500)."""
    from redis.asyncio.connection import AbstractConnection

    metrics = Metrics.create(CollectorRegistry())
    state = make_state(redis_server, namespace, metrics, timeout_s=1.0)
    try:
        await state.set_session("c", RECORD, 60)
        # The race, made certain: every pooled connection looks connected and has no writer.
        pool = state._r.connection_pool
        conns = [*pool._available_connections, *pool._in_use_connections]
        writers = [c._writer for c in conns]
        monkeypatch.setattr(AbstractConnection, "is_connected", property(lambda self: True))
        for conn in conns:
            conn._writer = None
        assert await state.get_session("c", 60) == RECORD  # answered from local state, degraded
        assert degraded(metrics) == 1.0 and fallbacks(metrics, "get_session") == 1
    finally:
        monkeypatch.undo()
        for writer in writers:  # the sockets the sabotage took from their connections
            if writer is not None:
                writer.close()
        await state.close()
        await asyncio.sleep(0)  # let the transports finish closing inside this test


async def test_a_bug_of_ours_is_not_taken_for_redis_down(redis_server: RedisServer, namespace: str) -> None:
    metrics = Metrics.create(CollectorRegistry())
    state = make_state(redis_server, namespace, metrics, timeout_s=1.0)

    async def ours() -> None:
        raise AttributeError("a typo in our own code")

    async def fallback() -> None:
        return None

    try:
        with pytest.raises(AttributeError, match="typo"):
            await state._try("ours", ours, fallback)
        assert degraded(metrics) in (None, 0.0)
    finally:
        await state.close()
