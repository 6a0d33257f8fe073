"""Keeping every worker and replica on the same shared config, and reloading artifacts.

Admin changes (active strategy, default profile, experiments, reload) are written to the state
with a version number. Each worker's `ConfigSync` polls the version every
`state_sync_interval_ms` (one small read) and, when it moved, loads the shared config and
publishes a snapshot under it: a change made on one replica is live on all of them within about
one interval. Polling a versioned key rather than pub/sub: nothing is lost while a connection
is down, and the poll doubles as Redis's health probe.

`ConfigSync` is the only writer of `engine.snapshot` once the service is serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from routeiq.engine import DEFAULT_TENANT, Engine
from routeiq.snapshot import Additions, load_snapshot
from routeiq.state.records import SharedConfig

log = logging.getLogger("routeiq.config_sync")

RELOADED_PARTS = ["catalog", "profiles", "prototypes", "routers"]


class ConfigSync:
    """One per worker: polls the shared config, applies it, reloads artifacts when asked."""

    def __init__(self, engine: Engine, additions: Additions | None = None) -> None:
        self.engine = engine
        self.additions = additions  # a tenant's own files, re-read with every reload
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
        self._task = asyncio.create_task(self._run(), name="routeiq-config-sync")

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
                log.exception("config sync round failed")

    async def sync_once(self, force: bool = False) -> None:
        state = self.engine.state
        if not force and await state.config_version() == self.engine.snapshot.config.version:
            return
        await self.accept(await state.load_config())

    async def accept(self, config: SharedConfig) -> None:
        """Apply a shared config (from the poll, or from this worker's own admin write)."""
        if config.version < self.engine.snapshot.config.version:
            return  # an older config overtaken by a newer one
        self.engine.publish(self.engine.snapshot.with_config(config))
        if self._applied_reload is None:
            self._applied_reload = config.reload  # artifacts were just read at start-up
        elif config.reload != self._applied_reload:
            self._applied_reload = config.reload  # once per change, even if it fails here
            await self.reload()

    async def reload_everywhere(self) -> tuple[list[str], SharedConfig]:
        """Reload here first (an error reaches the admin and nothing is shared), then tell the
        other workers and replicas."""
        parts = await self.reload()
        config = await self.engine.state.update_config(reload=True)
        self._applied_reload = config.reload
        await self.accept(config)
        return parts, config

    async def reload(self) -> list[str]:
        """Re-read every artifact into a new snapshot (off the loop) and publish it; on
        ArtifactError nothing changes."""
        async with self._reload_lock:
            engine = self.engine
            loop = asyncio.get_running_loop()
            snapshot = await loop.run_in_executor(
                engine.executor,
                lambda: load_snapshot(
                    engine.settings,
                    engine.embedder,
                    engine.snapshot.config,
                    purpose="reload",
                    additions=self.additions,
                ),
            )
            # A config accepted while the files were read is newer than the one read with.
            engine.publish(snapshot.with_config(engine.snapshot.config))
            log.info("reloaded %s", ", ".join(RELOADED_PARTS))
            return list(RELOADED_PARTS)

    async def _export_breakers(self) -> None:
        if self.engine.tenant != DEFAULT_TENANT:
            return  # the gauge has no tenant label: one tenant's breakers would mask another's
        view = await self.engine.state.circuit_view()
        gauge = self.engine.metrics.breaker_state
        now = {d: 2 for d in view.open} | {d: 1 for d in view.probing}
        for deployment_id in self._breaker_labels - set(now):
            gauge.labels(deployment_id).set(0)
        for deployment_id, value in now.items():
            gauge.labels(deployment_id).set(value)
        self._breaker_labels |= set(now)
