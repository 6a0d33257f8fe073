"""Evaluation metrics (RouteLLM's APGR / CPT, AUC), the threshold ranking under a trained router,
the premium-share window and calibration."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from routeiq.decision.catalog import CatalogEntry
from routeiq.decision.classify import Classification
from routeiq.decision.policy import ML_DEFAULT_THRESHOLD, select
from routeiq.decision.profiles import Profile, Profiles
from routeiq.settings import Settings
from routeiq.state.memory import MemoryState, WindowCounter
from routeiq.training.calibrate import calibrate, write_profile
from routeiq.training.scores import auc, pair_curve, threshold_policy
from tests.unit.test_policy import signals

REPO = Path(__file__).resolve().parents[2]


def test_random_constant_and_oracle_pair_curves() -> None:
    rng = np.random.default_rng(0)
    strong = (rng.random(400) < 0.7).astype(float)
    weak = (rng.random(400) < 0.4).astype(float)
    flat = pair_curve(np.zeros(400), strong, weak)  # ties split evenly = the random router
    assert flat.apgr == pytest.approx(0.5, abs=1e-9)
    assert flat.cpt(0.5) == pytest.approx(0.5, abs=0.003) and flat.cpt(0.8) == pytest.approx(0.8, abs=0.003)
    oracle = pair_curve(strong - weak, strong, weak)
    assert oracle.apgr > 1.0 and oracle.cpt(0.8) < 0.5
    inverted = pair_curve(weak - strong, strong, weak)
    assert inverted.apgr < 0.5
    assert flat.pgr[0] == pytest.approx(0.0) and flat.pgr[-1] == pytest.approx(1.0)


def test_pgr_by_hand() -> None:
    # 4 prompts; the strong model helps only on prompt 2. Score ranks prompt 2 first.
    strong, weak = np.array([1, 1, 1, 0.0]), np.array([1, 1, 0, 0.0])
    curve = pair_curve(np.array([0.1, 0.2, 0.9, 0.3]), strong, weak)
    assert curve.pgr.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert curve.cpt(0.5) == 0.25
    assert curve.apgr == pytest.approx((0.5 + 1 + 1 + 1) / 4)


def test_auc_matches_pairwise_counting() -> None:
    rng = np.random.default_rng(3)
    score = rng.integers(0, 5, 60).astype(float)  # many ties
    label = rng.random(60) < 0.4
    pairs = [(s, t) for s, t in itertools.product(score[label], score[~label])]
    expected = sum(1.0 if s > t else 0.5 if s == t else 0.0 for s, t in pairs) / len(pairs)
    assert auc(score, label) == pytest.approx(expected)


def test_threshold_policy_picks_cheapest_that_qualifies() -> None:
    predicted = np.array([[0.9, 0.6, 0.55], [0.9, 0.3, 0.2]])
    costs = np.array([0.9, 0.2, 0.1])
    assert threshold_policy(predicted, costs, 0.5).tolist() == [2, 0]
    assert threshold_policy(predicted, costs, 0.95).tolist() == [0, 0]  # none qualifies: best


def _entry(name: str, cost: float, tier: str) -> CatalogEntry:
    return CatalogEntry(
        deployment_id=name, model=name, tier=tier, input_cost_per_mtok=cost, output_cost_per_mtok=cost
    )


SIGNALS = signals()
CLASSIFICATION = Classification("conversation", 0.9, False, 0.9, "expert", {}, {}, {})


def test_balanced_under_a_trained_router_ranks_by_threshold_then_cost() -> None:
    entries = [_entry("big", 0.9, "premium"), _entry("mid", 0.2, "budget"), _entry("tiny", 0.1, "budget")]
    profile = Profile(name="auto", ml_threshold=0.5)
    estimates = [(0.8, "ml:r"), (0.55, "ml:r"), (0.4, "ml:r")]
    chosen = select(entries, estimates, profile, CLASSIFICATION, SIGNALS, predicted=True)
    assert [s.entry.deployment_id for s in chosen.ranked] == ["mid", "big", "tiny"]
    assert "ml_threshold:0.5" in chosen.notes
    # The centroid path with the same numbers follows the tier map instead (expert -> premium).
    centroid = select(entries, estimates, profile, CLASSIFICATION, SIGNALS, predicted=False)
    assert centroid.ranked[0].entry.deployment_id == "big"
    strict = select(
        entries, estimates, Profile(name="x", ml_threshold=0.95), CLASSIFICATION, SIGNALS, predicted=True
    )
    assert strict.ranked[0].entry.deployment_id == "big"  # none qualifies: the best predicted
    assert "best_available:below_quality_floor" in strict.notes
    default = select(entries, estimates, Profile(name="y"), CLASSIFICATION, SIGNALS, predicted=True)
    assert default.floor == ML_DEFAULT_THRESHOLD


def test_window_counter_slides() -> None:
    now = [1000.0]
    counter = WindowCounter(lambda: now[0])
    counter.add(True, 300)
    counter.add(False, 300)
    assert counter.totals(300) == (1, 2)
    now[0] += 150
    counter.add(False, 300)
    assert counter.totals(300) == (1, 3)
    now[0] += 160  # the first two fall out of the 300 s window
    assert counter.totals(300) == (0, 1)
    now[0] += 400
    assert counter.totals(300) == (0, 0)


def test_memory_state_counts_premium_share() -> None:
    async def scenario() -> tuple[tuple[int, int], tuple[int, int]]:
        state = MemoryState()
        for premium in (True, False, False, True):
            await state.count_premium_decision(premium, 60)
        return await state.premium_share(60), await state.premium_share(120)

    assert asyncio.run(scenario()) == ((2, 4), (0, 0))  # windows are counted apart


SAMPLE = [
    "What is the capital of France?",
    "Solve for x: 3x + 7 = 22. Show each step.",
    "Write a haiku about autumn leaves.",
    "Q: A train leaves at 3pm going 60 mph; another at 4pm going 80 mph. When does the second catch up?",
    "Translate 'good morning' into Spanish.",
    "Explain the difference between TCP and UDP.",
    "Which of these is a prime number? (A) 21 (B) 27 (C) 31 (D) 33",
    "Summarise the plot of Hamlet in two sentences.",
    "Write a Python function that checks whether a string is a palindrome.",
    "If all bloops are razzies and all razzies are lazzies, are all bloops lazzies? Explain.",
    "hi!",
    "List three causes of the French Revolution.",
] * 2


def test_calibrate_meets_the_target_and_writes_a_loadable_profile(tmp_path: Path) -> None:
    sample = tmp_path / "sample.jsonl"
    sample.write_text("\n".join(json.dumps({"prompt": f"{p} ({i})"}) for i, p in enumerate(SAMPLE)))
    settings = Settings()
    catalog = REPO / "bench/data/dcrouter_catalog.yaml"
    result = calibrate(settings, "dcrouter-linear", sample, 0.25, "auto", catalog, cache_dir=None)
    assert result.share <= 0.25
    shares = dict(result.curve)
    assert shares[1.0] > 0.25  # the target binds: a higher threshold would overshoot
    out = tmp_path / "profiles.yaml"
    write_profile(result, out)
    loaded = Profiles.load(REPO / "models/profiles.yaml", out)
    assert loaded.profiles["auto"].ml_threshold == result.threshold
    assert loaded.profiles["eco"].quality_floor == 0.7  # built-ins untouched
