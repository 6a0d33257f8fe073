"""Does `complexity` say when a stronger model is needed? APGR / CPT on held-out dcrouter_test.

Scores compared on the same 500 held-out prompts (none of them used to fit complexity.json):
the service's `complexity` (classify() exactly as the pipeline runs it), prompt length alone,
and random. Usage: python bench/eval_complexity.py
"""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from complexity_data import DATA, features, load_split
from fit_complexity import PAIRS
from routeiq.decision.centroids import load as load_centroids
from routeiq.decision.classify import ComplexityModel
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.settings import Settings
from routeiq.training.scores import pair_curve

EXTRA_PAIRS = [("llama-3.1-nemotron-51b-instruct", "llama3-chatqa-1.5-8b")]


def main() -> None:
    settings = Settings()
    embedder = OnnxEmbedder(settings.embedder_dir)
    centroids = load_centroids(settings.models_path / "centroids.json", embedder)
    model = ComplexityModel.load(settings.models_path / "complexity.json")
    test = load_split(DATA / "dcrouter_test.json", embedder, settings.token_budget)
    _, _, complexity = features(test, centroids, model, settings.min_category_confidence)
    length = np.array([s.task_tokens for s in test.signals], dtype=float)
    rng = np.random.default_rng(0)
    print(
        f"# Complexity vs need-for-a-stronger-model — {datetime.now(UTC):%Y-%m-%d} UTC, "
        f"{platform.machine()}, n={len(test.prompts)} held-out dcrouter_test prompts\n"
    )
    print(
        "| strong / weak | complexity APGR | CPT50 | CPT80 | length APGR | CPT50 | CPT80 | random APGR (mean of 20) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for strong, weak in PAIRS + EXTRA_PAIRS:
        s, w = test.scores[:, test.models.index(strong)], test.scores[:, test.models.index(weak)]
        c, ln = pair_curve(complexity, s, w), pair_curve(length, s, w)
        rnd = np.mean([pair_curve(rng.random(len(s)), s, w).apgr for _ in range(20)])
        print(
            f"| {strong} / {weak} | {c.apgr:.3f} | {c.cpt(0.5):.2f} | {c.cpt(0.8):.2f} | "
            f"{ln.apgr:.3f} | {ln.cpt(0.5):.2f} | {ln.cpt(0.8):.2f} | {rnd:.3f} |"
        )


if __name__ == "__main__":
    main()
