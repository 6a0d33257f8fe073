"""Experiment assignment costs the same whatever the number of experiments that do not apply to
a request: a decision examines the experiments it could join, not every running one. Measured
as work (distinct experiments a decision touches), never as wall time."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from routeiq.decision.experiments import ExperimentIndex, ExperimentSpec, KeyKind, VariantSpec
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
