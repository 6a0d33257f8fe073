"""`routeiq verify`: check a models folder the way the service will use it, and a little more.

Loading the engine already refuses an embedder whose bytes differ from its manifest's sha256 and
centroids built with another embedder. It cannot see an edited centroid *value*: the JSON has no
hash of its own because it is rebuilt whenever prototypes change. So this rebuilds the centroids
from the bundled prototypes and compares them row by row, checks that the category head was
fitted on the prototypes as they are now, then makes one decision end to end.
The Docker build runs it, so an image with altered artifacts is never produced.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routeiq.artifacts.files import load_json
from routeiq.artifacts.integrity import sha256_file
from routeiq.decision import centroids
from routeiq.decision.centroids import Centroids, CentroidSet
from routeiq.decision.schemas import RouteRequest
from routeiq.engine import Engine
from routeiq.errors import ArtifactError
from routeiq.observability.metrics import Metrics
from routeiq.pipeline import Context, decide
from routeiq.settings import Settings
from routeiq.snapshot import CATEGORY_HEAD

# Rebuilt centroids match the stored ones to ~1e-7 on the machine that built them (the JSON keeps
# 7 decimals). Another CPU may run int8 kernels with other SIMD widths; 2e-3 leaves room for that
# and still catches any hand edit that could move a decision.
CENTROID_TOLERANCE = 2e-3


@dataclass(frozen=True)
class Report:
    embedder: str
    categories: int
    tiers: int
    centroid_max_diff: float
    decision: str

    def summary(self) -> str:
        return (
            f"ok: embedder {self.embedder} matches its manifest; {self.categories} category and "
            f"{self.tiers} tier centroids reproduce from prototypes (max diff "
            f"{self.centroid_max_diff:.1e}); sample decision -> {self.decision}"
        )


def compare(stored: Centroids, rebuilt: Centroids, tolerance: float = CENTROID_TOLERANCE) -> float:
    """Largest element difference between two centroid sets; raises past `tolerance`."""
    worst = 0.0
    for name, a, b in (
        ("categories", stored.categories, rebuilt.categories),
        ("tiers", stored.tiers, rebuilt.tiers),
    ):
        worst = max(worst, _compare_set(name, a, b, tolerance))
    return worst


def _compare_set(name: str, stored: CentroidSet, rebuilt: CentroidSet, tolerance: float) -> float:
    if set(stored.labels) != set(rebuilt.labels):
        raise ArtifactError(
            f"centroids {name} {sorted(stored.labels)} differ from the prototypes' "
            f"{sorted(rebuilt.labels)}; run `routeiq centroids build`."
        )
    worst = 0.0
    for label in stored.labels:
        row = stored.matrix[stored.labels.index(label)]
        expected = rebuilt.matrix[rebuilt.labels.index(label)]
        diff = float(np.max(np.abs(row - expected)))
        if diff > tolerance:
            raise ArtifactError(
                f"centroids {name}.{label} differ from a rebuild from prototypes by {diff:.2e} "
                f"(tolerance {tolerance:.0e}): the centroids file was edited or is stale; "
                "run `routeiq centroids build`."
            )
        worst = max(worst, diff)
    return worst


def check_head_is_current(models: Path) -> None:
    """The category head records the sha256 of the prototypes it was fitted on; prototypes edited
    since (the centroids follow a rebuild, the head does not) make it stale."""
    path = models / CATEGORY_HEAD
    if not path.is_file():
        return
    about = load_json(path, what="category head").get("about", {})
    fitted_on = about.get("prototypes_sha256") if isinstance(about, dict) else None
    now = sha256_file(models / "prototypes.yaml")
    if fitted_on != now:
        raise ArtifactError(
            f"category head {path} was fitted on prototypes {fitted_on!r}, but prototypes.yaml is "
            f"{now!r}: refit it with `python tools/fit_category_head.py --write`."
        )


def verify(settings: Settings) -> Report:
    """Load everything, check the centroids against a rebuild, make one decision."""
    engine = Engine.load(settings, Metrics.create())
    try:
        if engine.snapshot.refused_routers:
            # The service would start without them; an image must not ship them broken.
            raise ArtifactError(f"trained routers refused: {engine.snapshot.refused_routers}")
        stored = centroids.load(settings.models_path / "centroids.json", engine.embedder)
        prototypes = centroids.load_prototypes(settings.models_path / "prototypes.yaml")
        worst = compare(stored, centroids.build(engine.embedder, prototypes))
        check_head_is_current(settings.models_path)
        engine.ready = True
        request = RouteRequest(prompt="Write a Python function that merges two sorted lists")
        response = asyncio.run(decide(engine, request, Context(request_id="verify")))
    finally:
        engine.executor.shutdown()
    return Report(
        embedder=engine.embedder.name,
        categories=len(stored.categories.labels),
        tiers=len(stored.tiers.labels),
        centroid_max_diff=worst,
        decision=f"{response.model} ({response.category}, {response.tier})",
    )
