"""A/B experiments between strategies or profiles.

Assignment is a pure function of (experiment name, stable key): every worker and replica puts a
given session / user / request in the same variant without storing anything, so stickiness costs
no state. Only the per-variant counters are shared (HINCRBY in Redis: exact across replicas).

A key hashes to a fixed bucket; each variant holds ranges of buckets. A weight change (a ramp)
hands over only the buckets the new weights need moved, from variants that shrink to variants
that grow, most recently gained first: no user moves to or from a variant whose share stayed,
and ramping back down returns exactly the users the ramp up took.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from routeiq.decision.names import STRATEGY_NAME_RULE, is_strategy_name
from routeiq.decision.profiles import Profile, Profiles

NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
KeyKind = Literal["session", "user", "request"]
_BUCKETS = 1_000_000


class VariantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=NAME_PATTERN)
    # 0 only through a ramp (a variant ramped down to no traffic keeps its readout); a new
    # experiment's variants all need a share (`http.admin.ExperimentCreate`).
    weight: float = Field(ge=0, le=1_000_000, description="Relative share of traffic.")
    strategy: str | None = Field(None, max_length=128, description="centroid or ml:<router>.")
    profile: str | None = Field(None, max_length=256, description="Profile this variant routes with.")

    @field_validator("strategy")
    @classmethod
    def _strategy_shape(cls, value: str | None) -> str | None:
        if value is not None and not is_strategy_name(value):
            raise ValueError(STRATEGY_NAME_RULE)
        return value


# Every ramp stays in the definition (the readout's phases, and the replay that places users),
# so their number is bounded; past it, a new experiment is the clean way on.
MAX_WEIGHT_CHANGES = 100


class WeightChange(BaseModel):
    """One ramp: when, and every variant's weight before and after."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    at: float
    before: dict[str, float]
    after: dict[str, float]


class ExperimentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=NAME_PATTERN)
    variants: list[VariantSpec] = Field(min_length=2, max_length=16)
    assign_by: list[KeyKind] = Field(
        default_factory=lambda: ["session", "user", "request"],  # type: ignore[arg-type]
        min_length=1,
        description="Stable keys tried in order; the first the request carries decides the variant.",
    )
    profile: str | None = Field(
        None, max_length=256, description="Only requests that resolve to this profile take part."
    )
    status: Literal["running", "stopped"] = "running"
    created_at: float = 0.0
    stopped_at: float | None = None
    weight_changes: list[WeightChange] = Field(
        default_factory=list, max_length=MAX_WEIGHT_CHANGES, description="Ramps, oldest first."
    )

    @model_validator(mode="after")
    def _unique_variants(self) -> ExperimentSpec:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        if not sum(v.weight for v in self.variants) > 0:
            raise ValueError("at least one variant needs a weight above 0")
        return self

    @property
    def running(self) -> bool:
        return self.status == "running"

    def weights(self) -> dict[str, float]:
        return {v.name: v.weight for v in self.variants}

    def weight_problem(self, weights: Mapping[str, float]) -> str | None:
        """Why `weights` cannot replace this experiment's, or None: every variant named, no
        other, none negative, not all 0."""
        names = [v.name for v in self.variants]
        missing = [n for n in names if n not in weights]
        unknown = sorted(set(weights) - set(names))
        if missing or unknown:
            return f"give a weight for every variant {names}; missing: {missing}, unknown: {unknown}"
        if any(w < 0 for w in weights.values()):
            return "weights cannot be negative"
        if not sum(weights.values()) > 0:
            return "at least one variant needs a weight above 0"
        return None

    def ramps_left(self) -> bool:
        return len(self.weight_changes) < MAX_WEIGHT_CHANGES

    def reweighted(self, weights: Mapping[str, float], at: float) -> ExperimentSpec:
        """This experiment with new weights, the change recorded; counters are not touched.
        The same weights again change nothing (no phase is recorded). RampRefused when no ramp
        is left."""
        problem = self.weight_problem(weights)
        if problem is not None:
            raise ValueError(problem)
        if all(weights[v.name] == v.weight for v in self.variants):
            return self
        if not self.ramps_left():
            raise RampRefused(self.name)
        change = WeightChange(
            at=at, before=self.weights(), after={v.name: weights[v.name] for v in self.variants}
        )
        data = self.model_dump()
        data["variants"] = [{**v, "weight": weights[v["name"]]} for v in data["variants"]]
        data["weight_changes"].append(change.model_dump())
        return ExperimentSpec.model_validate(data)

    def variant_for(self, key: str) -> VariantSpec:
        """Deterministic, uniform over the weights: the same key always gets the same variant."""
        digest = hashlib.blake2b(f"{self.name}\x1f{key}".encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest, "big") % _BUCKETS
        if not self.weight_changes:
            return self.variants[_cumulative(tuple(v.weight for v in self.variants), bucket)]
        made_from, (starts, owners) = self._ranges
        if made_from is not self.weight_changes:  # a copy with other ramps: not these ranges
            del self.__dict__["_ranges"]
            made_from, (starts, owners) = self._ranges
        return self.variants[owners[bisect.bisect_right(starts, bucket) - 1]]

    @functools.cached_property
    def _ranges(self) -> tuple[list[WeightChange], tuple[list[int], list[int]]]:
        """The bucket ranges after the ramps, made once per definition (not per decision), with
        the list they were made from. Kept out of equality and of the JSON."""
        names = [v.name for v in self.variants]
        first = self.weight_changes[0].before
        history = [tuple(c.after[n] for n in names) for c in self.weight_changes]
        return self.weight_changes, _ramped_ranges(tuple(first[n] for n in names), history)

    def stable_key(self, keys: Mapping[KeyKind, str | None]) -> tuple[KeyKind, str] | None:
        for kind in self.assign_by:
            value = keys.get(kind)
            if value:
                return kind, value
        return None


