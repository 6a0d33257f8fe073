"""Profiles, catalog and policy over the bundled config: pure functions, no model."""

from __future__ import annotations

from pathlib import Path

import pytest

from routeiq.decision.catalog import Catalog, CatalogEntry
from routeiq.decision.classify import Classification
from routeiq.decision.policy import select
from routeiq.decision.profiles import Profile, Profiles
from routeiq.decision.schemas import RouteRequest
from routeiq.decision.signals import Signals
from routeiq.errors import ArtifactError, UnknownProfile

MODELS = Path(__file__).parents[2] / "models"


def signals(**kw: object) -> Signals:
    base: dict[str, object] = dict(
        approx_tokens=20,
        task_tokens=10,
        messages=1,
        user_turns=1,
        has_system=False,
        tools=0,
        tool_loop=False,
        tool_results=0,
        agentic=False,
        code=False,
        math=False,
        reasoning=False,
        translation=False,
        intent=None,
        steps=0,
        constraints=0,
        questions=0,
        language="en",
        non_english=False,
        images=0,
    )
    base.update(kw)
    return Signals(**base)  # type: ignore[arg-type]


def classification(
    category: str = "conversation", tier: str = "simple", complexity: float = 0.3, low: bool = False
) -> Classification:
    return Classification(category, 0.9, low, complexity, tier, {}, {}, {})  # type: ignore[arg-type]


def entry(i: str, tier: str, cost: float, quality: float, **kw: object) -> CatalogEntry:
    return CatalogEntry(
        deployment_id=i,
        model=f"p/{i}",
        tier=tier,
        quality=quality,
        input_cost_per_mtok=cost,
        output_cost_per_mtok=cost,
        **kw,
    )  # type: ignore[arg-type]


ENTRIES = [
    entry("cheap", "budget", 0.1, 0.6),
    entry("mid", "mid", 1.0, 0.8, supports_vision=True),
    entry("top", "premium", 10.0, 0.92, supports_reasoning=True, supports_vision=True),
    entry("top2", "premium", 5.0, 0.9, supports_tools=False),
]


def run(profile: Profile, cls: Classification, sig: Signals | None = None, quals=None, open_=frozenset()):  # type: ignore[no-untyped-def]
    estimates = quals or [(e.quality, "prior") for e in ENTRIES]
    return select(ENTRIES, estimates, profile, cls, sig or signals(), open_)


def test_balanced_follows_tier_map_and_category_floor() -> None:
    profile = Profile(name="auto", category_tiers={"code_generation": "premium"})
    assert run(profile, classification("conversation", "simple")).ranked[0].entry.deployment_id == "cheap"
    assert run(profile, classification("conversation", "moderate")).ranked[0].entry.deployment_id == "mid"
    # within the premium tier, qualities within one band tie and the cheaper wins
    chosen = run(profile, classification("code_generation", "simple"))
    assert chosen.target_tier == "premium"
    assert chosen.ranked[0].entry.deployment_id == "top2"
    # low confidence: the category floor is not applied
    assert run(profile, classification("code_generation", "simple", low=True)).target_tier == "budget"


def test_cheapest_respects_floor_softly() -> None:
    eco = Profile(name="eco", prefer="cheapest", quality_floor=0.7)
    sel = run(eco, classification())
    assert sel.ranked[0].entry.deployment_id == "mid"
    assert "below_quality_floor" in sel.ranked[-1].demoted
    strict = Profile(name="x", prefer="cheapest", quality_floor=0.99)
    sel = run(strict, classification())
    assert sel.ranked[0].entry.deployment_id == "cheap"
    assert sel.notes == ["best_available:below_quality_floor"]


