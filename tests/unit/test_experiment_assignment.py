"""Experiment assignment costs the same whatever the number of experiments that do not apply to
a request: a decision examines the experiments it could join, not every running one. Measured
as work (distinct experiments a decision touches), never as wall time."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from routeiq.decision.experiments import ExperimentIndex, ExperimentSpec, KeyKind, VariantSpec, WeightChange
from routeiq.decision.schemas import RouteRequest
from routeiq.engine import Engine
from routeiq.pipeline import Context, decide
from routeiq.state.records import SharedConfig

pytestmark = pytest.mark.anyio

TOUCHED: set[str] = set()


class Watched(ExperimentSpec):
    """An experiment that notes every time a decision reads it."""

    def __getattribute__(self, attr: str) -> Any:
        if not attr.startswith("_"):
            TOUCHED.add(object.__getattribute__(self, "__dict__")["name"])
        return super().__getattribute__(attr)


VARIANTS = [VariantSpec(name="a", weight=1), VariantSpec(name="b", weight=1)]


def not_applying(n: int) -> list[ExperimentSpec]:
    """Half stopped, half scoped to profiles no request here resolves to."""
    out: list[ExperimentSpec] = []
    for i in range(n):
        if i % 2:
            out.append(Watched(name=f"stopped-{i}", variants=VARIANTS, status="stopped", created_at=i))
        else:
            out.append(Watched(name=f"team-{i}", variants=VARIANTS, profile=f"team-{i}", created_at=i))
    return out


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def restore(engine: Engine) -> Iterator[Engine]:
    before = engine.snapshot
    yield engine
    engine.publish(before)


async def touched_per_decision(engine: Engine, others: int) -> tuple[float, set[str | None]]:
    live = Watched(name="live", variants=VARIANTS, assign_by=["user"], created_at=1e9)
    engine.publish(engine.snapshot.with_config(SharedConfig(experiments=(*not_applying(others), live))))
    assigned: set[str | None] = set()
    examined, decisions = 0, 20
    for i in range(decisions):
        request = RouteRequest(prompt="hello there", user=f"u{i}")
        TOUCHED.clear()  # what the snapshot build read is not a decision's work
        response = await decide(engine, request, Context(request_id=f"r{i}"))
        examined += len(TOUCHED)
        assigned.add(response.experiment)
    return examined / decisions, assigned


async def test_a_decision_examines_no_experiment_that_does_not_apply(restore: Engine) -> None:
    few, assigned_few = await touched_per_decision(restore, 0)
    many, assigned_many = await touched_per_decision(restore, 10_000)
    assert assigned_few == assigned_many == {"live"}  # the one that applies still assigns
    # Today's code walks all 10,001 on every decision; the index reads the one it assigns from.
    assert many <= few, f"{many:.1f} experiments examined per decision with 10k others, {few:.1f} alone"


def linear(
    experiments: Sequence[ExperimentSpec], profile: str, keys: Mapping[KeyKind, str | None]
) -> str | None:
    """The rule as written: the first running experiment of the request's profile (or of none)
    for which the request carries one of its stable keys."""
    for spec in experiments:
        if spec.running and spec.profile in (None, profile) and spec.stable_key(keys) is not None:
            return spec.name
    return None


def test_the_index_picks_what_the_linear_rule_picks() -> None:
    rng = random.Random(7)
    kinds: list[KeyKind] = ["session", "user", "request"]
    for trial in range(200):
        specs = [
            ExperimentSpec(
                name=f"e{trial}-{i}",
                variants=VARIANTS,
                assign_by=rng.sample(kinds, rng.randint(1, 3)),
                profile=rng.choice([None, "eco", "quality", "team"]),
                status=rng.choice(["running", "running", "stopped"]),
            )
            for i in range(rng.randint(0, 12))
        ]
        index = ExperimentIndex(specs)
        for profile in ("eco", "quality", "auto"):
            keys: dict[KeyKind, str | None] = {k: (k if rng.random() < 0.5 else None) for k in kinds}
            found = index.first(profile, keys)
            assert (found.name if found else None) == linear(specs, profile, keys)


# -- ramps: a weight change moves only the users it must

USERS = [f"user-{i}" for i in range(20_000)]


def variants_of(spec: ExperimentSpec) -> list[str]:
    return [spec.variant_for(u).name for u in USERS]


def moves(before: list[str], after: list[str]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for a, b in zip(before, after, strict=True):
        if a != b:
            out[(a, b)] = out.get((a, b), 0) + 1
    return out


def spec_of(**weights: float) -> ExperimentSpec:
    return ExperimentSpec(
        name="ramp", variants=[VariantSpec(name=n, weight=w) for n, w in weights.items()], created_at=1.0
    )


def test_raising_treatment_moves_only_control_users_and_only_as_many_as_needed() -> None:
    start = spec_of(control=90, treatment=10)
    ramped = start.reweighted({"control": 80, "treatment": 20}, at=2.0)
    moved = moves(variants_of(start), variants_of(ramped))
    assert set(moved) == {("control", "treatment")}  # none from treatment to control
    assert abs(moved["control", "treatment"] - 2_000) < 200, moved  # ~10% of 20,000
    # Back down to 10%: exactly the users the ramp moved go back, nobody else moves.
    back = ramped.reweighted({"control": 90, "treatment": 10}, at=3.0)
    assert variants_of(back) == variants_of(start)


def test_an_experiment_never_ramped_assigns_as_before_ramps_existed() -> None:
    """Running experiments keep their buckets through an upgrade: the first ramp starts from the
    ranges the plain cumulative walk gave, and a ramp to the same weights moves nobody."""
    start = spec_of(control=3, treatment=1, other=1)
    weights = {"control": 3.0, "treatment": 1.0, "other": 1.0}
    # a ramp to the weights it has is no ramp: nothing is recorded
    assert start.reweighted(weights, at=2.0) is start
    # the bucket ranges a recorded change replays start where the cumulative walk put users
    same = start.model_copy(update={"weight_changes": [WeightChange(at=2.0, before=weights, after=weights)]})
    assert variants_of(same) == variants_of(start)


def test_three_variants_a_ramp_moves_users_between_the_two_that_changed_only() -> None:
    start = spec_of(control=80, a=10, b=10)
    ramped = start.reweighted({"control": 70, "a": 10, "b": 20}, at=2.0)
    moved = moves(variants_of(start), variants_of(ramped))
    assert set(moved) == {("control", "b")}, moved  # `a` keeps every user it had
    assert abs(moved["control", "b"] - 2_000) < 200, moved
    # Several ramps in a row: each moves only the difference, and shares follow the weights.
    later = ramped.reweighted({"control": 40, "a": 30, "b": 30}, at=3.0)
    moved = moves(variants_of(ramped), variants_of(later))
    assert set(moved) == {("control", "a"), ("control", "b")}, moved
    got = variants_of(later)
    for name, share in (("control", 0.4), ("a", 0.3), ("b", 0.3)):
        assert abs(got.count(name) / len(got) - share) < 0.015, (name, got.count(name))
    # A variant ramped to 0 gets nobody; its users go where weight was added.
    off = later.reweighted({"control": 50, "a": 0, "b": 50}, at=4.0)
    got_off = variants_of(off)
    assert "a" not in got_off
    assert set(moves(got, got_off)) == {("a", "control"), ("a", "b")}
