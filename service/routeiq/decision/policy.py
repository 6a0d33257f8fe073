"""Profile + classification + catalog + state -> ranked candidates.

Hard constraints exclude (capabilities the request needs, context window, providers, free-only,
cost cap); if they exclude everything the request cannot be served and the caller gets a 422
that lists why each candidate fell. Soft constraints (quality floor, open circuit breaker) only
demote: a candidate below the floor is still better than no answer.

Ranking by the profile's preference:
- `quality`: highest expected quality, then cheapest;
- `cheapest`: cheapest candidate that meets the floor;
- `balanced`: the target model tier first (tier_map[tier], raised to the category's tier),
  then the nearest tiers (a stronger tier before a weaker one); within a tier the best
  expected quality, where qualities within QUALITY_BAND count as equal and the cheaper wins.
  Under a trained router (`predicted=True`) the tier map is not consulted: the router's per-model
  quality is the better evidence, so `balanced` becomes "the cheapest candidate whose predicted
  quality reaches the profile's `ml_threshold`" (else the best predicted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from routeiq.decision.catalog import CatalogEntry
from routeiq.decision.classify import Classification
from routeiq.decision.profiles import Profile
from routeiq.decision.schemas import MODEL_TIERS, ModelTier
from routeiq.decision.signals import Signals

# A stand-in price for candidates whose price is unknown, so they neither look free nor lose to
# everything: the typical blended $/Mtok of their tier.
_TYPICAL_COST: dict[str, float] = {"budget": 0.4, "mid": 2.5, "premium": 10.0}


# Expected qualities this close are not told apart (the estimate is not that precise).
QUALITY_BAND = 0.05

# The predicted quality a `balanced` profile requires under a trained router when it names no
# `ml_threshold` and no `quality_floor` (calibrate it: `routeiq calibrate`).
ML_DEFAULT_THRESHOLD = 0.5


@dataclass
class Scored:
    entry: CatalogEntry
    quality: float
    quality_source: str
    cost: float
    excluded: str | None = None
    demoted: list[str] = field(default_factory=list)


@dataclass
class Selection:
    ranked: list[Scored]
    excluded: list[Scored]
    target_tier: ModelTier
    target_reason: str
    floor: float | None
    notes: list[str] = field(default_factory=list)


def hard_exclusion(
    entry: CatalogEntry, profile: Profile, signals: Signals, *, request_needs_only: bool = False
) -> str | None:
    """Why `entry` cannot serve this request under `profile`, or None. With
    `request_needs_only`, only what the request itself needs (tools, vision, context) counts."""
    if (signals.tools > 0 or signals.tool_loop) and not entry.supports_tools:
        return "needs_tools"
    if signals.images > 0 and not entry.supports_vision:
        return "needs_vision"
    if entry.max_input_tokens is not None and signals.approx_tokens > entry.max_input_tokens:
        return f"context_window:{entry.max_input_tokens}<{signals.approx_tokens}"
    if request_needs_only:
        return None
    for capability in profile.required_capabilities:
        if not getattr(entry, f"supports_{capability}"):
            return f"profile_requires_{capability}"
    if profile.allowed_providers and (entry.provider or "") not in profile.allowed_providers:
        return f"provider_not_allowed:{entry.provider}"
    if profile.free_only and not entry.is_free:
        return "not_free"
    cost = entry.blended_cost
    if profile.max_cost_per_mtok is not None and (cost is None or cost > profile.max_cost_per_mtok):
        return f"over_cost_cap:{profile.max_cost_per_mtok}"
    return None


def target_tier(profile: Profile, classification: Classification) -> tuple[ModelTier, str]:
    tier = profile.tier_map.get(classification.tier, "mid")
    reason = f"{classification.tier}->{tier}"
    if not classification.low_confidence:
        floor_tier = profile.category_tiers.get(classification.category)
        if floor_tier and MODEL_TIERS.index(floor_tier) > MODEL_TIERS.index(tier):
            return floor_tier, f"{classification.category}->{floor_tier}"
    return tier, reason


def select(
    entries: Sequence[CatalogEntry],
    estimates: Sequence[tuple[float, str]],
    profile: Profile,
    classification: Classification,
    signals: Signals,
    open_circuits: frozenset[str] = frozenset(),
    *,
    predicted: bool = False,
) -> Selection:
    target, target_reason = target_tier(profile, classification)
    floor = profile.quality_floor
    threshold_ranking = predicted and profile.prefer == "balanced"
    if threshold_ranking:
        floor = ml_threshold(profile)
    ranked: list[Scored] = []
    excluded: list[Scored] = []
    for entry, (quality, source) in zip(entries, estimates, strict=True):
        cost = entry.blended_cost
        scored = Scored(entry, quality, source, _TYPICAL_COST[entry.tier] if cost is None else cost)
        scored.excluded = hard_exclusion(entry, profile, signals)
        if scored.excluded:
            excluded.append(scored)
            continue
        if floor is not None and quality < floor:
            scored.demoted.append("below_quality_floor")
        if entry.deployment_id in open_circuits:
            scored.demoted.append("circuit_open")
        ranked.append(scored)
    ranked.sort(key=_threshold_key if threshold_ranking else _sort_key(profile, target))
    notes: list[str] = [f"ml_threshold:{floor}"] if threshold_ranking else []
    if ranked and ranked[0].demoted:
        notes.extend(f"best_available:{d}" for d in ranked[0].demoted)
    # Say which deployments were pushed down by an open breaker (few: open circuits are rare).
    notes.extend(f"circuit_open:{s.entry.deployment_id}" for s in ranked if "circuit_open" in s.demoted)
    return Selection(ranked, excluded, target, target_reason, floor, notes)


def ml_threshold(profile: Profile) -> float:
    if profile.ml_threshold is not None:
        return profile.ml_threshold
    return profile.quality_floor if profile.quality_floor is not None else ML_DEFAULT_THRESHOLD


def _threshold_key(s: Scored) -> tuple[int, float, float]:
    """Meets the threshold: cheapest first, then higher predicted quality. Below it (only when
    nothing meets it): highest predicted quality first. An open circuit sinks either."""
    below = "below_quality_floor" in s.demoted
    circuit = 2 * ("circuit_open" in s.demoted)
    return (circuit + below, -s.quality if below else s.cost, s.cost if below else -s.quality)


def _sort_key(profile: Profile, target: ModelTier):  # type: ignore[no-untyped-def]
    target_index = MODEL_TIERS.index(target)

    def demotion(s: Scored) -> int:
        # An open circuit weighs more than a missed floor: that deployment is failing now.
        return 2 * ("circuit_open" in s.demoted) + ("below_quality_floor" in s.demoted)

    if profile.prefer == "quality":
        return lambda s: (demotion(s), -s.quality, s.cost)
    if profile.prefer == "cheapest":
        return lambda s: (demotion(s), s.cost, -s.quality)

    def balanced(s: Scored) -> tuple[int, float, int, float]:
        distance = MODEL_TIERS.index(s.entry.tier) - target_index
        # Above the target costs more but is safe; below risks quality: weigh it 1.5x.
        # Expected qualities within one band count as equal, and then the cheaper one wins.
        band = -int(s.quality / QUALITY_BAND)
        return (demotion(s), distance if distance >= 0 else -1.5 * distance, band, s.cost)

    return balanced
