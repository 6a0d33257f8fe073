"""Admin API (/admin/*, behind ROUTEIQ_ADMIN_KEY): active strategy and default profile,
A/B experiments, reload without restart, circuit breakers, recent decisions.

Writes go to the shared state first and are then applied here at once; every other worker and
replica picks them up on its next poll (`config_sync.ConfigSync`). Thin handlers, like
`http.handlers`.
"""

from __future__ import annotations

import os
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from routeiq.config_sync import ConfigSync
from routeiq.decision.experiments import NAME_PATTERN, ExperimentSpec, KeyKind, VariantSpec, readout
from routeiq.engine import Engine
from routeiq.errors import ArtifactError, InvalidRequest, NotFound
from routeiq.http.auth import require_admin
from routeiq.http.handlers import engine_of

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])
ExperimentName = Annotated[str, Path(pattern=NAME_PATTERN)]


class ConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strategy: str | None = Field(None, max_length=128)
    default_profile: str | None = Field(None, max_length=256)


class ExperimentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN)
    variants: list[VariantSpec] = Field(min_length=2, max_length=16)
    assign_by: list[KeyKind] = Field(
        default_factory=lambda: ["session", "user", "request"],  # type: ignore[arg-type]
        min_length=1,
    )
    profile: str | None = Field(None, max_length=256)


def _sync(request: Request) -> ConfigSync:
    engine_of(request)  # 503 while starting
    sync: ConfigSync = request.app.state.sync
    return sync


def _config_view(engine: Engine) -> dict[str, Any]:
    snap = engine.snapshot
    return {
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
async def get_config(request: Request) -> dict[str, Any]:
    return _config_view(engine_of(request))


@router.put("/config")
async def put_config(body: ConfigUpdate, request: Request) -> dict[str, Any]:
    sync = _sync(request)
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
    config = await engine.state.update_config(strategy=body.strategy, default_profile=profile)
    await sync.accept(config)
    return _config_view(engine)


@router.get("/experiments")
async def list_experiments(request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    return {"experiments": [e.model_dump() for e in engine.snapshot.config.experiments]}


@router.post("/experiments", status_code=201)
async def create_experiment(body: ExperimentCreate, request: Request) -> dict[str, Any]:
    sync = _sync(request)
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
    missing = sorted(
        {v.strategy for v in spec.variants if v.strategy and v.strategy not in engine.snapshot.estimators}
    )
    warnings = [f"strategy {m!r} is not loaded here: its variant routes with centroid" for m in missing]
    return {"experiment": spec.model_dump(), "warnings": warnings}


@router.get("/experiments/{name}")
async def experiment_readout(name: ExperimentName, request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    spec = engine.snapshot.config.experiment(name) or (await engine.state.load_config()).experiment(name)
    if spec is None:
        raise NotFound(f"no experiment {name!r}", field="name")
    return readout(spec, await engine.state.experiment_counts(name))


@router.post("/experiments/{name}/stop")
async def stop_experiment(name: ExperimentName, request: Request) -> dict[str, Any]:
    sync = _sync(request)
    spec = await sync.engine.state.stop_experiment(name)
    if spec is None:
        raise NotFound(f"no experiment {name!r}", field="name")
    await sync.accept(await sync.engine.state.load_config())
    return {"experiment": spec.model_dump()}


@router.delete("/experiments/{name}")
async def delete_experiment(name: ExperimentName, request: Request) -> dict[str, Any]:
    """Prune a stopped experiment: its definition and counters go, every worker stops loading it."""
    sync = _sync(request)
    deleted = await sync.engine.state.delete_experiment(name)
    if deleted is None:
        raise NotFound(f"no experiment {name!r}", field="name")
    if not deleted:
        raise InvalidRequest(f"experiment {name!r} is running: stop it first", field="name")
    await sync.accept(await sync.engine.state.load_config())
    return {"deleted": name}


@router.post("/reload")
async def reload(request: Request) -> dict[str, Any]:
    sync = _sync(request)
    try:
        parts, config = await sync.reload_everywhere()
    except ArtifactError as exc:
        raise InvalidRequest(f"reload failed, nothing changed: {exc.message}", field="reload") from exc
    return {
        "reloaded": parts,
        "version": config.version,
        "catalog_models": len(sync.engine.snapshot.catalog.entries),
    }


@router.get("/breakers")
async def breakers(request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    info = await engine.state.breakers()
    return {"breakers": {k: v.as_dict() for k, v in sorted(info.items())}}


@router.post("/breakers/{deployment_id}/reset")
async def reset_breaker(
    deployment_id: Annotated[str, Path(max_length=256)], request: Request
) -> dict[str, Any]:
    engine = engine_of(request)
    return {"deployment_id": deployment_id, "reset": await engine.state.reset_breaker(deployment_id)}


@router.get("/decisions")
async def recent_decisions(
    request: Request,
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
    engine = engine_of(request)
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