def test_hard_exclusions_name_the_reason() -> None:
    sel = run(Profile(name="p"), classification(), signals(tools=1, images=1))
    excluded = {s.entry.deployment_id: s.excluded for s in sel.excluded}
    assert excluded == {"cheap": "needs_vision", "top2": "needs_tools"}
    sel = run(Profile(name="r", required_capabilities=["reasoning"]), classification())
    assert [s.entry.deployment_id for s in sel.ranked] == ["top"]
    sel = run(Profile(name="c", max_cost_per_mtok=1.0), classification("x", "expert"))
    assert {s.entry.deployment_id for s in sel.ranked} == {"cheap", "mid"}
    # unknown context window: not excluded (the gateway knows better than a guess)
    assert len(run(Profile(name="w"), classification(), signals(approx_tokens=10**9)).ranked) == 4
    big = [entry("long", "mid", 1.0, 0.8, max_input_tokens=1000)]
    sel = select(big, [(0.8, "prior")], Profile(name="w"), classification(), signals(approx_tokens=2000))
    assert sel.excluded[0].excluded == "context_window:1000<2000"


def test_open_circuit_demotes_but_never_empties() -> None:
    sel = run(Profile(name="auto"), classification("conversation", "moderate"), open_=frozenset({"mid"}))
    assert sel.ranked[0].entry.deployment_id != "mid"
    assert sel.ranked[-1].entry.deployment_id == "mid"


def test_profile_resolution_order() -> None:
    profiles = Profiles(
        {n: Profile(name=n) for n in ("auto", "eco", "premium")},
        "auto",
        teams={"t1": "eco"},
        keys={"k1": "premium"},
    )
    assert profiles.resolve("premium", "eco", "t1", "k1").name == "premium"
    assert profiles.resolve(None, "eco", None, "k1").name == "eco"
    assert profiles.resolve(None, None, "t1", "k1").name == "eco"
    assert profiles.resolve(None, None, "t9", "k1").name == "premium"
    assert profiles.resolve(None, None, None, None).name == "auto"
    with pytest.raises(UnknownProfile) as err:
        profiles.resolve("nope", None, None, None)
    assert err.value.field == "X-RouteIQ-Profile"


def test_bundled_profiles_and_user_override(tmp_path: Path) -> None:
    profiles = Profiles.load(MODELS / "profiles.yaml")
    assert {"auto", "eco", "premium", "free", "reasoning"} <= set(profiles.profiles)
    user = tmp_path / "p.yaml"
    user.write_text(
        "profiles:\n  cheapskate: {prefer: cheapest, max_cost_per_mtok: 0.5}\nteams: {growth: cheapskate}\n"
    )
    merged = Profiles.load(MODELS / "profiles.yaml", user)
    assert merged.resolve(None, None, "growth", None).name == "cheapskate"
    user.write_text("teams: {growth: missing}\n")
    with pytest.raises(ArtifactError, match="unknown profile 'missing'"):
        Profiles.load(MODELS / "profiles.yaml", user)
    user.write_text("profiles:\n  bad: {prefer: fastest}\n")
    with pytest.raises(ArtifactError, match="profile 'bad' is invalid"):
        Profiles.load(MODELS / "profiles.yaml", user)


def test_catalog_candidates_and_completion() -> None:
    catalog = Catalog.load(MODELS / "catalog.yaml")
    assert len(catalog.entries) >= 12
    assert {e.tier for e in catalog.entries} == {"budget", "mid", "premium"}
    everything, note = catalog.candidates_for(RouteRequest(prompt="x", model="auto"))
    assert len(everything) == len(catalog.entries) and note is None
    group, note = catalog.candidates_for(RouteRequest(prompt="x", model="gpt-4o-mini"))
    assert [e.deployment_id for e in group] == ["gpt-4o-mini"] and note == "model:gpt-4o-mini"
    request = RouteRequest.model_validate(
        {
            "prompt": "x",
            "candidates": [
                {"deployment_id": "d1", "model": "openai/gpt-4o-mini"},
                {
                    "deployment_id": "d2",
                    "model": "mystery-model",
                    "input_cost_per_mtok": 20,
                    "output_cost_per_mtok": 60,
                },
            ],
        }
    )
    given, _ = catalog.candidates_for(request)
    assert given[0].deployment_id == "d1" and given[0].input_cost_per_mtok == 0.15  # completed from catalog
    assert given[1].tier == "premium" and given[1].quality == 0.9  # inferred from its price
