"""Admin API (/admin/*, behind ROUTEIQ_ADMIN_KEY): active strategy and default profile,
A/B experiments, reload without restart, circuit breakers, recent decisions.

Every endpoint acts on one tenant. A tenant admin token acts on its own tenant only; the
global admin key names one with `?tenant=` or `X-RouteIQ-Tenant` (required when auth is on:
there is no tenant-less state then). With auth off the one tenant is the default one.

Writes go to the shared state first and are then applied here at once; every other worker and
replica picks them up on its next poll (`config_sync.ConfigSync`). Thin handlers, like
`http.handlers`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from routeiq.decision.experiments import (
    NAME_PATTERN,
    ExperimentSpec,
    KeyKind,
    RampRefused,
    VariantSpec,
    readout,
)
from routeiq.engine import Engine
from routeiq.errors import ArtifactError, ConfigError, Conflict, Forbidden, InvalidRequest, NotFound
from routeiq.http.auth import AdminScope, require_admin
from routeiq.http.handlers import engine_of
from routeiq.http.token_source import TokenSource
from routeiq.state import quotas
from routeiq.tenants import Tenant, Tenants, load_tenants_file

# One line per change made through the admin API (and so the dashboard): what, by which
# request, from where. Reads are not audited.
audit_log = logging.getLogger("routeiq.audit")


def _audit(request: Request, action: str, **fields: Any) -> None:
    peer = request.client.host if request.client else None
    record = {
        "action": action,
        "request_id": getattr(request.state, "request_id", None),
        "peer": peer,
        **fields,
    }
    audit_log.info("admin %s", action, extra={"fields": record})


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])
ExperimentName = Annotated[str, Path(pattern=NAME_PATTERN)]
Scope = Annotated[AdminScope, Depends(require_admin)]


def visible_tenants(request: Request, scope: AdminScope) -> list[str]:
    """The tenants this caller may act on: its own for a tenant admin token, every client's for
    the global key, the default tenant with auth off."""
    if scope.tenant is not None:
        return [scope.tenant]
    tenants: Tenants = request.app.state.tenants
    source: TokenSource = request.app.state.tokens
    return sorted(source.current().digests) or [tenants.default.name]


async def tenant_in_scope(request: Request, scope: AdminScope, *, first_if_unnamed: bool = False) -> Tenant:
    """The tenant this admin call acts on (see the module docstring). `first_if_unnamed`: the
    global key naming none gets the first tenant instead of a 400 (the dashboard's first poll,
    which then offers the others)."""
    engine_of(request)  # 503 while starting
    tenants: Tenants = request.app.state.tenants
    source: TokenSource = request.app.state.tokens
    names = sorted(source.current().digests)
    name = scope.tenant or scope.requested
    if name is None and first_if_unnamed and names:
        name = names[0]
    if not names:
        if name not in (None, tenants.default.name):
            raise NotFound(f"no tenant {name!r}: auth is off, the only tenant is 'default'", field="tenant")
        return tenants.default
    if name is None:
        raise InvalidRequest(
            f"name the tenant with ?tenant= or X-RouteIQ-Tenant; tenants: {names}", field="tenant"
        )
    if name not in names:
        raise NotFound(f"no tenant {name!r}; tenants: {names}", field="tenant")
    return await tenants.get(name)


def _global(scope: AdminScope) -> None:
    if scope.tenant is not None:
        raise Forbidden("this needs the global admin key (ROUTEIQ_ADMIN_KEY), not a tenant admin token")


class ConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strategy: str | None = Field(None, max_length=128)
    default_profile: str | None = Field(None, max_length=256)


class NewVariant(VariantSpec):
    # A new experiment gives every variant traffic; only a ramp can take a variant to 0.
    weight: float = Field(gt=0, le=1_000_000, description="Relative share of traffic.")


class ExperimentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    variants: list[NewVariant] = Field(min_length=2, max_length=16)
    assign_by: list[KeyKind] = Field(
        default_factory=lambda: ["session", "user", "request"],  # type: ignore[arg-type]
        min_length=1,
    )
    profile: str | None = Field(None, max_length=256)

    @field_validator("variants")
    @classmethod
    def _unique_variant_names(cls, variants: list[NewVariant]) -> list[NewVariant]:
        # Checked here, in request validation, so a duplicate is a 422 naming the field; the
        # same rule inside ExperimentSpec would only surface as an unhandled error later.
        names = [v.name for v in variants]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"variant names must be unique; repeated: {duplicates}")
        return variants


class ExperimentRamp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weights: dict[str, Annotated[float, Field(ge=0, le=1_000_000)]] = Field(
        max_length=16, description="Every variant's new relative weight (0 = no new traffic)."
    )


def config_view(engine: Engine) -> dict[str, Any]:
    snap = engine.snapshot
    return {
        "tenant": engine.tenant,
        "strategy": snap.estimator().name,
        "default_profile": snap.profiles.default,
        "version": snap.config.version,
        "overrides": {"strategy": snap.config.strategy, "default_profile": snap.config.default_profile},
        "settings": {
            "strategy": engine.settings.strategy,
            "default_profile": engine.settings.default_profile,
        },
        "strategies": sorted(snap.estimators),
        "profiles": sorted(snap.file_profiles.profiles),
        "state": engine.state.backend,
        "worker_pid": os.getpid(),
    }


@router.get("/config")
async def get_config(request: Request, scope: Scope) -> dict[str, Any]:
    return config_view((await tenant_in_scope(request, scope)).engine)


@router.put("/config")
async def put_config(body: ConfigUpdate, request: Request, scope: Scope) -> dict[str, Any]:
    sync = (await tenant_in_scope(request, scope)).sync
    engine = sync.engine
    if body.strategy is None and body.default_profile is None:
        raise InvalidRequest("give strategy and/or default_profile", field="body")
    snap = engine.snapshot
    if body.strategy is not None and body.strategy not in snap.estimators:
        raise InvalidRequest(
            f"strategy {body.strategy!r} is not loaded; loaded: {sorted(snap.estimators)}",
            field="strategy",
        )
    profile = body.default_profile.strip().lower() if body.default_profile else None
    if profile is not None and profile not in snap.file_profiles.profiles:
        raise InvalidRequest(f"unknown profile {body.default_profile!r}", field="default_profile")
    before = config_view(engine)
    config = await engine.state.update_config(strategy=body.strategy, default_profile=profile)
    await sync.accept(config)
    _audit(
        request,
        "config",
        strategy=[before["strategy"], body.strategy],
        default_profile=[before["default_profile"], profile],
        version=config.version,
    )
    return config_view(engine)


@router.get("/experiments")
async def list_experiments(request: Request, scope: Scope) -> dict[str, Any]:
    engine = (await tenant_in_scope(request, scope)).engine
    return {"experiments": [e.model_dump() for e in engine.snapshot.config.experiments]}


@router.post("/experiments", status_code=201)
async def create_experiment(body: ExperimentCreate, request: Request, scope: Scope) -> dict[str, Any]:
    sync = (await tenant_in_scope(request, scope)).sync
    engine = sync.engine
    known = engine.snapshot.file_profiles.profiles
    for where, name in [
        ("profile", body.profile),
        *((f"variants.{v.name}", v.profile) for v in body.variants),
    ]:
        if name is not None and name not in known:
            raise InvalidRequest(f"unknown profile {name!r}; known: {sorted(known)}", field=where)
    if all(v.strategy is None and v.profile is None for v in body.variants):
        raise InvalidRequest("variants must differ by strategy or profile", field="variants")
    spec = ExperimentSpec(**body.model_dump(), created_at=time.time())
    if not await engine.state.create_experiment(spec):
        raise InvalidRequest(f"experiment {spec.name!r} exists (names are not reused)", field="name")
    await sync.accept(await engine.state.load_config())
    _audit(
        request, "experiment_start", experiment=spec.name, variants=[v.model_dump() for v in spec.variants]
    )
    missing = sorted(
        {v.strategy for v in spec.variants if v.strategy and v.strategy not in engine.snapshot.estimators}
    )
    warnings = [f"strategy {m!r} is not loaded here: its variant routes with centroid" for m in missing]
    return {"experiment": spec.model_dump(), "warnings": warnings}


@router.get("/experiments/{name}")
async def experiment_readout(name: ExperimentName, request: Request, scope: Scope) -> dict[str, Any]:
    engine = (await tenant_in_scope(request, scope)).engine
    spec = engine.snapshot.config.experiment(name) or (await engine.state.load_config()).experiment(name)
    if spec is None:
        raise NotFound(f"no experiment {name!r}", field="name")
    return readout(spec, await engine.state.experiment_counts(name))


@router.patch("/experiments/{name}")
async def ramp_experiment(
    name: ExperimentName, body: ExperimentRamp, request: Request, scope: Scope
) -> dict[str, Any]:
    """Change a running experiment's weights in place: counters stay, users move only as far as
    the new weights need, and the change is kept in the readout's `phases`."""
    sync = (await tenant_in_scope(request, scope)).sync
    state = sync.engine.state
    spec = (await state.load_config()).experiment(name)
    if spec is None:
        raise NotFound(f"no experiment {name!r}", field="name")
    stopped = Conflict(f"experiment {name!r} is stopped: its weights no longer change", field="name")
    if not spec.running:
        raise stopped
    problem = spec.weight_problem(body.weights)
    if problem is not None:
        raise InvalidRequest(problem, field="weights")
    before = spec.weight_changes
    try:
        spec = await state.reweight_experiment(name, body.weights, time.time())
    except RampRefused as exc:
        raise Conflict(str(exc), field="weights") from None
    if spec is None:  # deleted since the read
        raise NotFound(f"no experiment {name!r}", field="name")
    if not spec.running:  # stopped since the read
        raise stopped
    if spec.weight_changes == before:  # the weights it already had: nothing changed
        return {"experiment": spec.model_dump()}
    config = await state.load_config()
    await sync.accept(config)
    _audit(
        request,
        "experiment_ramp",
        experiment=name,
        weights=[spec.weight_changes[-1].before, spec.weights()],
        version=config.version,
    )
    return {"experiment": spec.model_dump()}