class RampRefused(Exception):
    """The experiment has had MAX_WEIGHT_CHANGES ramps."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"experiment {name!r} has been ramped {MAX_WEIGHT_CHANGES} times, the most kept: "
            "stop it and start a new experiment with the weights you want"
        )


def _cumulative(weights: tuple[float, ...], bucket: int) -> int:
    """The variant (index) of a bucket before any ramp: consecutive ranges in variant order."""
    point = bucket / _BUCKETS * sum(weights)
    for i, weight in enumerate(weights):
        point -= weight
        if point < 0:
            return i
    return len(weights) - 1


def _bucket_counts(weights: tuple[float, ...]) -> list[int]:
    """Buckets per variant for these weights, summing to _BUCKETS (largest remainders)."""
    total = sum(weights)
    exact = [w / total * _BUCKETS for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: _BUCKETS - sum(counts)]:
        counts[i] += 1
    return counts


def _ramped_ranges(
    initial: tuple[float, ...], history: Sequence[tuple[float, ...]]
) -> tuple[list[int], list[int]]:
    """Who holds which buckets after the ramps in `history`, as sorted range starts and the
    variant holding each. Starts from the ranges `_cumulative` gives for the initial weights (so
    a first ramp moves no one it need not); each ramp takes from every variant that shrinks the
    buckets it gained last, and gives them, in that order, to the variants that grow."""
    n = len(initial)
    # Per variant, its ranges [start, end) in the order it gained them.
    held: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    start = 0
    for i in range(n):
        lo, hi = start, _BUCKETS
        while lo < hi:  # first bucket past variant i (the walk is monotone in the bucket)
            mid = (lo + hi) // 2
            if _cumulative(initial, mid) > i:
                hi = mid
            else:
                lo = mid + 1
        end = _BUCKETS if i == n - 1 else lo
        if end > start:
            held[i].append((start, end))
        start = end
    for weights in history:
        target = _bucket_counts(weights)
        freed: list[tuple[int, int]] = []
        for i in range(n):
            excess = sum(e - s for s, e in held[i]) - target[i]
            while excess > 0:
                s, e = held[i].pop()
                take = min(excess, e - s)
                if take < e - s:
                    held[i].append((s, e - take))
                freed.append((e - take, e))
                excess -= take
        for i in range(n):
            need = target[i] - sum(e - s for s, e in held[i])
            while need > 0:
                s, e = freed.pop(0)
                take = min(need, e - s)
                if take < e - s:
                    freed.insert(0, (s + take, e))
                held[i].append((s, s + take))
                need -= take
    ranges = sorted((s, i) for i in range(n) for s, _ in held[i])
    return [s for s, _ in ranges], [i for _, i in ranges]


@dataclass
class ExperimentCounts:
    """Raw shared counters: decisions per variant, outcome sums per variant; and the same per
    phase (0 before the first ramp, n after the n-th), each phase's in `phases`."""

    decisions: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, dict[str, float]] = field(default_factory=dict)
    phases: dict[int, ExperimentCounts] = field(default_factory=dict)

    def phase(self, n: int) -> ExperimentCounts:
        return self.phases.setdefault(n, ExperimentCounts())

    def count(self, variant: str, phase: int | None) -> None:
        self.decisions[variant] = self.decisions.get(variant, 0) + 1
        if phase is not None:
            self.phase(phase).count(variant, None)

    def add(self, variant: str, increments: dict[str, float], phase: int | None) -> None:
        sums = self.outcomes.setdefault(variant, {})
        for name, value in increments.items():
            sums[name] = sums.get(name, 0) + value
        if phase is not None:
            self.phase(phase).add(variant, increments, None)

    def copy(self) -> ExperimentCounts:
        return ExperimentCounts(
            dict(self.decisions),
            {k: dict(v) for k, v in self.outcomes.items()},
            {n: c.copy() for n, c in self.phases.items()},
        )


