"""Run-time config shared by every worker and replica, and how each worker keeps up with it.

Admin changes (active strategy, default profile, experiments, reload) are written to the state
with a version number. Each worker polls the version every `state_sync_interval_ms` (one small
read) and, when it moved, loads the snapshot and applies it: a change made on one replica is live
on all of them within about one interval. Polling a versioned key rather than pub/sub: nothing
is lost while a connection is down, and the poll doubles as Redis's health probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace

from .catalog import Catalog
from .centroids import Centroids
from .engine import Engine, breaker_policy, load_centroids
from .metrics import Metrics
from .profiles import Profiles
from .settings import Settings
from .state import MemoryState, RuntimeConfig, State
from .state_redis import RedisState, connect

log = logging.getLogger("routeiq.runtime")


def build_state(settings: Settings, metrics: Metrics) -> State:
    """In-memory by default; Redis when ROUTEIQ_REDIS_URL is set (no connection made here)."""
    policy = breaker_policy(settings)
    if settings.redis_url is None:
        return MemoryState(breaker_policy=policy)
    return RedisState(
        connect(settings.redis_url, settings.redis_timeout_ms / 1000, settings.redis_max_connections),
        settings.namespace,
        timeout_s=settings.redis_timeout_ms / 1000,
        retry_seconds=settings.redis_retry_seconds,
        breaker_policy=policy,
        metrics=metrics,
        view_cache_seconds=settings.breaker_view_cache_ms / 1000,
    )


def apply(engine: Engine, config: RuntimeConfig) -> None:
    """Make `config` live in this worker. A default profile this worker does not know (another
    replica's files differ) is ignored here, and logged."""
    engine.runtime = config
    loaded = engine.loaded_profiles or engine.profiles
    default = config.default_profile
    if default and default not in loaded.profiles:
        log.warning("run-time default profile %r is unknown here; keeping %r", default, loaded.default)
        default = None
    engine.profiles = replace(loaded, default=default or loaded.default)


@dataclass
class Artifacts:
    catalog: Catalog
    profiles: Profiles
    centroids: Centroids


def read_artifacts(engine: Engine) -> Artifacts:
    """Re-read catalog, profiles and prototypes/centroids from disk (CPU: run off the loop), then
    the registered reload hooks (trained routers). Raises ArtifactError, leaving the engine as is."""
    s = engine.settings
    models = s.models_path
    artifacts = Artifacts(
        catalog=Catalog.load(models / "catalog.yaml", s.catalog_file),
        profiles=Profiles.load(models / "profiles.yaml", s.profiles_file, s.default_profile),
        centroids=load_centroids(s, engine.embedder),
    )
    for hook in engine.reload_hooks:
        hook(engine)
    return artifacts


class RuntimeSync:
    """One per worker: polls the shared config, applies it, reloads artifacts when asked."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.interval = engine.settings.state_sync_interval_ms / 1000
        self._applied_reload: int | None = None
        self._reload_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._breaker_labels: set[str] = set()

    async def start(self) -> None:
        """First sync before serving (start-up must not wait on a dead Redis: bounded), then poll."""
        try:
            await asyncio.wait_for(self.sync_once(force=True), timeout=2.0)
        except TimeoutError:
            log.warning("shared config not loaded at start-up; continuing with settings")
        self._task = asyncio.create_task(self._run(), name="routeiq-runtime-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sync_once()
                await self._export_breakers()
            except Exception:  # keep polling whatever one round did
                log.exception("runtime sync round failed")

    async def sync_once(self, force: bool = False) -> None:
        state = self.engine.state
        if not force and await state.config_version() == self.engine.runtime.version:
            return
        await self.accept(await state.load_config())

    async def accept(self, config: RuntimeConfig) -> None:
        """Apply a snapshot (from the poll, or from this worker's own admin write)."""
        if config.version < self.engine.runtime.version:
            return  # an older snapshot overtaken by a newer one
        apply(self.engine, config)
        if self._applied_reload is None:
            self._applied_reload = config.reload  # artifacts were just read at start-up
        elif config.reload != self._applied_reload:
            self._applied_reload = config.reload  # once per change, even if it fails here
            await self.reload()

    async def reload_everywhere(self) -> tuple[list[str], RuntimeConfig]:
        """Reload here first (an error reaches the admin and nothing is shared), then tell the
        other workers and replicas."""
        parts = await self.reload()
        config = await self.engine.state.update_config(reload=True)
        self._applied_reload = config.reload
        await self.accept(config)
        return parts, config

    async def reload(self) -> list[str]:
        async with self._reload_lock:
            loop = asyncio.get_running_loop()
            artifacts = await loop.run_in_executor(self.engine.executor, read_artifacts, self.engine)
            engine = self.engine
            engine.catalog, engine.centroids = artifacts.catalog, artifacts.centroids
            engine.loaded_profiles = artifacts.profiles
            apply(engine, engine.runtime)
            log.info("reloaded catalog, profiles, centroids and %d hook(s)", len(engine.reload_hooks))
            return ["catalog", "profiles", "prototypes", *(["routers"] if engine.reload_hooks else [])]

    async def _export_breakers(self) -> None:
        view = await self.engine.state.circuit_view()
        gauge = self.engine.metrics.breaker_state
        now = {d: 2 for d in view.open} | {d: 1 for d in view.probing}
        for deployment_id in self._breaker_labels - set(now):
            gauge.labels(deployment_id).set(0)
        for deployment_id, value in now.items():
            gauge.labels(deployment_id).set(value)
        self._breaker_labels |= set(now)
