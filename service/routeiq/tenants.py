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
  catalog / profiles / prototypes files merged over the service's, a capacity weight, an
  optional decisions-per-second quota and an optional quota on /feedback outcomes per second
  (`ROUTEIQ_TENANT_MAX_FEEDBACK_OUTCOMES_PER_SECOND` for the tenants that set none).

The registry is bounded: tenants are created only for names that configuration gives (the
tokens in force), never for anything a caller sends.

A tenant's own files are checked whenever the tenants file is loaded, for every tenant it names
with or without a token: at start-up a file that does not load stops it; a re-read tenants file
naming one is refused whole and the tenants in force keep serving (one refusal, one log line
naming the tenant and the file). A tenant is built when its token arrives; should its files
have gone bad on disk since, it is not built: its requests get 503 `tenant_unavailable` naming
the problem, and the build is tried again at most every `RETRY_SECONDS` and after each re-read
tenants file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
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
from routeiq.errors import ConfigError, RouteIQError, TenantOverQuota, TenantUnavailable
from routeiq.settings import Settings
from routeiq.snapshot import Additions, Snapshot, load_snapshot
from routeiq.state import quotas
from routeiq.state.protocols import State
from routeiq.state.records import SharedConfig

log = logging.getLogger("routeiq.tenants")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


WATCH_SECONDS = 1.0
# A tenant that could not be built is tried again after this long (or a re-read tenants file),
# not on every request: each try reads its files on an inference thread.
RETRY_SECONDS = 5.0


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
    max_feedback_outcomes_per_second: float | None = Field(
        None, gt=0, description="Hard quota on /feedback outcomes; unset = the service default."
    )
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


# A directory part of a path: the caller is told which file, the log and /admin/tenants where.
_DIRECTORIES = re.compile(r"""(?:(?<=\s)|^|(?<=[("']))(?:~|\.{1,2})?(?:[A-Za-z]:)?[\\/](?:[^\s\\/]+[\\/])*""")


def _unavailable(name: str, why: str) -> TenantUnavailable:
    reason = _DIRECTORIES.sub("", why.removeprefix(f"tenant {name!r}: "))
    return TenantUnavailable(
        f"tenant {name!r} cannot be served: its configuration did not load ({reason})",
        tenant=name,
        retry_after=int(RETRY_SECONDS),
    )


def _feedback_limit(spec: TenantSpec, settings: Settings) -> tuple[float, str] | None:
    """The tenant's outcomes-per-second limit on /feedback and where it is set, or None."""
    if spec.max_feedback_outcomes_per_second is not None:
        return spec.max_feedback_outcomes_per_second, "max_feedback_outcomes_per_second, ROUTEIQ_TENANTS_FILE"
    if (default := settings.tenant_max_feedback_outcomes_per_second) is not None:
        return default, "ROUTEIQ_TENANT_MAX_FEEDBACK_OUTCOMES_PER_SECOND"
    return None


