"""Every state behaviour, held to the same tests for MemoryState and RedisState (real redis-server).

Times are real and short (a breaker opens for 0.3 s), so both implementations run on their own
clocks exactly as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from routeiq.decision.experiments import ExperimentSpec, VariantSpec
from routeiq.state.breakers import BreakerPolicy
from routeiq.state.memory import MemoryState
from routeiq.state.protocols import State
from routeiq.state.records import OutcomeRecord, SessionRecord
from routeiq.state.redis_state import RedisState, connect
from tests._harness import RedisServer

pytestmark = pytest.mark.anyio

POLICY = BreakerPolicy(
    window_seconds=0.5, min_requests=4, failure_rate=0.5, open_seconds=0.3, half_open_probes=2
)
RECORD = SessionRecord(
    "claude-sonnet-4", "anthropic/claude-sonnet-4", "auto", "code_generation", "complex", 0.71
)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def state(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[State]:
    if request.param == "memory":
        yield MemoryState(breaker_policy=POLICY)
        return
    # Asked for only here, so the memory variants run (and pass) on a machine without Redis.
    redis_server: RedisServer = request.getfixturevalue("redis_server")
    s = RedisState(connect(redis_server.url, 1.0), namespace, timeout_s=1.0, breaker_policy=POLICY)
    yield s
    await s.close()


def fail(deployment: str, n: int = 1) -> list[OutcomeRecord]:
    return [OutcomeRecord(deployment, False, 100.0, "rate_limit")] * n


def ok(deployment: str, n: int = 1) -> list[OutcomeRecord]:
    return [OutcomeRecord(deployment, True, 50.0)] * n


def experiment(name: str = "exp1") -> ExperimentSpec:
    return ExperimentSpec(
        name=name,
        variants=[
            VariantSpec(name="control", weight=9),
            VariantSpec(name="treatment", weight=1, profile="eco"),
        ],
        created_at=1.0,
    )


# -- sessions


async def test_session_round_trip_and_absent(state: State) -> None:
    assert await state.get_session("nobody", 60) is None
    await state.set_session("conv-1", RECORD, 60)
    assert await state.get_session("conv-1", 60) == RECORD
    other = SessionRecord("gpt-4o-mini", "openai/gpt-4o-mini", "eco", "conversation", "trivial", 0.1)
    await state.set_session("conv-1", other, 60)
    assert await state.get_session("conv-1", 60) == other


async def test_session_expires_after_its_ttl(state: State) -> None:
    await state.set_session("conv-2", RECORD, 0.3)
    await asyncio.sleep(0.4)
    assert await state.get_session("conv-2", 0.3) is None


async def test_session_ttl_is_refreshed_on_use(state: State) -> None:
    await state.set_session("conv-3", RECORD, 0.4)
    for _ in range(3):  # 0.75 s in all: outlives the TTL only because each read refreshes it
        await asyncio.sleep(0.25)
        assert await state.get_session("conv-3", 0.4) == RECORD
    await asyncio.sleep(0.55)
    assert await state.get_session("conv-3", 0.4) is None


# -- outcome stats


async def test_outcome_stats_aggregate(state: State) -> None:
    await state.record_outcomes(
        [
            OutcomeRecord("a", True, 100.0, quality=0.9),
            OutcomeRecord("a", True, 300.0, quality=0.7),
            OutcomeRecord("a", False, None, "timeout"),
            OutcomeRecord("b", False, 20.0),
        ]
    )
    stats = await state.deployment_stats()
    assert stats["a"].summary() == {
        "requests": 3,
        "successes": 2,
        "failures": 1,
        "success_rate": 0.6667,
        "mean_latency_ms": 200.0,
        "mean_quality": 0.8,
        "errors": {"timeout": 1},
    }
    assert stats["b"].summary()["errors"] == {"unknown": 1}


# -- circuit breakers


async def test_breaker_needs_min_requests_then_opens(state: State) -> None:
    await state.record_outcomes(fail("a", 3))
    assert await state.open_circuits() == frozenset()
    assert (await state.breakers())["a"].state == "closed"
    await state.record_outcomes(fail("a"))
    assert await state.open_circuits() == {"a"}
    info = (await state.breakers())["a"]
    assert info.state == "open" and info.seconds_until_half_open is not None
    assert 0 < info.seconds_until_half_open <= POLICY.open_seconds


async def test_breaker_opens_on_failure_rate_not_on_a_few_failures(state: State) -> None:
    await state.record_outcomes(ok("a", 4) + fail("a", 3))  # 3/7 < 0.5
    assert await state.open_circuits() == frozenset()
    await state.record_outcomes(fail("a"))  # 4/8 = 0.5
    assert await state.open_circuits() == {"a"}
    assert "b" not in await state.open_circuits()


async def test_breaker_window_forgets_old_failures(state: State) -> None:
    await state.record_outcomes(fail("a", 3))
    await asyncio.sleep(POLICY.window_seconds + 0.05)
    await state.record_outcomes(fail("a"))
    assert await state.open_circuits() == frozenset()


async def test_half_open_probes_then_successes_close(state: State) -> None:
    await state.record_outcomes(fail("a", 4))
    assert (await state.circuit_view()).open == {"a"}
    await asyncio.sleep(POLICY.open_seconds + 0.05)
    view = await state.circuit_view()
    assert view.probing == {"a"} and view.open == frozenset()
    assert (await state.breakers())["a"].state == "half_open"
    await state.claim_probe("a")
    assert (await state.circuit_view()).probing == {"a"}  # one probe slot left
    await state.claim_probe("a")
    view = await state.circuit_view()
    assert view.open == {"a"} and view.probing == frozenset()  # every slot taken: demoted
    await state.record_outcomes(ok("a"))
    assert (await state.breakers())["a"].probe_successes == 1
    await state.record_outcomes(ok("a"))
    view = await state.circuit_view()
    assert view.open == frozenset() and view.probing == frozenset()


async def test_half_open_failure_opens_again(state: State) -> None:
    await state.record_outcomes(fail("a", 4))
    await asyncio.sleep(POLICY.open_seconds + 0.05)
    await state.record_outcomes(ok("a") + fail("a"))
    assert (await state.breakers())["a"].state == "open"
    assert await state.open_circuits() == {"a"}


async def test_outcomes_while_open_change_nothing(state: State) -> None:
    await state.record_outcomes(fail("a", 4))
    await state.record_outcomes(ok("a", 10))  # late reports of requests sent before it opened
    assert await state.open_circuits() == {"a"}


async def test_unclaimed_probe_slots_come_back(state: State) -> None:
    await state.record_outcomes(fail("a", 4))
    await asyncio.sleep(POLICY.open_seconds + 0.05)
    await state.claim_probe("a")
    await state.claim_probe("a")
    assert await state.open_circuits() == {"a"}
    await asyncio.sleep(POLICY.open_seconds + 0.05)  # the probes never reported back
    assert (await state.circuit_view()).probing == {"a"}


async def test_reset_breaker(state: State) -> None:
    await state.record_outcomes(fail("a", 4))
    assert await state.reset_breaker("a") is True
    assert await state.open_circuits() == frozenset()


# -- run-time config and experiments


async def test_config_updates_bump_the_version(state: State) -> None:
    start = await state.config_version()
    config = await state.update_config(strategy="centroid")
    assert config.version == start + 1 and config.strategy == "centroid" and config.default_profile is None
    config = await state.update_config(default_profile="eco")
    assert (config.strategy, config.default_profile) == ("centroid", "eco")
    config = await state.update_config(reload=True)
    assert config.reload == 1 and config.version == start + 3
    assert await state.config_version() == start + 3
    assert await state.load_config() == config


async def test_experiments_create_list_stop(state: State) -> None:
    assert await state.create_experiment(experiment()) is True
    assert await state.create_experiment(experiment()) is False  # names are never reused
    config = await state.load_config()
    assert [e.name for e in config.experiments] == ["exp1"] and config.experiments[0].running
    stopped = await state.stop_experiment("exp1")
    assert stopped is not None and stopped.status == "stopped" and stopped.stopped_at
    assert (await state.load_config()).experiment("exp1") == stopped
    assert await state.stop_experiment("nope") is None


async def test_a_running_experiment_is_reweighted_in_place(state: State) -> None:
    assert await state.create_experiment(experiment("ramp"))
    await state.count_decision("ramp", "control")
    before = await state.config_version()
    ramped = await state.reweight_experiment("ramp", {"control": 8, "treatment": 2}, at=5.0)
    assert ramped is not None and ramped.running
    assert [(v.name, v.weight, v.profile) for v in ramped.variants] == [
        ("control", 8, None),
        ("treatment", 2, "eco"),
    ]
    assert [(c.at, c.before, c.after) for c in ramped.weight_changes] == [
        (5.0, {"control": 9, "treatment": 1}, {"control": 8, "treatment": 2})
    ]
    config = await state.load_config()
    assert config.version == before + 1 and config.experiment("ramp") == ramped
    assert (await state.experiment_counts("ramp")).decisions == {"control": 1}  # counters kept
    again = await state.reweight_experiment("ramp", {"control": 1, "treatment": 1}, at=6.0)
    assert again is not None and [c.at for c in again.weight_changes] == [5.0, 6.0]
    assert await state.reweight_experiment("nope", {"control": 1, "treatment": 1}, at=7.0) is None
    stopped = await state.stop_experiment("ramp")
    version = await state.config_version()
    # A stopped experiment is returned as it is, not changed (the caller says why).
    assert await state.reweight_experiment("ramp", {"control": 1, "treatment": 9}, at=8.0) == stopped
    assert await state.config_version() == version


async def test_concurrent_reweights_all_land_and_never_revive_a_stopped_experiment(state: State) -> None:
    assert await state.create_experiment(experiment("race"))
    await asyncio.gather(
        *(
            state.reweight_experiment("race", {"control": 10 - i, "treatment": i}, at=float(i))
            for i in range(8)
        )
    )
    spec = (await state.load_config()).experiment("race")
    assert spec is not None and len(spec.weight_changes) == 8  # none lost to another's write
    await asyncio.gather(
        state.stop_experiment("race"),
        *(state.reweight_experiment("race", {"control": 1, "treatment": 1}, at=9.0) for _ in range(4)),
    )
    final = (await state.load_config()).experiment("race")
    assert final is not None and not final.running


async def test_a_stopped_experiment_can_be_deleted_with_its_counters(state: State) -> None:
    """Experiment history is prunable: nothing a worker loads or counts grows for ever."""
    assert await state.create_experiment(experiment("old"))
    await state.count_decision("old", "control")
    assert await state.delete_experiment("old") is False  # running: stop it first
    await state.stop_experiment("old")
    before = await state.config_version()
    assert await state.delete_experiment("old") is True
    config = await state.load_config()
    assert config.experiment("old") is None and config.version > before
    assert (await state.experiment_counts("old")).decisions == {}
    assert await state.delete_experiment("old") is None
    assert await state.create_experiment(experiment("old"))  # the name is free again


async def test_experiment_counters_are_exact_under_concurrency(state: State) -> None:
    await asyncio.gather(
        *(state.count_decision("exp1", "control" if i % 3 else "treatment") for i in range(600))
    )
    counts = await state.experiment_counts("exp1")
    assert counts.decisions == {"control": 400, "treatment": 200}


async def test_experiment_outcomes_per_variant(state: State) -> None:
    await state.record_outcomes(
        [
            OutcomeRecord("a", True, 100.0, quality=1.0, experiment="exp1", variant="control"),
            OutcomeRecord("a", False, 300.0, "timeout", experiment="exp1", variant="control"),
            OutcomeRecord("b", True, None, experiment="exp1", variant="treatment"),
            OutcomeRecord("b", True, 10.0),  # no experiment: not counted there
        ]
    )
    counts = await state.experiment_counts("exp1")
    assert counts.outcomes["control"] == {
        "successes": 1,
        "failures": 1,
        "latency_sum": 400.0,
        "latency_count": 2,
        "quality_sum": 1.0,
        "quality_count": 1,
    }
    assert counts.outcomes["treatment"] == {"successes": 1}


# -- Redis only: two replicas' states on one Redis act as one


async def test_two_redis_states_share_everything(redis_server: RedisServer, namespace: str) -> None:
    a = RedisState(connect(redis_server.url, 5.0), namespace, breaker_policy=POLICY, timeout_s=5.0)
    b = RedisState(connect(redis_server.url, 5.0), namespace, breaker_policy=POLICY, timeout_s=5.0)
    other = RedisState(connect(redis_server.url, 1.0), namespace + "x", breaker_policy=POLICY, timeout_s=1.0)
    try:
        await a.set_session("conv", RECORD, 60)
        assert await b.get_session("conv", 60) == RECORD
        await a.record_outcomes(fail("dep", 2))
        await b.record_outcomes(fail("dep", 2))  # 2 + 2 across replicas reaches min_requests
        assert await a.open_circuits() == {"dep"} == await b.open_circuits()
        await a.create_experiment(experiment())
        await asyncio.gather(*(s.count_decision("exp1", "control") for s in (a, b) for _ in range(250)))
        assert (await b.experiment_counts("exp1")).decisions == {"control": 500}
        version = (await a.update_config(default_profile="eco")).version
        assert await b.config_version() == version and (await b.load_config()).default_profile == "eco"
        # Another namespace shares nothing.
        assert await other.get_session("conv", 60) is None and await other.open_circuits() == frozenset()
    finally:
        for s in (a, b, other):
            await s.close()


# -- premium budget window (the premium share's sliding counts, shared through the same interface)


async def test_premium_share_counts_in_the_window(state: State) -> None:
    assert await state.premium_share(300) == (0, 0)
    for premium in (True, False, False, True, False):
        await state.count_premium_decision(premium, 300)
    assert await state.premium_share(300) == (2, 5)
    assert await state.premium_share(60) == (0, 0)  # another window is another counter


async def test_counters_are_kept_per_ramp_phase_beside_the_totals(state: State) -> None:
    assert await state.create_experiment(experiment("phased"))
    for _ in range(3):
        await state.count_decision("phased", "control", 0)
    await state.count_decision("phased", "treatment", 0)
    await state.count_decision("phased", "treatment", 1)
    await state.count_decision("phased", "control")  # no phase given: the total only
    outcome = OutcomeRecord("d", True, 40.0, None, 0.5, "phased", "treatment", 1)
    failed = OutcomeRecord("d", False, 80.0, "timeout", None, "phased", "control", 0)
    await state.record_outcomes([outcome, outcome, failed])
    counts = await state.experiment_counts("phased")
    assert counts.decisions == {"control": 4, "treatment": 2}
    assert counts.outcomes["treatment"]["successes"] == 2 and counts.outcomes["control"]["failures"] == 1
    assert {n: c.decisions for n, c in counts.phases.items()} == {
        0: {"control": 3, "treatment": 1},
        1: {"treatment": 1},
    }
    assert counts.phases[1].outcomes == {
        "treatment": {
            "successes": 2,
            "latency_sum": 80.0,
            "latency_count": 2,
            "quality_sum": 1.0,
            "quality_count": 2,
        }
    }
    assert counts.phases[0].outcomes["control"]["failures"] == 1
    await state.stop_experiment("phased")
    assert await state.delete_experiment("phased") is True
    gone = await state.experiment_counts("phased")
    assert gone.decisions == {} and gone.phases == {}


# -- quotas (token buckets)


async def test_a_quota_takes_until_empty_says_the_wait_and_refills(state: State) -> None:
    assert await state.take_quota("decisions", 10.0, 10) == 0.0  # one second's worth held
    wait = await state.take_quota("decisions", 10.0, 1)
    assert 0.0 < wait <= 0.1
    assert await state.quota_available("decisions", 10.0) < 1.0
    assert await state.take_quota("feedback", 10.0, 1) == 0.0  # another bucket is its own
    await asyncio.sleep(0.25)
    assert await state.take_quota("decisions", 10.0, 2) == 0.0


async def test_a_batch_past_the_burst_is_let_in_on_a_full_bucket_and_leaves_a_debt(state: State) -> None:
    assert await state.take_quota("feedback", 2.0, 5) == 0.0
    assert -3.1 < await state.quota_available("feedback", 2.0) < -2.9
    assert 1.9 < await state.take_quota("feedback", 2.0, 1) <= 2.0  # the debt is paid off first


async def test_a_quota_whose_rate_changed_starts_full(state: State) -> None:
    assert await state.take_quota("feedback", 1.0, 10) == 0.0
    assert await state.take_quota("feedback", 1.0, 1) > 0.0
    assert await state.quota_available("feedback", 500.0) == 500.0
    assert await state.take_quota("feedback", 500.0, 400) == 0.0


@pytest.mark.redis
async def test_every_redis_state_of_a_namespace_takes_from_one_bucket(
    redis_server: RedisServer, namespace: str
) -> None:
    workers = [RedisState(connect(redis_server.url, 1.0), namespace, timeout_s=1.0) for _ in range(3)]
    other = RedisState(connect(redis_server.url, 1.0), namespace + "x", timeout_s=1.0)
    try:
        taken = [await w.take_quota("decisions", 4.0, 1) == 0.0 for w in workers * 3]
        assert taken.count(True) == 4  # four in all, not four each
        assert await other.take_quota("decisions", 4.0, 4) == 0.0  # another tenant's own bucket
        ttl = await workers[0]._r.pttl(workers[0].keys.quota("decisions"))
        assert 0 < ttl <= 2000  # gone once it would be full again: an idle bucket costs nothing
    finally:
        for s in [*workers, other]:
            await s.close()
