"""The documented rule for combining signals with the centroid result (classify.py docstring)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from routeiq.decision.centroids import Centroids, CentroidSet
from routeiq.decision.classify import ComplexityModel, classify
from tests.unit.test_policy import signals

MODELS = Path(__file__).parents[2] / "models"
MODEL = ComplexityModel.load(MODELS / "complexity.json")
CATS = ("code_generation", "conversation", "tool_use", "translation", "reasoning", "summarization")
TIERS = ("trivial", "simple", "moderate", "complex", "expert")


def centroids() -> Centroids:
    eye = np.eye(8, dtype=np.float32)
    return Centroids(
        "x",
        8,
        CentroidSet(CATS, eye[: len(CATS)], (1,) * len(CATS)),
        CentroidSet(TIERS, eye[: len(TIERS)], (1,) * 5),
    )


def vector(weights: dict[int, float]) -> np.ndarray:
    v = np.zeros(8, dtype=np.float32)
    for i, w in weights.items():
        v[i] = w
    return v / np.linalg.norm(v)


CLEAR_CODE = vector({0: 1.0})  # nearest to code_generation by a wide margin
AMBIGUOUS = vector({0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0})  # equally near four categories


def test_confident_centroid_wins() -> None:
    c = classify(CLEAR_CODE, signals(), centroids(), MODEL, min_confidence=0.35)
    assert (c.category, c.low_confidence, c.heuristic) == ("code_generation", False, False)
    assert c.confidence > 0.9


def test_tool_loop_always_means_tool_use() -> None:
    c = classify(CLEAR_CODE, signals(tool_loop=True), centroids(), MODEL, min_confidence=0.35)
    assert c.category == "tool_use" and c.notes == ["rule:tool_loop"] and c.heuristic


def test_explicit_intent_overrides_similarity() -> None:
    c = classify(CLEAR_CODE, signals(intent="summarization"), centroids(), MODEL, min_confidence=0.35)
    assert c.category == "summarization" and "rule:intent:summarization" in c.notes


def test_offered_tools_mean_tool_use_unless_another_task_is_named() -> None:
    c = classify(CLEAR_CODE, signals(tools=2, agentic=True), centroids(), MODEL, min_confidence=0.35)
    assert c.category == "tool_use" and "rule:tools_offered" in c.notes and not c.low_confidence
    named = classify(
        CLEAR_CODE, signals(tools=2, intent="summarization"), centroids(), MODEL, min_confidence=0.35
    )
    assert named.category == "summarization"


def test_low_confidence_signal_rules_in_order() -> None:
    def run(**kw: object) -> str:
        return classify(AMBIGUOUS, signals(**kw), centroids(), MODEL, min_confidence=0.35).category

    assert run(tools=1, translation=True, code=True) == "tool_use"
    assert run(translation=True, code=True) == "translation"
    assert run(code=True, math=True) == "code_generation"
    assert run(math=True) == "reasoning"
    plain = classify(AMBIGUOUS, signals(), centroids(), MODEL, min_confidence=0.35)
    assert plain.low_confidence and not plain.heuristic and plain.notes == ["low_confidence"]


def test_non_english_discounts_confidence() -> None:
    english = classify(CLEAR_CODE, signals(), centroids(), MODEL, min_confidence=0.35)
    spanish = classify(
        CLEAR_CODE, signals(language="es", non_english=True), centroids(), MODEL, min_confidence=0.35
    )
    assert spanish.confidence < english.confidence and "non_english:es" in spanish.notes


def test_complexity_rises_with_structure_and_tiers_are_ordered() -> None:
    base = classify(CLEAR_CODE, signals(task_tokens=8), centroids(), MODEL, min_confidence=0.35)
    long_hard = classify(
        CLEAR_CODE,
        signals(task_tokens=600, steps=5, constraints=4, math=True),
        centroids(),
        MODEL,
        min_confidence=0.35,
    )
    assert 0 <= base.complexity < long_hard.complexity <= 1
    assert TIERS.index(base.tier) <= TIERS.index(long_hard.tier)
    assert [MODEL.tier_of(x) for x in (0.0, 1.0)] == ["trivial", "expert"]
    harder = replace(MODEL, bias=MODEL.bias + 5)
    assert harder.score(base.features, None) > MODEL.score(base.features, None)
