"""The engine: the long-lived parts of a serving process, and the current snapshot.

Built once (in the app's lifespan or a CLI command) by `Engine.load`. Its parts are fixed for
the life of the process: settings, the embedder and its caches, the inference threads and their
admission, shared state, metrics, the recent-decisions buffer. What decisions read — catalog,
profiles, centroids, estimators, shared config — is the immutable `snapshot`, replaced whole by
`publish` (the config sync is its only caller once serving). No other code assigns to an engine.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from routeiq.artifacts.integrity import Bundle
from routeiq.inference.admission import Admission
from routeiq.inference.cache import EmbeddingCache
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.inference.fair_share import FairDispatcher, FairShare
from routeiq.inference.shared_cache import RedisEmbeddingCache
from routeiq.observability.metrics import Metrics
from routeiq.observability.recent_decisions import RecentDecisions
from routeiq.observability.stopwatch import Stopwatch
from routeiq.observability.training_rows import TrainingRows
from routeiq.settings import Settings
from routeiq.snapshot import BUNDLED_FILES, Snapshot, load_snapshot
from routeiq.state.build import breaker_policy, connect_redis
from routeiq.state.keys import embedding_prefix
from routeiq.state.memory import MemoryState
from routeiq.state.protocols import State
from routeiq.state.recent_ids import RecentIds

DEFAULT_TENANT = "default"
# Each shutdown step gets this long: a close that never returns (a Redis connection that stops
# answering mid-close) must not keep a worker from exiting, nor stop the steps after it.
SHUTDOWN_STEP_SECONDS = 5.0

log = logging.getLogger("routeiq")


async def close_within(what: str, step: Awaitable[None], seconds: float | None = None) -> bool:
    """Await one shutdown step for at most `seconds` (default SHUTDOWN_STEP_SECONDS); a step that
    fails or overruns is logged and shutdown goes on. True when it finished."""
    seconds = SHUTDOWN_STEP_SECONDS if seconds is None else seconds
    try:
        await asyncio.wait_for(step, seconds)
    except TimeoutError:
        log.warning("shutdown: %s did not finish within %g s; going on without it", what, seconds)
        return False
    except Exception:
        log.exception("shutdown: %s failed; going on", what)
        return False
    return True


@dataclass
class Capacity:
    """How the inference capacity is shared between tenants (one per process, every tenant's
    view holds the same object)."""

    decisions: FairShare
    embeddings: FairShare
    dispatch: FairDispatcher


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
    capacity: Capacity
    # Deployments this worker decided for lately: /feedback keeps outcomes only for these and
    # the catalog's, so made-up ids never reach state (see state/recent_ids.py).
    decided_ids: RecentIds
    # Decisions kept for their /feedback and the writer of joined rows; None unless
    # ROUTEIQ_TRAINING_ROWS_DIR is set (observability/training_rows.py).
    training_rows: TrainingRows | None = None
    tenant: str = DEFAULT_TENANT
    cache_scope: str = ""  # salts embedding cache keys: a tenant never hits another's entries
    ready: bool = False
    views: list[Engine] = field(default_factory=list, repr=False)

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
        executor = ThreadPoolExecutor(settings.inference_threads, thread_name_prefix="routeiq-embed")
        return cls(
            settings=settings,
            embedder=embedder,
            cache=EmbeddingCache.sized(settings.embedding_cache_mb, settings.embedding_cache_size),
            shared_cache=shared_cache,
            state=state or MemoryState(breaker_policy=breaker_policy(settings)),
            metrics=metrics,
            executor=executor,
            admission=Admission.from_settings(settings),
            recent=RecentDecisions(settings.recent_decisions_size),
            snapshot=snapshot,
            capacity=Capacity(
                decisions=FairShare(),
                embeddings=(embeddings := FairShare()),
                dispatch=FairDispatcher(executor, settings.inference_threads, embeddings),
            ),
            decided_ids=RecentIds(
                settings.feedback_known_ids,
                settings.feedback_id_ttl_seconds,
                settings.feedback_new_ids_per_minute,
            ),
            training_rows=TrainingRows.from_settings(settings, metrics),
        )

    def for_tenant(self, tenant: str, settings: Settings, state: State, snapshot: Snapshot) -> Engine:
        """The engine one tenant's requests run on: this process's embedder, caches, inference
        threads, admission and metrics, with the tenant's own settings, state, snapshot and
        recent decisions."""
        view = replace(
            self,
            settings=settings,
            state=state,
            snapshot=snapshot,
            recent=RecentDecisions(settings.recent_decisions_size),
            training_rows=self.training_rows.for_tenant(settings) if self.training_rows else None,
            tenant=tenant,
            cache_scope=tenant,
            views=[],
        )
        self.views.append(view)
        return view

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
        for view in self.views:
            view.ready = False
            if view.state is not self.state:
                await close_within("a tenant's shared state", view.state.close())
        self.executor.shutdown(wait=True, cancel_futures=False)
        if self.training_rows is not None:
            self.training_rows.close()  # what is queued is written (bounded wait)
        if self.shared_cache is not None:
            await close_within("the shared embedding cache", self.shared_cache.close())
        await close_within("shared state", self.state.close())
