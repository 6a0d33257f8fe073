"""classify() alone with the category head and with nearest centroid, same vector, same process.

Usage: python bench/classify_cost.py  (best of 5 x 2000 calls each, alternating; prints
microseconds per call and the ratio)
"""

from __future__ import annotations

import timeit
from dataclasses import replace

from routeiq.decision.centroids import Centroids
from routeiq.decision.classify import classify
from routeiq.decision.prompt import embed_segments, view_of
from routeiq.decision.schemas import RouteRequest
from routeiq.decision.signals import extract_signals
from routeiq.engine import Engine
from routeiq.observability.metrics import Metrics
from routeiq.settings import Settings


def main() -> None:
    engine = Engine.load(Settings(), Metrics.create())
    snap = engine.snapshot
    view = view_of(RouteRequest(prompt="Write a Python function that merges two sorted lists"))
    vector = engine.embedder.embed([embed_segments(view, 64)], 64)[0]
    signals = extract_signals(view, 0)
    variants = {"head": snap.centroids, "centroid": replace(snap.centroids, head=None)}

    def timer(found: Centroids) -> timeit.Timer:
        return timeit.Timer(lambda: classify(vector, signals, found, snap.complexity, min_confidence=0.35))

    best = {name: float("inf") for name in variants}
    for _ in range(5):  # alternate, so both see the same load
        for name, found in variants.items():
            best[name] = min(best[name], timer(found).timeit(2000) / 2000)
    for name, seconds in best.items():
        print(f"classify() with {name}: {seconds * 1e6:.1f} us")
    print(f"head / centroid: {best['head'] / best['centroid']:.2f}x")
    engine.executor.shutdown()


if __name__ == "__main__":
    main()
