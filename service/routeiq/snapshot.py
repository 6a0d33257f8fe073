"""The snapshot: everything a decision reads, immutable, built by one function.

Catalog, profiles, centroids, the complexity model, the estimators (centroid and trained
routers) and the shared config (admin changes) are read together into one frozen `Snapshot`.
A decision takes `engine.snapshot` once and reads only that object, so it never sees half of a
reload. A reload builds a whole new snapshot off the event loop; a shared-config change derives
one with `with_config` (no file is read); either is published with one assignment
(`Engine.publish`). Nothing else changes what a decision reads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from routeiq.decision import category_head, centroids
from routeiq.decision.catalog import Catalog
from routeiq.decision.centroids import Centroids
from routeiq.decision.classify import ComplexityModel
from routeiq.decision.estimators import CentroidEstimator, Estimator
from routeiq.decision.experiments import ExperimentIndex
from routeiq.decision.names import CENTROID, TRAINED_PREFIX
from routeiq.decision.profiles import Profiles
from routeiq.errors import ArtifactError
from routeiq.inference.embedder import Embedder
from routeiq.observability.stopwatch import Stopwatch
from routeiq.settings import Settings
from routeiq.state.records import SharedConfig
from routeiq.trained.router import load_trained

log = logging.getLogger("routeiq.snapshot")

# Files a snapshot reads from the models folder; each must be pinned in models/manifest.json.
BUNDLED_FILES = ("catalog.yaml", "profiles.yaml", "prototypes.yaml", "centroids.json", "complexity.json")
# Optional (a models folder without it classifies by centroids); pinned like the rest when present.
CATEGORY_HEAD = "category_head.json"


@dataclass(frozen=True)
class Snapshot:
    catalog: Catalog
    file_profiles: Profiles  # as the files say, before the shared config's default profile
    profiles: Profiles  # what decisions use: file_profiles with the shared default applied
    centroids: Centroids
    complexity: ComplexityModel
    estimators: Mapping[str, Estimator]
    configured_strategy: str  # ROUTEIQ_STRATEGY; the shared config may override it
    config: SharedConfig = field(default_factory=SharedConfig)
    refused_routers: Mapping[str, str] = field(default_factory=dict)  # name -> why, at this load
    # The config's running experiments indexed for assignment; made by `with_config` with it.
    experiments: ExperimentIndex = field(default_factory=lambda: ExperimentIndex(()))

    @property
    def strategy_name(self) -> str:
        return self.config.strategy or self.configured_strategy

    def estimator(self, name: str | None = None) -> Estimator:
        """The named estimator (default: the active strategy); centroid when it is not loaded."""
        return self.estimators.get(name or self.strategy_name) or self.estimators[CENTROID]

    def with_config(self, config: SharedConfig) -> Snapshot:
        """This snapshot under another shared config. A default profile this worker does not
        know (another replica's files differ) is ignored here, and logged."""
        default = config.default_profile
        if default and default not in self.file_profiles.profiles:
            log.warning(
                "run-time default profile %r is unknown here; keeping %r", default, self.file_profiles.default
            )
            default = None
        profiles = replace(self.file_profiles, default=default or self.file_profiles.default)
        index = ExperimentIndex(config.experiments)  # here, not per decision
        return replace(self, config=config, profiles=profiles, experiments=index)


@dataclass(frozen=True)
class Additions:
    """One tenant's own files, merged over the service's (which are merged over the bundled
    ones): what a tenant does not set comes from the service."""

    catalog: Path | None = None
    profiles: Path | None = None
    prototypes: Path | None = None


def load_snapshot(
    settings: Settings,
    embedder: Embedder,
    config: SharedConfig | None = None,
    *,
    purpose: Literal["start", "reload"] = "start",
    watch: Stopwatch | None = None,
    additions: Additions | None = None,
) -> Snapshot:
    """Read every artifact a decision needs (CPU and disk: call it off the event loop once
    serving). Raises ArtifactError, naming the file, when one is unusable; and when the active
    strategy is a trained router that did not load — at start (ROUTEIQ_STRATEGY names it) or on
    a reload (the router serving now would be lost; nothing changes then)."""
    watch = watch or Stopwatch()
    models = settings.models_path
    more = additions or Additions()
    found = centroids_for(settings, embedder, more.prototypes)
    watch.lap("centroids")
    complexity = ComplexityModel.load(models / "complexity.json")
    watch.lap("complexity")
    catalog = Catalog.load(models / "catalog.yaml", settings.catalog_file, more.catalog)
    watch.lap("catalog")
    profiles = Profiles.load(
        models / "profiles.yaml", settings.profiles_file, settings.default_profile, extra=more.profiles
    )
    watch.lap("profiles")
    centroid: Estimator = CentroidEstimator(complexity)
    trained, report = load_trained(
        settings.trained_routers_dir, embedder.fingerprint, centroid, token_budget=settings.token_budget
    )
    watch.lap("routers")
    snapshot = Snapshot(
        catalog=catalog,
        file_profiles=profiles,
        profiles=profiles,
        centroids=found,
        complexity=complexity,
        estimators={CENTROID: centroid, **trained},
        configured_strategy=settings.strategy,
        refused_routers=dict(report.refused),
    ).with_config(config or SharedConfig())
    active = snapshot.strategy_name
    if active.startswith(TRAINED_PREFIX) and active not in snapshot.estimators:
        if purpose == "start" and active == settings.strategy:
            why = report.refused.get(active[len(TRAINED_PREFIX) :], "no such router in the routers folder")
            raise ArtifactError(f"ROUTEIQ_STRATEGY={active} cannot be served: {why}")
        if purpose == "reload":
            why = report.refused.get(active[len(TRAINED_PREFIX) :], "it is no longer in the routers folder")
            raise ArtifactError(f"reload refused: the active strategy {active} would be lost: {why}")
    return snapshot


def centroids_for(settings: Settings, embedder: Embedder, tenant_prototypes: Path | None = None) -> Centroids:
    """Bundled centroids (with the bundled category head, when there is one) when they fit;
    rebuilt from prototypes, without the head, when the user (or a tenant) adds some or the
    embedder is not the one they were built with (a rebuild takes well under a second)."""
    models = settings.models_path
    bundled = models / "centroids.json"
    added = [p for p in (settings.prototypes_file, tenant_prototypes) if p is not None]
    if not added and _built_with(bundled) == embedder.fingerprint:
        loaded = centroids.load(bundled, embedder)
        head_path = models / CATEGORY_HEAD
        if not head_path.is_file():
            return loaded
        head = category_head.load(head_path, embedder.fingerprint, embedder.dimension)
        if set(head.labels) != set(loaded.categories.labels):
            raise ArtifactError(
                f"category head {head_path} labels {sorted(head.labels)} differ from the centroids' "
                f"{sorted(loaded.categories.labels)}; run `python tools/fit_category_head.py --write`."
            )
        return replace(loaded, head=head)
    prototypes = centroids.load_prototypes(models / "prototypes.yaml")
    for path in added:
        prototypes = centroids.merge_prototypes(prototypes, centroids.load_prototypes(path))
    log.info("rebuilding centroids from prototypes (user prototypes or another embedder)")
    return centroids.build(embedder, prototypes)


def _built_with(path: Path) -> str | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("embedder_sha256")
        return str(value) if value else None
    except (OSError, ValueError, AttributeError):
        return None
