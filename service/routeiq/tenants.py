"""Tenants: one RouteIQ shared by several LiteLLM clusters, none able to see or disturb another.

A tenant is an authenticated client (the token's name). With auth off there is one tenant,
`default`, and it is the engine itself: its state keys and behaviour are those of a
single-tenant service. With auth on every client name is a tenant with, by construction:

- its own state (`state.build.build_state(tenant=...)`: its own `MemoryState`, or its own key
  namespace in Redis over the one shared connection pool) — sessions, breakers, deployment
  stats, experiments and their counters, runtime config, the premium window;
- its own snapshot and config sync (`Engine.for_tenant`), so its runtime config and
  experiments apply to it alone, and its own recent-decisions buffer;
- its own settings from the tenants file (`ROUTEIQ_TENANTS_FILE`): default profile, strategy,
  catalog / profiles / prototypes files merged over the service's, a capacity weight and an
  optional decisions-per-second quota.

The registry is bounded: tenants are created only for names that configuration gives (the
tokens in force), never for anything a caller sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from routeiq.artifacts.files import load_yaml
from routeiq.config_sync import ConfigSync
from routeiq.engine import DEFAULT_TENANT, Engine
from routeiq.errors import ArtifactError, ConfigError
from routeiq.snapshot import Additions, load_snapshot
from routeiq.state.protocols import State
from routeiq.state.records import SharedConfig

log = logging.getLogger("routeiq.tenants")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


WATCH_SECONDS = 1.0


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _snapshot_fields(spec: TenantSpec) -> tuple[object, ...]:
    return (spec.default_profile, spec.strategy, spec.catalog_file, spec.profiles_file, spec.prototypes_file)


class TenantSpec(BaseModel):
    """One tenant's entry in the tenants file; anything unset comes from the service."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    weight: float = Field(1.0, gt=0, le=1000, description="Share of inference capacity, relative.")
    max_decisions_per_second: float | None = Field(None, gt=0, description="Hard quota; unset = none.")
    default_profile: str | None = Field(None, max_length=256)
    strategy: str | None = Field(None, max_length=128)
    catalog_file: Path | None = None
    profiles_file: Path | None = None
    prototypes_file: Path | None = None

    @property
    def additions(self) -> Additions:
        return Additions(self.catalog_file, self.profiles_file, self.prototypes_file)

    @property
    def own_snapshot(self) -> bool:
        """Whether it decides with anything other than the service's snapshot."""
        return any(
            v is not None
            for v in (
                self.default_profile,
                self.strategy,
                self.catalog_file,
                self.profiles_file,
                self.prototypes_file,
            )
        )