@router.post("/experiments/{name}/stop")
async def stop_experiment(name: ExperimentName, request: Request, scope: Scope) -> dict[str, Any]:
    sync = (await tenant_in_scope(request, scope)).sync
    spec = await sync.engine.state.stop_experiment(name)
    if spec is None:
        raise NotFound(f"no experiment {name!r}", field="name")
    await sync.accept(await sync.engine.state.load_config())
    _audit(request, "experiment_stop", experiment=name)
    return {"experiment": spec.model_dump()}


@router.delete("/experiments/{name}")
async def delete_experiment(name: ExperimentName, request: Request, scope: Scope) -> dict[str, Any]:
    """Prune a stopped experiment: its definition and counters go, every worker stops loading it."""
    sync = (await tenant_in_scope(request, scope)).sync
    deleted = await sync.engine.state.delete_experiment(name)
    if deleted is None:
        raise NotFound(f"no experiment {name!r}", field="name")
    if not deleted:
        raise InvalidRequest(f"experiment {name!r} is running: stop it first", field="name")
    await sync.accept(await sync.engine.state.load_config())
    return {"deleted": name}


@router.post("/reload")
async def reload(request: Request, scope: Scope) -> dict[str, Any]:
    sync = (await tenant_in_scope(request, scope)).sync
    try:
        parts, config = await sync.reload_everywhere()
    except ArtifactError as exc:
        raise InvalidRequest(f"reload failed, nothing changed: {exc.message}", field="reload") from exc
    _audit(request, "reload", reloaded=parts, version=config.version)
    return {
        "reloaded": parts,
        "version": config.version,
        "catalog_models": len(sync.engine.snapshot.catalog.entries),
    }