def phase_of(spec: ExperimentSpec) -> int:
    """The phase a decision or outcome counts in: how many ramps the experiment has had."""
    return len(spec.weight_changes)


OUTCOME_FIELDS = ("successes", "failures", "latency_sum", "latency_count", "quality_sum", "quality_count")


def outcome_increments(success: bool, latency_ms: float | None, quality: float | None) -> dict[str, float]:
    out: dict[str, float] = {"successes" if success else "failures": 1}
    if latency_ms is not None:
        out["latency_sum"], out["latency_count"] = latency_ms, 1
    if quality is not None:
        out["quality_sum"], out["quality_count"] = quality, 1
    return out


def readout(spec: ExperimentSpec, counts: ExperimentCounts) -> dict[str, Any]:
    by_name = {v.name: v for v in spec.variants}
    variants = [
        {"variant": name, "strategy": by_name[name].strategy, "profile": by_name[name].profile, **row}
        for name, row in _variant_rows(spec.weights(), counts).items()
    ]
    spans = phases(spec)
    for n, span in enumerate(spans):
        counted = counts.phases.get(n, ExperimentCounts())
        span["decisions"] = sum(counted.decisions.values())
        span["variants"] = [
            {"variant": k, **row} for k, row in _variant_rows(span["weights"], counted).items()
        ]
    return {
        "experiment": spec.model_dump(),
        "decisions": sum(counts.decisions.values()),
        "variants": variants,
        "phases": spans,
    }


def _variant_rows(weights: dict[str, float], counts: ExperimentCounts) -> dict[str, dict[str, Any]]:
    """Per variant: the target share under `weights`, what was decided and what came back."""
    total = sum(counts.decisions.values())
    weight_sum = sum(weights.values())
    rows: dict[str, dict[str, Any]] = {}
    for name, weight in weights.items():
        decisions = counts.decisions.get(name, 0)
        o = counts.outcomes.get(name, {})
        ok, bad = int(o.get("successes", 0)), int(o.get("failures", 0))
        lat_n, q_n = o.get("latency_count", 0), o.get("quality_count", 0)
        rows[name] = {
            "target_share": round(weight / weight_sum, 4) if weight_sum else 0.0,
            "decisions": decisions,
            "share": round(decisions / total, 4) if total else None,
            "outcomes": ok + bad,
            "successes": ok,
            "failures": bad,
            "success_rate": round(ok / (ok + bad), 4) if ok + bad else None,
            "mean_latency_ms": round(o.get("latency_sum", 0) / lat_n, 2) if lat_n else None,
            "mean_quality": round(o.get("quality_sum", 0) / q_n, 4) if q_n else None,
        }
    return rows


