"""HTTP handlers: thin. Parse, admit, call the pipeline, render. Errors render in `http.errors`."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from routeiq.decision.schemas import (
    BatchItemError,
    BatchResponse,
    FeedbackRequest,
    RouteRequest,
    RouteResponse,
)
from routeiq.engine import Engine
from routeiq.errors import (
    InvalidRequest,
    NotReady,
    Overloaded,
    PayloadTooLarge,
    RouteIQError,
)
from routeiq.http import request_limits as limits
from routeiq.observability.logs import decision_summary
from routeiq.pipeline import Context, decide
from routeiq.state.records import OutcomeRecord

log = logging.getLogger("routeiq.http")
router = APIRouter()

ProfileHeader = Annotated[str | None, Header(alias="X-RouteIQ-Profile", max_length=256)]
SessionHeader = Annotated[str | None, Header(alias="X-RouteIQ-Session", max_length=256)]


def engine_of(request: Request) -> Engine:
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None or not engine.ready:
        raise NotReady("the service is starting or stopping")
    return engine


def _context(request: Request, profile: str | None, session: str | None) -> Context:
    return Context(request_id=request.state.request_id, profile_header=profile, session_header=session)


@router.post("/route", response_model=RouteResponse, response_model_exclude_none=True)
async def route(
    body: RouteRequest,
    request: Request,
    x_routeiq_profile: ProfileHeader = None,
    x_routeiq_session: SessionHeader = None,
) -> Response:
    engine = engine_of(request)
    limits.enforce(body, engine.settings)
    ctx = _context(request, x_routeiq_profile, x_routeiq_session)
    if not engine.admission.decisions.try_acquire():
        engine.metrics.rejected.labels("overloaded").inc()
        raise Overloaded("too many decisions in flight; retry shortly", retry_after=1)
    engine.metrics.inflight.inc()
    try:
        decision = await decide(engine, body, ctx)
        request.state.decision = decision_summary(decision, body, include_prompt=engine.settings.log_prompts)
        # Serialise once with pydantic-core; returning the model would make FastAPI validate
        # and encode it a second time (~0.1 ms per decision).
        return Response(decision.model_dump_json(exclude_none=True), media_type="application/json")
    finally:
        engine.admission.decisions.release()
        engine.metrics.inflight.dec()


@router.post("/route/batch", response_model=BatchResponse, response_model_exclude_none=True)
async def route_batch(
    body: list[RouteRequest],
    request: Request,
    x_routeiq_profile: ProfileHeader = None,
    x_routeiq_session: SessionHeader = None,
) -> BatchResponse:
    engine = engine_of(request)
    if not body:
        raise InvalidRequest("the batch is empty", field="body")
    limit = engine.settings.max_batch_size
    if len(body) > limit:
        raise PayloadTooLarge(
            f"batch of {len(body)} exceeds {limit} (ROUTEIQ_MAX_BATCH_SIZE)", field="body", limit=limit
        )
    for index, item in enumerate(body):
        limits.enforce(item, engine.settings, prefix=f"{index}.")
    if not engine.admission.decisions.try_acquire():
        engine.metrics.rejected.labels("overloaded").inc()
        raise Overloaded("too many decisions in flight; retry shortly", retry_after=1)
    results: list[RouteResponse | BatchItemError] = []
    try:
        for index, item in enumerate(body):
            ctx = _context(request, x_routeiq_profile, x_routeiq_session)
            ctx.request_id = f"{ctx.request_id}.{index}"
            try:
                results.append(await decide(engine, item, ctx))
            except RouteIQError as exc:
                if exc.status >= 500:
                    raise
                results.append(BatchItemError(error=exc.to_body()["error"] | {"index": index}))
    finally:
        engine.admission.decisions.release()
    decided = [r for r in results if isinstance(r, RouteResponse)]
    request.state.decision = {
        "batch": len(body),
        "decided": len(decided),
        "models": sorted({r.model for r in decided}),
    }
    return BatchResponse(results=results)


@router.post("/feedback")
async def feedback(body: FeedbackRequest, request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    outcomes = [
        OutcomeRecord(
            o.deployment_id, o.success, o.latency_ms, o.error_class, o.quality, o.experiment, o.variant
        )
        for o in body.outcomes
    ]
    await engine.state.record_outcomes(outcomes)
    for outcome in outcomes:
        engine.metrics.feedback.labels("success" if outcome.success else "failure").inc()
    return {"accepted": len(outcomes)}


@router.get("/v1/deployments/stats")
async def deployment_stats(request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    stats = await engine.state.deployment_stats()
    return {"deployments": {k: v.summary() for k, v in sorted(stats.items())}}


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    engine: Engine | None = getattr(request.app.state, "engine", None)
    draining = getattr(request.app.state, "draining", False)  # SIGTERM received (server.py)
    if engine is None or not engine.ready or draining:
        return JSONResponse({"status": "draining" if draining else "not_ready"}, status_code=503)
    healthy = await engine.state.healthy()
    return JSONResponse(
        {
            "status": "ready" if healthy else "degraded",
            "state": engine.state.backend,
            "embedder": engine.embedder.name,
            "strategy": engine.snapshot.estimator().name,
        }
    )


def scrape_registry(request: Request) -> CollectorRegistry:
    """What /metrics exports (and the dashboard reads)."""
    engine: Engine | None = getattr(request.app.state, "engine", None)
    registry: CollectorRegistry = (
        request.app.state.metrics.registry if engine is None else engine.metrics.registry
    )
    if request.app.state.settings.prometheus_multiproc_dir is not None:
        # Several workers: totals come from every worker's files, not this process's registry.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(scrape_registry(request)), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/catalog")
async def catalog(request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    return {"models": [e.model_dump() for e in engine.snapshot.catalog.entries]}


@router.get("/v1/profiles")
async def profiles(request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    p = engine.snapshot.profiles
    return {
        "default": p.default,
        "profiles": {name: prof.model_dump() for name, prof in p.profiles.items()},
        "teams": p.teams,
        "keys": p.keys,
    }
