"""The engine: the long-lived parts of a serving process, and the current snapshot.

Built once (in the app's lifespan or a CLI command) by `Engine.load`. Its parts are fixed for
the life of the process: settings, the embedder and its caches, the inference threads and their
admission, shared state, metrics, the recent-decisions buffer. What decisions read — catalog,
profiles, centroids, estimators, shared config — is the immutable `snapshot`, replaced whole by
`publish` (the config sync is its only caller once serving). No other code assigns to an engine.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from routeiq.artifacts.integrity import Bundle
from routeiq.inference.admission import Admission
from routeiq.inference.cache import EmbeddingCache
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.inference.shared_cache import RedisEmbeddingCache
from routeiq.observability.metrics import Metrics
from routeiq.observability.recent_decisions import RecentDecisions
from routeiq.observability.stopwatch import Stopwatch
from routeiq.settings import Settings
from routeiq.snapshot import BUNDLED_FILES, Snapshot, load_snapshot
from routeiq.state.build import breaker_policy, connect_redis
from routeiq.state.keys import embedding_prefix
from routeiq.state.memory import MemoryState
from routeiq.state.protocols import State


@dataclass
class Engine:
    settings: Settings
    embedder: OnnxEmbedder
    cache: EmbeddingCache
    shared_cache: RedisEmbeddingCache | None
    state: State
    metrics: Metrics
    executor: ThreadPoolExecutor  # the inference threads: embeddings, artifact reloads
    admission: Admission
    recent: RecentDecisions
    snapshot: Snapshot
    ready: bool = False

    @classmethod
    def load(cls, settings: Settings, metrics: Metrics, state: State | None = None) -> Engine:
        watch = Stopwatch()
        bundle = Bundle.verify(settings.models_path)
        for name in BUNDLED_FILES:
            bundle.require(name)
        if settings.embedder_path is None:
            bundle.require("embedder/manifest.json")
        watch.lap("manifest")
        embedder = OnnxEmbedder(
            settings.embedder_dir,
            intra_op_threads=settings.ort_intra_op_threads,
            graph_optimization=settings.ort_graph_optimization,
        )
        watch.lap("embedder")
        snapshot = load_snapshot(settings, embedder, watch=watch)
        for artifact, ms in watch.laps_ms.items():
            metrics.load_duration.labels(artifact).observe(ms / 1000)
        shared_cache = None
        if settings.embedding_cache_redis and settings.redis_configured:
            shared_cache = RedisEmbeddingCache(
                connect_redis(settings, decode_responses=False, max_connections=64),
                embedding_prefix(settings.namespace),
                embedder.dimension,
                ttl_seconds=settings.embedding_cache_redis_ttl_seconds,
                timeout_s=settings.embedding_cache_redis_timeout_ms / 1000,
                retry_seconds=settings.redis_retry_seconds,
            )
        return cls(
            settings=settings,
            embedder=embedder,
            cache=EmbeddingCache.sized(settings.embedding_cache_mb, settings.embedding_cache_size),
            shared_cache=shared_cache,
            state=state or MemoryState(breaker_policy=breaker_policy(settings)),
            metrics=metrics,
            executor=ThreadPoolExecutor(settings.inference_threads, thread_name_prefix="routeiq-embed"),
            admission=Admission.from_settings(settings),
            recent=RecentDecisions(settings.recent_decisions_size),
            snapshot=snapshot,
        )

    def publish(self, snapshot: Snapshot) -> None:
        """Make `snapshot` what every decision from now on reads. Decisions in flight keep the
        one they took."""
        self.snapshot = snapshot

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