def load_tenants_file(path: Path | None) -> dict[str, TenantSpec]:
    """`tenants: {name: {...}}`. Relative file paths are relative to the tenants file."""
    if path is None:
        return {}
    where = f"ROUTEIQ_TENANTS_FILE={path}"
    try:
        data = load_yaml(path, what="tenants file")
    except Exception as exc:  # ArtifactError: reword as a config problem naming the setting
        raise ConfigError(f"{where}: {exc}") from exc
    table = data.get("tenants", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: 'tenants' must map tenant (client) names to settings")
    specs: dict[str, TenantSpec] = {}
    for name, raw in table.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}: tenant name {name!r} must match {_NAME.pattern}")
        try:
            spec = TenantSpec.model_validate(raw or {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"{where}: tenant {name!r}: {problems}") from exc
        relative = {
            key: path.parent / value
            for key in ("catalog_file", "profiles_file", "prototypes_file")
            if (value := getattr(spec, key)) is not None and not value.is_absolute()
        }
        specs[name] = spec.model_copy(update=relative)
    return specs


@dataclass
class Quota:
    """Token bucket: `rate` decisions per second, bursts up to one second's worth."""

    rate: float
    tokens: float = 0.0
    at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = max(self.rate, 1.0)

    def take(self, n: int = 1) -> bool:
        """A batch larger than one second's worth is let in when the bucket is full and leaves
        it in debt, so the average rate still holds and no batch size is refused forever."""
        burst = max(self.rate, 1.0)
        now = time.monotonic()
        self.tokens = min(burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < min(n, burst):
            return False
        self.tokens -= n
        return True


def _quota(spec: TenantSpec) -> Quota | None:
    return Quota(spec.max_decisions_per_second) if spec.max_decisions_per_second else None


@dataclass
class Tenant:
    name: str
    engine: Engine  # the tenant's view: its state, snapshot, settings, recent decisions
    sync: ConfigSync
    spec: TenantSpec = field(default_factory=TenantSpec)
    quota: Quota | None = None


class Tenants:
    """The tenants of this process, created for configured names only."""

    def __init__(
        self,
        base: Engine,
        base_sync: ConfigSync,
        specs: dict[str, TenantSpec],
        make_state: Callable[[str], State],
    ) -> None:
        self.base = base
        self.specs = specs
        self._make_state = make_state
        self._by_name: dict[str, Tenant] = {}
        self._lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None
        self.default = Tenant(DEFAULT_TENANT, base, base_sync)

    def __len__(self) -> int:
        return len(self._by_name)

    def known(self) -> list[str]:
        return sorted(self._by_name)

    def peek(self, name: str) -> Tenant | None:
        return self._by_name.get(name)

    async def get(self, name: str) -> Tenant:
        """The tenant `name` (a configured client name), created on first use."""
        tenant = self._by_name.get(name)
        if tenant is not None:
            return tenant
        async with self._lock:
            tenant = self._by_name.get(name)
            if tenant is None:
                tenant = self._by_name[name] = await self._create(name)
        return tenant

    async def start(self, names: list[str]) -> None:
        unknown = sorted(set(self.specs) - set(names))
        if unknown:
            log.warning("tenants file names %s, which no client token does: ignored", ", ".join(unknown))
        for name in names:
            await self.get(name)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for tenant in self._by_name.values():
            await tenant.sync.stop()

    def watch(self, path: Path) -> None:
        """Re-read the tenants file when it changes (checked every `WATCH_SECONDS`, one stat),
        like the tokens file: every worker and replica follows its own copy."""

        async def run() -> None:
            seen = _signature(path)
            while True:
                await asyncio.sleep(WATCH_SECONDS)
                now = _signature(path)
                if now == seen:
                    continue
                seen = now
                try:
                    changed = await self.apply(load_tenants_file(path))
                    log.warning("tenants file reloaded; changed: %s", ", ".join(changed) or "none")
                except (ConfigError, ArtifactError) as exc:
                    log.error("tenants file change refused, the previous settings stay: %s", exc.message)

        self._watch = asyncio.create_task(run(), name="routeiq-tenants-watch")

    async def apply(self, specs: dict[str, TenantSpec]) -> list[str]:
        """Put a re-read tenants file in force: weight and quota at once; a tenant whose profile,
        strategy or files changed gets a new snapshot and config sync over the same state.
        Every new snapshot is built before any is swapped in: on an error nothing changes."""
        async with self._lock:
            rebuilt: dict[str, Tenant] = {}
            for name, tenant in self._by_name.items():
                spec = specs.get(name, TenantSpec())
                if _snapshot_fields(spec) != _snapshot_fields(tenant.spec):
                    rebuilt[name] = await self._create(name, spec, tenant.engine.state)
            changed = []
            for name, tenant in list(self._by_name.items()):
                spec = specs.get(name, TenantSpec())
                if name in rebuilt:
                    await tenant.sync.stop()
                    self._by_name[name] = rebuilt[name]
                elif spec != tenant.spec:
                    tenant.spec = spec
                    tenant.quota = (
                        Quota(spec.max_decisions_per_second) if spec.max_decisions_per_second else None
                    )
                    self._weigh(name, spec)
                else:
                    continue
                changed.append(name)
            self.specs = specs
            return changed

    def _weigh(self, name: str, spec: TenantSpec) -> None:
        for share in (self.base.capacity.decisions, self.base.capacity.embeddings):
            share.weights[name] = spec.weight

    async def _create(self, name: str, spec: TenantSpec | None = None, state: State | None = None) -> Tenant:
        spec = spec or self.specs.get(name, TenantSpec())
        base = self.base
        updates: dict[str, Any] = {}
        if spec.strategy is not None:
            updates["strategy"] = spec.strategy
        if spec.default_profile is not None:
            updates["default_profile"] = spec.default_profile
        settings = base.settings.model_copy(update=updates)
        if spec.own_snapshot:
            loop = asyncio.get_running_loop()
            snapshot = await loop.run_in_executor(
                base.executor, lambda: load_snapshot(settings, base.embedder, additions=spec.additions)
            )
        else:
            snapshot = base.snapshot.with_config(SharedConfig())
        view = base.for_tenant(name, settings, state or self._make_state(name), snapshot)
        sync = ConfigSync(view, spec.additions if spec.own_snapshot else None)
        self._weigh(name, spec)
        await sync.start()
        quota = _quota(spec)
        log.info("tenant %s ready (weight %s)", name, spec.weight)
        return Tenant(name, view, sync, spec, quota)
