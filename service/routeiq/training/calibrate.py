"""`routeiq calibrate`: set a profile's `ml_threshold` so that a target share of a traffic sample
goes to premium-tier models under a trained router.

Runs the live decision path for every sample prompt (extraction, embedding, signals, classify,
the router's estimates, policy.select) at thresholds 0..1 and keeps the highest threshold whose
premium share is at or under the target (a higher threshold lets fewer cheap models qualify, so
the share grows with it). Scores in the sample are not needed: any prompts from your traffic do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from routeiq.decision.catalog import Catalog
from routeiq.decision.classify import ComplexityModel, classify
from routeiq.decision.estimators import CentroidEstimator
from routeiq.decision.policy import select
from routeiq.decision.profiles import Profile, Profiles
from routeiq.decision.prompt import view_of
from routeiq.decision.signals import extract_signals
from routeiq.errors import InvalidRequest
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.settings import Settings
from routeiq.snapshot import centroids_for
from routeiq.trained.router import TrainedEstimator, TrainedRouter
from routeiq.training import data
from routeiq.training.embeddings import DEFAULT_CACHE_DIR, embed_examples

GRID = np.round(np.linspace(0.0, 1.0, 201), 3)


@dataclass(frozen=True)
class Calibration:
    profile: Profile
    threshold: float
    share: float
    target: float
    curve: list[tuple[float, float]]  # (threshold, premium share)


def calibrate(
    settings: Settings,
    router_name: str,
    sample: Path,
    target: float,
    profile_name: str,
    catalog_file: Path | None = None,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
) -> Calibration:
    if not 0.0 <= target <= 1.0:
        raise InvalidRequest("the premium share target must be in [0, 1]", field="premium_share")
    models = settings.models_path
    profiles = Profiles.load(models / "profiles.yaml", settings.profiles_file, settings.default_profile)
    profile = profiles.profiles.get(profile_name)
    if profile is None:
        raise InvalidRequest(f"unknown profile {profile_name!r}; known: {sorted(profiles.profiles)}")
    if profile.prefer != "balanced":
        raise InvalidRequest(
            f"profile {profile_name!r} prefers {profile.prefer!r}; ml_threshold applies to balanced"
        )
    catalog = (
        Catalog.load(catalog_file)
        if catalog_file
        else Catalog.load(models / "catalog.yaml", settings.catalog_file)
    )
    entries = list(catalog.entries)
    if not any(e.tier == "premium" for e in entries):
        raise InvalidRequest("the catalog has no premium-tier model to budget", field="catalog")
    embedder = OnnxEmbedder(settings.embedder_dir, intra_op_threads=settings.ort_intra_op_threads)
    complexity = ComplexityModel.load(models / "complexity.json")
    centroids = centroids_for(settings, embedder)
    folder = settings.trained_routers_dir
    strategy = TrainedEstimator(
        TrainedRouter(folder / f"{router_name}.json", embedder.fingerprint), CentroidEstimator(complexity)
    )
    examples = data.load_examples(sample, settings.token_budget, scores=False)
    vectors = embed_examples(embedder, examples, settings.token_budget, cache_dir)
    prepared = []
    for example, vector in zip(examples, vectors, strict=True):
        signals = extract_signals(view_of(example.request), 0)
        c = classify(vector, signals, centroids, complexity, min_confidence=settings.min_category_confidence)
        prepared.append((signals, c, strategy.estimate(vector, c, entries)))
    curve = []
    for threshold in GRID:
        trial = profile.model_copy(update={"ml_threshold": float(threshold)})
        premium = 0
        for signals, c, estimates in prepared:
            ranked = select(entries, estimates, trial, c, signals, predicted=True).ranked
            premium += bool(ranked) and ranked[0].entry.tier == "premium"
        curve.append((float(threshold), premium / len(prepared)))
    fitting = [(t, s) for t, s in curve if s <= target + 1e-12]
    threshold, share = max(fitting) if fitting else min(curve)
    return Calibration(
        profile.model_copy(update={"ml_threshold": threshold}), threshold, share, target, curve
    )


def write_profile(result: Calibration, out: Path) -> None:
    """Put the calibrated profile into a user profiles YAML (ROUTEIQ_PROFILES_FILE), keeping the
    file's other profiles, teams and keys. A user profile replaces the built-in of the same name
    whole, so every field is written."""
    existing: dict[str, Any] = {}
    if out.exists():
        loaded = yaml.safe_load(out.read_text(encoding="utf-8"))
        if not isinstance(loaded, dict):
            raise InvalidRequest(f"{out} must hold a mapping", field="out")
        existing = loaded
    body = result.profile.model_dump(exclude={"name"})
    existing.setdefault("version", 1)
    existing.setdefault("profiles", {})[result.profile.name] = body
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(existing, sort_keys=False), encoding="utf-8")
