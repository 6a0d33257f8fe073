"""Fit the zero-config complexity score (models/complexity.json) — the one rebuild command.

The model is the one chosen on the cross-source table (`routeiq eval --cross-source`, section
"Across sources" of bench/RESULTS.md): `crossval.CHOSEN`, a non-negative combination of the
features that rank prompts *within* a kind of task (today: task length alone), fitted on the
decontaminated routing rows with each source's mean removed from the target. Features that
only shift whole kinds of task (category offsets, math/code flags, the tier-centroid
expectation) lost on that table, so their weights are 0 here (not removed: a refit on other
data may bring them back through the same table).

Calibration: ranking is all APGR sees, but policy reads complexity as a level, so the logit is
spread so the training prompts span ~[0.1, 0.9] (median 0.5); tier cut points are the quintiles
of our own tier prototypes (models/prototypes.yaml), not of the benchmark.

Usage:
  python tools/decontaminate.py build                 # -> /tmp/riq15/data/routing_rows.jsonl
  python tools/fit_complexity.py --data /tmp/riq15/data/routing_rows.jsonl [--write]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

from routeiq.decision.centroids import load as load_centroids
from routeiq.decision.classify import FEATURES, ComplexityModel, classify
from routeiq.decision.prompt import embed_segments, view_of
from routeiq.decision.schemas import RouteRequest
from routeiq.decision.signals import extract_signals
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.settings import Settings
from routeiq.training import crossval

PAIRS = list(crossval.PAIRS)  # also read by bench/eval_complexity.py


def tier_cuts(settings: Settings, embedder: OnnxEmbedder, model: ComplexityModel) -> list[float]:
    centroids = load_centroids(settings.models_path / "centroids.json", embedder)
    tiers = yaml.safe_load((settings.models_path / "prototypes.yaml").read_text())["tiers"]
    prompts = [p for label in ("trivial", "simple", "moderate", "complex", "expert") for p in tiers[label]]
    views = [view_of(RouteRequest(prompt=p)) for p in prompts]
    vectors = embedder.embed([embed_segments(v, settings.token_budget) for v in views], settings.token_budget)
    scores = [
        classify(
            vec, extract_signals(v, 0), centroids, model, min_confidence=settings.min_category_confidence
        ).complexity
        for vec, v in zip(vectors, views, strict=True)
    ]
    return [round(float(np.quantile(scores, q)), 4) for q in (0.2, 0.4, 0.6, 0.8)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/tmp/riq15/data/routing_rows.jsonl")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    embedder = OnnxEmbedder(settings.embedder_dir)
    data = crossval.load(Path(args.data), settings, embedder)
    y = crossval.target(data.scores, data.models, PAIRS)
    label = crossval.CHOSEN.removeprefix("two-level:")
    within = crossval.WITHIN_SETS[label]
    rows = np.ones(len(y), dtype=bool)
    fit = crossval.fit_two_level(data, y, rows, within, (), 0.0)
    logit = crossval.columns(data, within) @ fit.w_within
    scale = 1.5 / float(logit.std())
    bias = -float(np.median(logit)) * scale
    weights = {f: 0.0 for f in FEATURES}
    for f, w in zip(within, fit.w_within, strict=True):
        weights[f] = round(float(w) * scale, 4)
    print(f"{len(y)} rows; within features {within}; weights {weights}; bias {bias:.4f}")
    path = settings.models_path / "complexity.json"
    current = json.loads(path.read_text())
    model = replace(ComplexityModel.load(path), bias=round(bias, 4), weights=weights, category_bias={})
    cuts = tier_cuts(settings, embedder, model)
    print("tier cuts", cuts)
    if args.write:
        current.update(
            description=(
                "Complexity = sigmoid(bias + sum(weights * features) + category_bias[category]); "
                "tier = bucket by tier_cuts. Written by tools/fit_complexity.py --write."
            ),
            bias=round(bias, 4),
            weights=weights,
            category_bias={},
            tier_cuts=cuts,
            fitted_on=(
                f"{len(y)} decontaminated LLMRouter rows over {len(set(data.sources))} sources "
                f"(bench/data/routing_data_manifest.json); model {crossval.CHOSEN} chosen on the "
                "leave-one-source-out table in bench/RESULTS.md; target = mean of strong-beats-weak "
                f"and weak-fails over {len(PAIRS)} pairs, source means removed; logit spread 1.5 sd"
            ),
        )
        path.write_text(json.dumps(current, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