def phases(spec: ExperimentSpec) -> list[dict[str, Any]]:
    """The experiment's periods between ramps: when each began and ended (None: still on) and
    the weights it ran with; `readout` adds what each phase decided and what came back."""
    weights = spec.weight_changes[0].before if spec.weight_changes else spec.weights()
    out: list[dict[str, Any]] = []
    started = spec.created_at
    for change in [*spec.weight_changes, None]:
        ended = change.at if change is not None else spec.stopped_at
        total = sum(weights.values())
        shares = {n: round(w / total, 4) for n, w in weights.items()}
        out.append({"started_at": started, "ended_at": ended, "weights": weights, "target_share": shares})
        if change is not None:
            started, weights = change.at, change.after
    return out


@dataclass(frozen=True)
class Assignment:
    """A request's A/B variant: what it overrides, and notes for the reason."""

    experiment: str
    variant: str
    strategy: str | None
    profile: Profile | None
    notes: tuple[str, ...] = ()
    phase: int = 0  # the experiment's ramp phase this decision counts in


_KEY_BITS: dict[KeyKind, int] = {"session": 1, "user": 2, "request": 4}
_MASKS = range(1, 8)  # every non-empty set of stable-key kinds a request can carry


class ExperimentIndex:
    """The running experiments by what decides whether a request takes part: the profile an
    experiment is scoped to (or none) and the stable-key kinds it assigns by. Built once per
    snapshot, off the decision path; `first` then reads at most two entries, so a decision costs
    the same beside 10 or 10,000 experiments that do not apply to it."""

    def __init__(self, experiments: Sequence[ExperimentSpec]) -> None:
        # profile (None = any) -> per mask of key kinds carried: (position, first experiment)
        self._first: dict[str | None, list[tuple[int, ExperimentSpec] | None]] = {}
        for position, spec in enumerate(experiments):
            if not spec.running:
                continue
            slots = self._first.setdefault(spec.profile, [None] * 8)
            wants = sum(_KEY_BITS[kind] for kind in set(spec.assign_by))
            for mask in _MASKS:
                if slots[mask] is None and mask & wants:
                    slots[mask] = (position, spec)

    def first(self, profile: str, keys: Mapping[KeyKind, str | None]) -> ExperimentSpec | None:
        """What a walk in order would find: the first running experiment scoped to `profile` or
        to no profile for which the request carries one of its stable keys."""
        mask = sum(bit for kind, bit in _KEY_BITS.items() if keys.get(kind))
        best: tuple[int, ExperimentSpec] | None = None
        for group in (self._first.get(profile), self._first.get(None)):
            hit = group[mask] if group is not None else None
            if hit is not None and (best is None or hit[0] < best[0]):
                best = hit
        return best[1] if best is not None else None


def assign(
    experiments: ExperimentIndex,
    profiles: Profiles,
    profile: Profile,
    keys: Mapping[KeyKind, str | None],
) -> Assignment | None:
    """The first running experiment this request takes part in (by resolved profile), and its
    variant by the experiment's stable key. Pure: every replica assigns the same."""
    spec = experiments.first(profile.name, keys)
    stable = spec.stable_key(keys) if spec is not None else None
    if spec is None or stable is None:
        return None
    variant = spec.variant_for(stable[1])
    notes = [f"exp:{spec.name}={variant.name}"]
    vprofile = profiles.profiles.get(variant.profile) if variant.profile else None
    if variant.profile and vprofile is None:
        notes.append(f"variant_profile_missing:{variant.profile}")
    return Assignment(spec.name, variant.name, variant.strategy, vprofile, tuple(notes), phase_of(spec))