@dataclass
class Tenant:
    """The quotas are buckets in the tenant's state (`state.quotas`): with Redis every worker
    of every replica takes from the same one, so a quota is the service's, not a worker's."""

    name: str
    engine: Engine  # the tenant's view: its state, snapshot, settings, recent decisions
    sync: ConfigSync
    spec: TenantSpec = field(default_factory=TenantSpec)
    # Outcomes per second on /feedback, and the setting it comes from (for the refusal's message).
    feedback_limit: float | None = None
    feedback_source: str = ""

    def limit_feedback(self, settings: Settings) -> None:
        """(Re)set the feedback limit from the spec and the service default."""
        limit = _feedback_limit(self.spec, settings)
        self.feedback_limit = None if limit is None else limit[0]
        self.feedback_source = "" if limit is None else limit[1]

    async def admit_decisions(self, decisions: int) -> None:
        """Take `decisions` from the tenant's decision quota: TenantOverQuota (429) when they
        do not fit."""
        rate = self.spec.max_decisions_per_second
        if rate is None:
            return
        wait = await self.engine.state.take_quota(quotas.DECISIONS, rate, decisions)
        if wait == 0.0:
            return
        metrics = self.engine.metrics
        metrics.rejected.labels("tenant_over_quota").inc()
        metrics.tenant_refusals.labels(metrics.tenant_label(self.name), "over_quota").inc()
        raise TenantOverQuota(
            f"tenant {self.name!r} is over its quota of {rate:g} decisions per second (ROUTEIQ_TENANTS_FILE)",
            retry_after=max(1, math.ceil(wait)),
            tenant=self.name,
            limit=rate,
        )

    async def admit_feedback(self, outcomes: int) -> None:
        """Take `outcomes` from the tenant's feedback quota, all or none: TenantOverQuota (429)
        when they do not fit."""
        rate = self.feedback_limit
        if rate is None:
            return
        wait = await self.engine.state.take_quota(quotas.FEEDBACK, rate, outcomes)
        if wait != 0.0:
            raise self._feedback_refused(rate, wait)

    async def refuse_feedback_when_empty(self) -> None:
        """TenantOverQuota when no batch of any size fits now (the bucket holds less than one
        outcome), so a refused body need not be read. Nothing is taken."""
        rate = self.feedback_limit
        if rate is None:
            return
        tokens = await self.engine.state.quota_available(quotas.FEEDBACK, rate)
        if tokens < 1.0:
            raise self._feedback_refused(rate, (1.0 - tokens) / rate)

    def _feedback_refused(self, rate: float, wait: float) -> TenantOverQuota:
        metrics = self.engine.metrics
        metrics.tenant_refusals.labels(metrics.tenant_label(self.name), "feedback_over_quota").inc()
        return TenantOverQuota(
            f"tenant {self.name!r} is over its quota of {rate:g} feedback outcomes per second "
            f"({self.feedback_source}); nothing of this batch was applied",
            retry_after=max(1, math.ceil(wait)),
            tenant=self.name,
            limit=rate,
        )


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
        self._refused: dict[str, tuple[str, float]] = {}  # name -> (why, monotonic time to retry)
        self._lock = asyncio.Lock()
        self._watch: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.default = Tenant(DEFAULT_TENANT, base, base_sync)

    def __len__(self) -> int:
        return len(self._by_name)

    def known(self) -> list[str]:
        return sorted(self._by_name)

    def peek(self, name: str) -> Tenant | None:
        return self._by_name.get(name)

    def refusal(self, name: str) -> str | None:
        """Why the tenant `name` could not be built, while it is refused."""
        refused = self._refused.get(name)
        return refused[0] if refused else None

    async def get(self, name: str) -> Tenant:
        """The tenant `name` (a configured client name), created on first use. TenantUnavailable
        (503) when its files do not load."""
        try:
            return await self._ensure(name)
        except TenantUnavailable:
            metrics = self.base.metrics
            metrics.tenant_refusals.labels(metrics.tenant_label(name), "unavailable").inc()
            raise

    async def _ensure(self, name: str) -> Tenant:
        tenant = self._by_name.get(name)
        if tenant is not None:
            return tenant
        self._still_refused(name)
        async with self._lock:
            tenant = self._by_name.get(name)
            if tenant is not None:
                return tenant
            self._still_refused(name)  # tried while this request waited for the lock
            try:
                tenant = await self._create(name)
            except ConfigError as exc:
                self._refused[name] = (exc.message, time.monotonic() + RETRY_SECONDS)
                log.error("%s; its requests get 503 tenant_unavailable until they load", exc.message)
                raise _unavailable(name, exc.message) from exc
            self._refused.pop(name, None)
            self._by_name[name] = tenant
        return tenant

    def _still_refused(self, name: str) -> None:
        refused = self._refused.get(name)
        if refused is not None and time.monotonic() < refused[1]:
            raise _unavailable(name, refused[0])

    async def start(self, names: list[str]) -> None:
        """Build the tenants of `names` (the client names in force). The files of the tenants
        the tenants file names without a token are checked too: a bad one stops start-up here,
        not at the first request after its token arrives."""
        unknown = sorted(set(self.specs) - set(names))
        if unknown:
            log.warning("tenants file names %s, which no client token does (yet)", ", ".join(unknown))
        for name in unknown:
            if (spec := self.specs[name]).own_snapshot:
                await self._snapshot(name, spec, self._settings(spec))
        for name in names:
            self._by_name[name] = await self._create(name)

    def follow(self, names: list[str]) -> None:
        """The client names changed (tokens file): build the new ones' tenants now, so a tenant
        whose files do not load is logged when its token arrives, not at its first request."""
        new = [name for name in names if name not in self._by_name]
        if not new:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not called on the event loop: the first request builds them
        task = loop.create_task(self._prepare(new), name="routeiq-tenants-follow")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _prepare(self, names: list[str]) -> None:
        for name in names:
            with contextlib.suppress(TenantUnavailable):  # logged, and refused until it loads
                await self._ensure(name)

    async def stop(self) -> None:
        for task in [*self._pending, *([self._watch] if self._watch is not None else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
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
                except RouteIQError as exc:
                    log.error("tenants file change refused, the previous settings stay: %s", exc.message)
                except Exception:  # a bug must not end the watching
                    log.exception("tenants file change refused, the previous settings stay")

        self._watch = asyncio.create_task(run(), name="routeiq-tenants-watch")

    async def apply(self, specs: dict[str, TenantSpec]) -> list[str]:
        """Put a re-read tenants file in force: weight and quota at once; a tenant whose profile,
        strategy or files changed gets a new snapshot and config sync over the same state.
        Every new snapshot is built before any is swapped in, and the files of a tenant not
        built yet (no token so far, or refused) are read too: on an error (ConfigError naming
        the tenant and the file) nothing changes."""
        async with self._lock:
            for name, spec in specs.items():
                before = self.specs.get(name, TenantSpec())
                changed_files = _snapshot_fields(spec) != _snapshot_fields(before) or name in self._refused
                if name not in self._by_name and spec.own_snapshot and changed_files:
                    await self._snapshot(name, spec, self._settings(spec))  # a check: not kept
            rebuilt: dict[str, Tenant] = {}
            try:
                for name, tenant in self._by_name.items():
                    spec = specs.get(name, TenantSpec())
                    if _snapshot_fields(spec) != _snapshot_fields(tenant.spec):
                        rebuilt[name] = await self._create(name, spec, tenant.engine.state)
            except BaseException:
                for unused in rebuilt.values():  # their config syncs poll already
                    await unused.sync.stop()
                raise
            changed = []
            for name, tenant in list(self._by_name.items()):
                spec = specs.get(name, TenantSpec())
                if name in rebuilt:
                    await tenant.sync.stop()
                    self._by_name[name] = rebuilt[name]
                elif spec != tenant.spec:
                    tenant.spec = spec
                    tenant.limit_feedback(self.base.settings)
                    self._weigh(name, spec)
                else:
                    continue
                changed.append(name)
            self.specs = specs
            self._refused.clear()  # a refused tenant is tried again at its next request
            return changed

    def _weigh(self, name: str, spec: TenantSpec) -> None:
        for share in (self.base.capacity.decisions, self.base.capacity.embeddings):
            share.weights[name] = spec.weight

    def _settings(self, spec: TenantSpec) -> Settings:
        updates: dict[str, Any] = {}
        if spec.strategy is not None:
            updates["strategy"] = spec.strategy
        if spec.default_profile is not None:
            updates["default_profile"] = spec.default_profile
        return self.base.settings.model_copy(update=updates)

    async def _snapshot(self, name: str, spec: TenantSpec, settings: Settings) -> Snapshot:
        """The tenant's own snapshot, read off the loop. Whatever stops it loading (a missing or
        malformed file, an unknown default profile, a router that does not load) is a
        ConfigError naming the tenant; the loaders' messages name the file."""
        base = self.base
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                base.executor, lambda: load_snapshot(settings, base.embedder, additions=spec.additions)
            )
        except RouteIQError as exc:
            raise ConfigError(f"tenant {name!r}: {exc.message}") from exc
        except Exception as exc:  # not a caller's error either: the operator's files
            log.exception("tenant %s: its files did not load", name)
            raise ConfigError(f"tenant {name!r}: its files did not load: {exc!r}") from exc

    async def _create(self, name: str, spec: TenantSpec | None = None, state: State | None = None) -> Tenant:
        spec = spec or self.specs.get(name, TenantSpec())
        base = self.base
        settings = self._settings(spec)
        if spec.own_snapshot:
            snapshot = await self._snapshot(name, spec, settings)
        else:
            snapshot = base.snapshot.with_config(SharedConfig())
        view = base.for_tenant(name, settings, state or self._make_state(name), snapshot)
        sync = ConfigSync(view, spec.additions if spec.own_snapshot else None)
        self._weigh(name, spec)
        await sync.start()
        tenant = Tenant(name, view, sync, spec)
        tenant.limit_feedback(base.settings)
        log.info("tenant %s ready (weight %s)", name, spec.weight)
        return tenant
