"""Embedding + signals -> category, confidence, complexity score, tier.

Scores only; no thresholds of policy live here. The complexity model is a small logistic
combination whose weights are data (`models/complexity.json`), so it can be refitted
(`tools/fit_complexity.py`) and its tier cut points calibrated without touching code.

How signals combine with the centroid result (the rule, tested in tests/unit/test_classify.py):
1. Category = the fitted category head's most probable class (`models/category_head.json`,
   decision/category_head.py), or, without a head (user or tenant prototypes added), the
   nearest category centroid with confidence = softmax of the cosines (temperature from
   config). A non-English prompt has its confidence multiplied by `non_english_discount`
   (the embedder is English-only; such prompts cluster together whatever their intent).
2. Structure beats similarity: a tool loop always means `tool_use`; an explicit instruction in
   the task's opening words ("summarize …", "translate …", "tl;dr") names its category; tools
   offered with no such instruction mean `tool_use`. Below
   the low-confidence line, a strong signal decides instead: tools offered -> tool_use,
   translation marker -> translation, code -> code_generation, math -> reasoning. The rule that
   fired is reported in `notes` and the decision's strategy becomes `heuristic`.
3. If still below the line, the result says `low_confidence` and policy ignores the category
   prior (it routes on complexity and the profile default alone).
4. Complexity = sigmoid(bias + sum(w_i * feature_i) + category_bias[category]); features are the
   tier-centroid expectation, log length of the task, math/code/reasoning/agentic flags,
   enumerated steps, constraint markers, turns and the questions asked beyond the first; the category
   bias applies only when the category is confidently known. Which weights are non-zero is
   decided by the cross-source table (tools/fit_complexity.py). Tier = complexity bucketed by
   cut points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from routeiq.artifacts.files import load_json
from routeiq.decision.centroids import Centroids
from routeiq.decision.schemas import TIERS, Tier
from routeiq.decision.signals import Signals
from routeiq.errors import ArtifactError

FEATURES = (
    "tier",
    "length",
    "math",
    "code",
    "reasoning",
    "agentic",
    "steps",
    "constraints",
    "turns",
    "questions",
)


@dataclass(frozen=True)
class ComplexityModel:
    bias: float
    weights: dict[str, float]
    category_bias: dict[str, float]  # logit offset per (confidently known) category
    tier_cuts: tuple[float, float, float, float]
    temperature: float = 0.05
    non_english_discount: float = 0.7
    length_ref_tokens: int = 1024
    # Expected quality of a model of capability c on a prompt of complexity x:
    # sigmoid(steepness * (c - (difficulty_base + difficulty_span * x))).
    difficulty_base: float = 0.35
    difficulty_span: float = 0.6
    steepness: float = 10.0

    @classmethod
    def load(cls, path: Path) -> ComplexityModel:
        data = load_json(path, what="complexity model")
        try:
            weights = {k: float(v) for k, v in data["weights"].items()}
            cuts = tuple(float(x) for x in data["tier_cuts"])
            model = cls(
                bias=float(data["bias"]),
                weights=weights,
                category_bias={k: float(v) for k, v in data.get("category_bias", {}).items()},
                tier_cuts=(cuts[0], cuts[1], cuts[2], cuts[3]),
                temperature=float(data.get("temperature", 0.05)),
                non_english_discount=float(data.get("non_english_discount", 0.7)),
                length_ref_tokens=int(data.get("length_ref_tokens", 1024)),
                **{
                    k: float(data[k])
                    for k in ("difficulty_base", "difficulty_span", "steepness")
                    if k in data
                },
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ArtifactError(f"complexity model {path} is malformed: {exc!r}") from exc
        unknown = set(weights) - set(FEATURES)
        if unknown:
            raise ArtifactError(f"complexity model {path}: unknown features {sorted(unknown)}")
        if list(cuts) != sorted(cuts) or len(cuts) != 4:
            raise ArtifactError(f"complexity model {path}: tier_cuts must be 4 ascending numbers")
        return model

    def features(self, tier_score: float, signals: Signals) -> dict[str, float]:
        length = math.log1p(signals.task_tokens) / math.log1p(self.length_ref_tokens)
        return {
            "tier": tier_score,
            "length": min(length, 1.5),
            "math": float(signals.math),
            "code": float(signals.code),
            "reasoning": float(signals.reasoning),
            "agentic": float(signals.agentic),
            "steps": min(signals.steps, 6) / 6,
            "constraints": min(signals.constraints, 6) / 6,
            "turns": min(signals.user_turns, 10) / 10,
            # Several questions in one task = several sub-answers to get right. Only questions
            # beyond the first count: one "?" is how most prompts end, hard or trivial.
            "questions": math.log1p(min(max(signals.questions - 1, 0), 9)) / math.log1p(9),
        }

    def score(self, features: dict[str, float], category: str | None) -> float:
        z = self.bias + sum(self.weights.get(k, 0.0) * v for k, v in features.items())
        z += self.category_bias.get(category or "", 0.0)
        return 1.0 / (1.0 + math.exp(-z))

    def expected_quality(self, capability: float, complexity: float) -> float:
        difficulty = self.difficulty_base + self.difficulty_span * complexity
        return 1.0 / (1.0 + math.exp(-self.steepness * (capability - difficulty)))

    def tier_of(self, complexity: float) -> Tier:
        for tier, cut in zip(TIERS, self.tier_cuts, strict=False):
            if complexity < cut:
                return tier
        return TIERS[-1]


@dataclass
class Classification:
    category: str
    confidence: float
    low_confidence: bool
    complexity: float
    tier: Tier
    category_scores: dict[str, float]
    tier_scores: dict[str, float]
    features: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def heuristic(self) -> bool:
        return any(n.startswith("rule:") for n in self.notes)


def _softmax(cosines: npt.NDArray[np.float32], temperature: float) -> npt.NDArray[np.float64]:
    z = cosines.astype(np.float64) / temperature
    z -= z.max()
    e = np.exp(z)
    probs: npt.NDArray[np.float64] = e / e.sum()
    return probs


def classify(
    vector: npt.NDArray[np.float32],
    signals: Signals,
    centroids: Centroids,
    model: ComplexityModel,
    *,
    min_confidence: float,
) -> Classification:
    cat_probs = _softmax(centroids.categories.cosines(vector), model.temperature)
    labels = centroids.categories.labels
    head = centroids.head
    if head is not None:
        # The head's labels are the centroids' (checked at load), maybe in another order.
        order = [head.labels.index(label) for label in labels]
        head_probs = head.probabilities(vector)[order]
        cat_probs = head.centroid_weight * cat_probs + (1.0 - head.centroid_weight) * head_probs
    tier_probs = _softmax(centroids.tiers.cosines(vector), model.temperature)
    best = int(cat_probs.argmax())
    category, confidence = labels[best], float(cat_probs[best])
    notes: list[str] = []
    if signals.non_english:
        confidence *= model.non_english_discount
        notes.append(f"non_english:{signals.language}")
    category, confidence = _apply_rules(category, confidence, signals, labels, min_confidence, notes)
    low = confidence < min_confidence
    if low:
        notes.append("low_confidence")
    tier_labels = centroids.tiers.labels
    tier_score = float(sum(p * TIERS.index(t) for t, p in zip(tier_labels, tier_probs, strict=True))) / 4
    features = model.features(tier_score, signals)
    complexity = model.score(features, None if low else category)
    return Classification(
        category=category,
        confidence=round(confidence, 4),
        low_confidence=low,
        complexity=round(complexity, 4),
        tier=model.tier_of(complexity),
        category_scores={k: round(float(p), 4) for k, p in zip(labels, cat_probs, strict=True)},
        tier_scores={k: round(float(p), 4) for k, p in zip(centroids.tiers.labels, tier_probs, strict=True)},
        features={k: round(v, 4) for k, v in features.items()},
        notes=notes,
    )


def _apply_rules(
    category: str,
    confidence: float,
    signals: Signals,
    labels: tuple[str, ...],
    min_confidence: float,
    notes: list[str],
) -> tuple[str, float]:
    def known(name: str) -> bool:
        return name in labels

    if signals.tool_loop and known("tool_use"):
        notes.append("rule:tool_loop")
        return "tool_use", max(confidence, 0.9)
    if signals.intent and signals.intent != category and known(signals.intent):
        notes.append(f"rule:intent:{signals.intent}")
        return signals.intent, max(confidence, min_confidence)
    # Tools offered and no other task named outright: the request's job is to pick and call one
    # (the text is usually a plain question — "weather in Paris?" — which the embedding files
    # under conversation or reasoning). The offered tools are better evidence than similarity.
    if signals.tools > 0 and not signals.intent and category != "tool_use" and known("tool_use"):
        notes.append("rule:tools_offered")
        return "tool_use", max(confidence, min_confidence)
    if confidence >= min_confidence:
        return category, confidence
    for fired, target in (
        (signals.tools > 0, "tool_use"),
        (signals.translation, "translation"),
        (signals.code, "code_generation"),
        (signals.math, "reasoning"),
    ):
        if fired and known(target):
            notes.append(f"rule:{target}")
            return target, min_confidence
    return category, confidence


def describe(classification: Classification) -> dict[str, Any]:
    return {
        "category_scores": classification.category_scores,
        "tier_scores": classification.tier_scores,
        "complexity_features": classification.features,
        "notes": classification.notes,
    }
