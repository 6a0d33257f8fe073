"""Everything a decision needs, loaded once (in the app's lifespan or the CLI), held in one object."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from . import centroids as centroid_io
from .admission import EmbedQueue
from .artifacts import Bundle
from .breaker import BreakerPolicy
from .catalog import Catalog
from .centroids import Centroids
from .classify import ComplexityModel
from .embed import EmbeddingCache, OnnxEmbedder
from .errors import ArtifactError
from .metrics import Metrics
from .profiles import Profiles
from .recent import RecentDecisions
from .settings import Settings
from .shared_cache import RedisEmbeddingCache
from .state import MemoryState, RuntimeConfig, State
from .strategies import CentroidStrategy, Strategy

log = logging.getLogger("routeiq")

# Files the engine loads from the models folder; each must be pinned in models/manifest.json.
BUNDLED_FILES = ("catalog.yaml", "profiles.yaml", "prototypes.yaml", "centroids.json", "complexity.json")


@dataclass
class Limiter:
    """Bounded admission: refuse at once past `capacity` instead of queueing without bound."""

    capacity: int
    in_flight: int = 0

    def try_acquire(self) -> bool:
        if self.in_flight >= self.capacity:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1


@dataclass
class Engine:
    settings: Settings
    embedder: OnnxEmbedder
    cache: EmbeddingCache
    centroids: Centroids
    complexity: ComplexityModel
    catalog: Catalog
    profiles: Profiles
    state: State
    metrics: Metrics
    executor: ThreadPoolExecutor
    limiter: Limiter
    strategies: dict[str, Strategy] = field(default_factory=dict)
    ready: bool = False
    routers_refused: dict[str, str] = field(default_factory=dict)  # router name -> why, last load
    # Shared run-time config (admin changes), applied by runtime.RuntimeSync; profiles as read
    # from files, before the run-time default profile is applied.
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    loaded_profiles: Profiles | None = None
    recent: RecentDecisions = field(default_factory=lambda: RecentDecisions(0))
    # Called (on an executor thread) by POST /admin/reload after catalog/profiles/centroids;
    # trained routers register theirs here to be re-read without a restart.
    reload_hooks: list[Callable[[Engine], None]] = field(default_factory=list)
    # Embeddings running or queued on `executor`; past depth or expected wait -> 503 at once.
    embed_queue: EmbedQueue = field(default_factory=lambda: EmbedQueue(2, 8, 0.03))
    shared_cache: RedisEmbeddingCache | None = None

    @classmethod
    def load(cls, settings: Settings, metrics: Metrics, state: State | None = None) -> Engine:
        models = settings.models_path
        timed = _Timer(metrics)
        bundle = timed("manifest", lambda: Bundle.verify(models))
        for name in BUNDLED_FILES:
            bundle.require(name)
        if settings.embedder_path is None:
            bundle.require("embedder/manifest.json")
        embedder = timed(
            "embedder",
            lambda: OnnxEmbedder(
                settings.embedder_dir,
                intra_op_threads=settings.ort_intra_op_threads,
                graph_optimization=settings.ort_graph_optimization,
            ),
        )
        centroids = timed("centroids", lambda: load_centroids(settings, embedder))
        complexity = timed("complexity", lambda: ComplexityModel.load(models / "complexity.json"))
        catalog = timed("catalog", lambda: Catalog.load(models / "catalog.yaml", settings.catalog_file))
        profiles = timed(
            "profiles",
            lambda: Profiles.load(models / "profiles.yaml", settings.profiles_file, settings.default_profile),
        )
        engine = cls(
            settings=settings,
            embedder=embedder,
            cache=EmbeddingCache.sized(settings.embedding_cache_mb, settings.embedding_cache_size),
            centroids=centroids,
            complexity=complexity,
            catalog=catalog,
            profiles=profiles,
            state=state or MemoryState(breaker_policy=breaker_policy(settings)),
            metrics=metrics,
            executor=ThreadPoolExecutor(settings.inference_threads, thread_name_prefix="routeiq-embed"),
            limiter=Limiter(settings.max_concurrent_requests),
            loaded_profiles=profiles,
            recent=RecentDecisions(settings.recent_decisions_size),
        )
        engine.strategies["centroid"] = CentroidStrategy(complexity)
        timed("routers", engine.load_routers)
        # POST /admin/reload re-reads trained routers too (refusing to drop the one in use).
        engine.reload_hooks.append(Engine.load_routers)
        engine.embed_queue = EmbedQueue(
            settings.inference_threads, settings.queue_depth_per_thread, settings.max_queue_wait_ms / 1000
        )
        if settings.embedding_cache_redis and settings.redis_url:
            engine.shared_cache = RedisEmbeddingCache.connect(
                settings.redis_url,
                settings.namespace,
                embedder.dimension,
                ttl_seconds=settings.embedding_cache_redis_ttl_seconds,
                timeout_s=settings.embedding_cache_redis_timeout_ms / 1000,
            )
        return engine

    def load_routers(self) -> None:
        """Trained routers as `ml:<name>` strategies. A refused router only stops start-up when
        it is the configured strategy (so a custom embedder does not trip over bundled routers)."""
        from .routers import reload_routers

        report = reload_routers(self)
        self.routers_refused = report.refused
        wanted = self.settings.strategy
        if wanted.startswith("ml:") and wanted not in self.strategies:
            why = report.refused.get(wanted[3:], "no such router in the routers folder")
            raise ArtifactError(f"ROUTEIQ_STRATEGY={wanted} cannot be served: {why}")

    def strategy(self) -> Strategy:
        name = self.runtime.strategy or self.settings.strategy
        return self.strategies.get(name) or self.strategies["centroid"]

    def warm_up(self) -> None:
        """One embedding on every inference thread, so no request pays onnxruntime's per-thread
        first-run cost (measured 10-30 ms on the first request per thread otherwise)."""
        threads = self.settings.inference_threads
        barrier = threading.Barrier(threads)

        def one() -> None:
            barrier.wait(timeout=30)  # holds each task on its own thread
            self.embedder.embed([["warm up the routing engine"]], self.settings.token_budget)

        for future in [self.executor.submit(one) for _ in range(threads)]:
            future.result()
        self.ready = True

    async def close(self) -> None:
        self.ready = False
        self.executor.shutdown(wait=True, cancel_futures=False)
        if self.shared_cache is not None:
            await self.shared_cache.close()
        await self.state.close()


def breaker_policy(settings: Settings) -> BreakerPolicy:
    return BreakerPolicy(
        enabled=settings.breaker_enabled,
        window_seconds=settings.breaker_window_seconds,
        min_requests=settings.breaker_min_requests,
        failure_rate=settings.breaker_failure_rate,
        open_seconds=settings.breaker_open_seconds,
        half_open_probes=settings.breaker_half_open_probes,
    )


def load_centroids(settings: Settings, embedder: OnnxEmbedder) -> Centroids:
    """Bundled centroids when they fit; rebuilt from prototypes when the user adds some or the
    embedder is not the one they were built with (a rebuild takes well under a second)."""
    models = settings.models_path
    bundled = models / "centroids.json"
    if settings.prototypes_file is None and _built_with(bundled) == embedder.fingerprint:
        return centroid_io.load(bundled, embedder)
    prototypes = centroid_io.load_prototypes(models / "prototypes.yaml")
    if settings.prototypes_file is not None:
        extra = centroid_io.load_prototypes(settings.prototypes_file)
        prototypes = centroid_io.merge_prototypes(prototypes, extra)
    log.info("rebuilding centroids from prototypes (user prototypes or another embedder)")
    return centroid_io.build(embedder, prototypes)


def _built_with(path: Path) -> str | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("embedder_sha256")
        return str(value) if value else None
    except (OSError, ValueError, AttributeError):
        return None


class _Timer:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def __call__(self, artifact: str, load):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        result = load()
        self._metrics.load_duration.labels(artifact).observe(time.perf_counter() - start)
        return result
