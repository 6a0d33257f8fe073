"""A/B experiments between strategies or profiles.

Assignment is a pure function of (experiment name, stable key): every worker and replica puts a
given session / user / request in the same variant without storing anything, so stickiness costs
no state. Only the per-variant counters are shared (HINCRBY in Redis: exact across replicas).
"""

from __future__ import annotations

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
    weight: float = Field(gt=0, le=1_000_000, description="Relative share of traffic.")
    strategy: str | None = Field(None, max_length=128, description="centroid or ml:<router>.")
    profile: str | None = Field(None, max_length=256, description="Profile this variant routes with.")

    @field_validator("strategy")
    @classmethod
    def _strategy_shape(cls, value: str | None) -> str | None:
        if value is not None and not is_strategy_name(value):
            raise ValueError(STRATEGY_NAME_RULE)
        return value


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

    @model_validator(mode="after")
    def _unique_variants(self) -> ExperimentSpec:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must be unique")
        return self

    @property
    def running(self) -> bool:
        return self.status == "running"

    def variant_for(self, key: str) -> VariantSpec:
        """Deterministic, uniform over the weights: the same key always gets the same variant."""
        digest = hashlib.blake2b(f"{self.name}\x1f{key}".encode(), digest_size=8).digest()
        point = int.from_bytes(digest, "big") % _BUCKETS / _BUCKETS * sum(v.weight for v in self.variants)
        for variant in self.variants:
            point -= variant.weight
            if point < 0:
                return variant
        return self.variants[-1]

    def stable_key(self, keys: Mapping[KeyKind, str | None]) -> tuple[KeyKind, str] | None:
        for kind in self.assign_by:
            value = keys.get(kind)
            if value:
                return kind, value
        return None


@dataclass
class ExperimentCounts:
    """Raw shared counters: decisions per variant, outcome sums per variant."""

    decisions: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, dict[str, float]] = field(default_factory=dict)


OUTCOME_FIELDS = ("successes", "failures", "latency_sum", "latency_count", "quality_sum", "quality_count")


def outcome_increments(success: bool, latency_ms: float | None, quality: float | None) -> dict[str, float]:
    out: dict[str, float] = {"successes" if success else "failures": 1}
    if latency_ms is not None:
        out["latency_sum"], out["latency_count"] = latency_ms, 1
    if quality is not None:
        out["quality_sum"], out["quality_count"] = quality, 1
    return out


def readout(spec: ExperimentSpec, counts: ExperimentCounts) -> dict[str, Any]:
    total = sum(counts.decisions.values())
    weight_sum = sum(v.weight for v in spec.variants)
    variants = []
    for v in spec.variants:
        decisions = counts.decisions.get(v.name, 0)
        o = counts.outcomes.get(v.name, {})
        ok, bad = int(o.get("successes", 0)), int(o.get("failures", 0))
        lat_n, q_n = o.get("latency_count", 0), o.get("quality_count", 0)
        variants.append(
            {
                "variant": v.name,
                "strategy": v.strategy,
                "profile": v.profile,
                "target_share": round(v.weight / weight_sum, 4),
                "decisions": decisions,
                "share": round(decisions / total, 4) if total else None,
                "outcomes": ok + bad,
                "successes": ok,
                "failures": bad,
                "success_rate": round(ok / (ok + bad), 4) if ok + bad else None,
                "mean_latency_ms": round(o.get("latency_sum", 0) / lat_n, 2) if lat_n else None,
                "mean_quality": round(o.get("quality_sum", 0) / q_n, 4) if q_n else None,
            }
        )
    return {"experiment": spec.model_dump(), "decisions": total, "variants": variants}


@dataclass(frozen=True)
class Assignment:
    """A request's A/B variant: what it overrides, and notes for the reason."""

    experiment: str
    variant: str
    strategy: str | None
    profile: Profile | None
    notes: tuple[str, ...] = ()


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
    return Assignment(spec.name, variant.name, variant.strategy, vprofile, tuple(notes))