@router.get("/breakers")
async def breakers(request: Request, scope: Scope) -> dict[str, Any]:
    engine = (await tenant_in_scope(request, scope)).engine
    info = await engine.state.breakers()
    return {"breakers": {k: v.as_dict() for k, v in sorted(info.items())}}


@router.post("/breakers/{deployment_id}/reset")
async def reset_breaker(
    deployment_id: Annotated[str, Path(max_length=256)], request: Request, scope: Scope
) -> dict[str, Any]:
    engine = (await tenant_in_scope(request, scope)).engine
    reset = await engine.state.reset_breaker(deployment_id)
    _audit(request, "breaker_reset", deployment_id=deployment_id, reset=reset)
    return {"deployment_id": deployment_id, "reset": reset}


@router.get("/decisions")
async def recent_decisions(
    request: Request,
    scope: Scope,
    model: str | None = None,
    deployment_id: str | None = None,
    profile: str | None = None,
    strategy: str | None = None,
    tier: str | None = None,
    category: str | None = None,
    experiment: str | None = None,
    variant: str | None = None,
    since: Annotated[float | None, Query(description="Unix time; only decisions at or after it.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    engine = (await tenant_in_scope(request, scope)).engine
    filters = {
        "model": model,
        "deployment_id": deployment_id,
        "profile": profile,
        "strategy": strategy,
        "tier": tier,
        "category": category,
        "experiment": experiment,
        "variant": variant,
    }
    return {
        "worker_pid": os.getpid(),
        "buffered": len(engine.recent),
        "decisions": engine.recent.query(filters, since=since, limit=limit),
    }


@router.get("/tenants")
async def list_tenants(request: Request, scope: Scope) -> dict[str, Any]:
    """Every tenant, its weight and quota, and what it holds of the capacity now (global key)."""
    _global(scope)
    engine_of(request)
    tenants: Tenants = request.app.state.tenants
    source: TokenSource = request.app.state.tokens
    capacity = tenants.base.capacity
    rows: dict[str, dict[str, Any]] = {}
    for name in sorted(source.current().digests):
        tenant = tenants.peek(name)
        spec = tenant.spec if tenant is not None else tenants.specs.get(name)
        feedback = tenant.feedback_limit if tenant is not None else None
        default_feedback = tenants.base.settings.tenant_max_feedback_outcomes_per_second
        available = decisions = None
        if tenant is not None and feedback is not None:
            available = await tenant.engine.state.quota_available(quotas.FEEDBACK, feedback)
        decision_rate = spec.max_decisions_per_second if spec is not None else None
        if tenant is not None and decision_rate is not None:
            decisions = await tenant.engine.state.quota_available(quotas.DECISIONS, decision_rate)
        rows[name] = {
            "weight": spec.weight if spec else 1.0,
            "max_decisions_per_second": spec.max_decisions_per_second if spec else None,
            # Decisions the quota lets through now (same bucket rules as feedback's).
            "decisions_available": None if decisions is None else math.floor(decisions),
            "max_feedback_outcomes_per_second": (
                feedback
                if feedback is not None
                else (spec.max_feedback_outcomes_per_second if spec else None) or default_feedback
            ),
            # Outcomes one /feedback may carry now, service-wide with Redis (negative: a large
            # batch's debt).
            "feedback_outcomes_available": None if available is None else math.floor(available),
            "decisions_in_flight": capacity.decisions.held.get(name, 0),
            "embeddings_in_flight": capacity.embeddings.held.get(name, 0),
        }
        if (why := tenants.refusal(name)) is not None:
            rows[name]["unavailable"] = why  # its files did not load: its requests get 503
    return {"tenants": rows, "worker_pid": os.getpid()}


@router.post("/tokens/reload")
async def reload_tokens(request: Request, scope: Scope) -> dict[str, Any]:
    """Re-read the client tokens now (they are also re-read when the tokens file changes)."""
    _global(scope)
    source: TokenSource = request.app.state.tokens
    try:
        tokens = source.reload()
    except ConfigError as exc:
        problem = f"tokens not reloaded, the previous ones stay: {exc.message}"
        raise InvalidRequest(problem, field="tokens") from exc
    return {"clients": sorted(tokens.digests), "worker_pid": os.getpid()}


@router.post("/tenants/reload")
async def reload_tenants(request: Request, scope: Scope) -> dict[str, Any]:
    """Re-read the tenants file now (it is also re-read within a second of a change)."""
    _global(scope)
    engine_of(request)
    settings = request.app.state.settings
    if settings.tenants_file is None:
        raise InvalidRequest("no tenants file: set ROUTEIQ_TENANTS_FILE", field="tenants_file")
    tenants: Tenants = request.app.state.tenants
    try:
        changed = await tenants.apply(load_tenants_file(settings.tenants_file))
    except (ConfigError, ArtifactError) as exc:
        problem = f"tenants file not reloaded, the previous settings stay: {exc.message}"
        raise InvalidRequest(problem, field="tenants_file") from exc
    return {"changed": changed, "worker_pid": os.getpid()}
