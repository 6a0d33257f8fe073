"""HTTP handlers: thin. Parse, admit, call the pipeline, render. Errors render in `http.errors`."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from routeiq.decision.experiments import ExperimentSpec, phase_of
from routeiq.decision.schemas import (
    BatchBody,
    BatchItemError,
    BatchResponse,
    FeedbackRequest,
    RouteRequest,
    RouteResponse,
)
from routeiq.engine import Engine
from routeiq.errors import (
    BadRequest,
    InvalidRequest,
    NotReady,
    PayloadTooLarge,
    RouteIQError,
)
from routeiq.http import deadline
from routeiq.http import request_limits as limits
from routeiq.observability.logs import decision_summary
from routeiq.pipeline import Context, decide, refuse
from routeiq.state.records import OutcomeRecord
from routeiq.tenants import Tenant, Tenants

log = logging.getLogger("routeiq.http")
router = APIRouter()

ProfileHeader = Annotated[str | None, Header(alias="X-RouteIQ-Profile", max_length=256)]
SessionHeader = Annotated[str | None, Header(alias="X-RouteIQ-Session", max_length=256)]
DeadlineHeader = Annotated[str | None, Header(alias=deadline.HEADER, max_length=32)]


def engine_of(request: Request) -> Engine:
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None or not engine.ready:
        raise NotReady("the service is starting or stopping")
    return engine


async def tenant_of(request: Request) -> Tenant:
    """The caller's tenant: the authenticated client, or the default tenant with auth off."""
    engine_of(request)  # 503 while starting or stopping
    tenants: Tenants = request.app.state.tenants
    client: str | None = getattr(request.state, "client", None)
    return tenants.default if client is None else await tenants.get(client)


async def admit(tenant: Tenant, decisions: int = 1) -> None:
    """The tenant's quota, then its share of the decisions in flight; release with `release`."""
    await tenant.admit_decisions(decisions)
    engine = tenant.engine
    verdict = engine.capacity.decisions.admit(engine.admission.decisions, tenant.name)
    if verdict != "ok":
        refuse(engine, verdict, "too many decisions in flight", "overloaded")


def release(tenant: Tenant) -> None:
    engine = tenant.engine
    engine.capacity.decisions.release(engine.admission.decisions, tenant.name)


def _context(request: Request, profile: str | None, session: str | None, deadline_ms: str | None) -> Context:
    ctx = Context(request_id=request.state.request_id, profile_header=profile, session_header=session)
    if deadline_ms is not None:
        ctx.deadline = getattr(request.state, "arrived", None) or time.perf_counter()
        ctx.deadline += planned_seconds(deadline_ms)
    return ctx


def planned_seconds(value: str) -> float:
    """The time this decision may take for a caller who waits `value` ms (see http/deadline.py)."""
    seconds = deadline.seconds_of(value)
    if seconds is None:
        raise BadRequest(
            f"{deadline.HEADER} must be a number of milliseconds in (0, {deadline.MAX_MS:g}], "
            f"got {value[:32]!r}",
            field=deadline.HEADER,
        )
    return seconds


@router.post("/route", response_model=RouteResponse, response_model_exclude_none=True)
async def route(
    body: RouteRequest,
    request: Request,
    x_routeiq_profile: ProfileHeader = None,
    x_routeiq_session: SessionHeader = None,
    x_routeiq_deadline_ms: DeadlineHeader = None,
) -> Response:
    tenant = await tenant_of(request)
    engine = tenant.engine
    limits.enforce(body, engine.settings)
    ctx = _context(request, x_routeiq_profile, x_routeiq_session, x_routeiq_deadline_ms)
    await admit(tenant)
    engine.metrics.inflight.inc()
    try:
        decision = await decide(engine, body, ctx)
        request.state.decision = decision_summary(decision, body, include_prompt=engine.settings.log_prompts)
        # Serialise once with pydantic-core; returning the model would make FastAPI validate
        # and encode it a second time (~0.1 ms per decision).
        return Response(decision.model_dump_json(exclude_none=True), media_type="application/json")
    finally:
        release(tenant)
        engine.metrics.inflight.dec()


@router.post("/route/batch", response_model=BatchResponse, response_model_exclude_none=True)
async def route_batch(
    body: BatchBody,
    request: Request,
    x_routeiq_profile: ProfileHeader = None,
    x_routeiq_session: SessionHeader = None,
    x_routeiq_deadline_ms: DeadlineHeader = None,
) -> BatchResponse:
    tenant = await tenant_of(request)
    engine = tenant.engine
    if not body:
        raise InvalidRequest("the batch is empty", field="body")
    limit = engine.settings.max_batch_size
    if len(body) > limit:
        raise PayloadTooLarge(
            f"batch of {len(body)} exceeds {limit} (ROUTEIQ_MAX_BATCH_SIZE)", field="body", limit=limit
        )
    for index, item in enumerate(body):
        limits.enforce(item, engine.settings, prefix=f"{index}.")
    await admit(tenant, len(body))
    results: list[RouteResponse | BatchItemError] = []
    try:
        for index, item in enumerate(body):
            ctx = _context(request, x_routeiq_profile, x_routeiq_session, x_routeiq_deadline_ms)
            ctx.request_id = f"{ctx.request_id}.{index}"
            try:
                results.append(await decide(engine, item, ctx))
            except RouteIQError as exc:
                if exc.status >= 500:
                    raise
                results.append(BatchItemError(error=exc.to_body()["error"] | {"index": index}))
    finally:
        release(tenant)
    decided = [r for r in results if isinstance(r, RouteResponse)]
    request.state.decision = {
        "batch": len(body),
        "decided": len(decided),
        "models": sorted({r.model for r in decided}),
    }
    return BatchResponse(results=results)


# Outcomes handled between two turns of the event loop: a 1000-outcome batch is applied in
# slices, so other requests (other tenants' decisions among them) are served in between
# instead of waiting for the whole batch (bench/RESULTS.md, "Feedback flood").
FEEDBACK_SLICE = 100


@router.post("/feedback")
async def feedback(body: FeedbackRequest, request: Request) -> dict[str, Any]:
    tenant = await tenant_of(request)
    # The whole batch or none of it: checked before anything of it is applied.
    await tenant.admit_feedback(len(body.outcomes))
    engine = tenant.engine
    snap = engine.snapshot
    accepted = successes = ignored = 0
    known: dict[str, bool] = {}  # per deployment id, once per batch
    for start in range(0, len(body.outcomes), FEEDBACK_SLICE):
        if start:
            await asyncio.sleep(0)
        outcomes: list[OutcomeRecord] = []
        for o in body.outcomes[start : start + FEEDBACK_SLICE]:
            # Only deployments in the catalog or offered here lately (plus a few new ones a
            # minute, see RecentIds.admit): state keeps what it is given and every decision
            # reads the breaker view, so a flood of ids nobody routed to stops here.
            usable = known.get(o.deployment_id)
            if usable is None:
                in_catalog = snap.catalog.lookup(o.deployment_id) is not None
                usable = known[o.deployment_id] = in_catalog or engine.decided_ids.admit(o.deployment_id)
            if not usable:
                ignored += 1
                continue
            experiment, variant, phase = o.experiment, o.variant, None
            spec = snap.config.experiment(experiment) if experiment is not None else None
            if experiment is not None and not _known_variant(spec, variant):
                experiment = variant = None  # the deployment's outcome still counts
            elif spec is not None:
                # The phase it was decided in, when echoed; else the one it arrives in. A phase
                # the experiment has not reached is not believed.
                current = phase_of(spec)
                echoed = o.experiment_phase
                phase = echoed if echoed is not None and echoed <= current else current
            record = OutcomeRecord(
                o.deployment_id, o.success, o.latency_ms, o.error_class, o.quality, experiment, variant, phase
            )
            outcomes.append(record)
            successes += o.success
            if o.request_id is not None and engine.training_rows is not None:
                engine.training_rows.join(
                    o.request_id,
                    o.deployment_id,
                    success=o.success,
                    quality=o.quality,
                    latency_ms=o.latency_ms,
                    tenant=engine.tenant,
                    embedder_sha256=engine.embedder.fingerprint,
                )
        if outcomes:
            await engine.state.record_outcomes(outcomes)
            accepted += len(outcomes)
    if successes:
        engine.metrics.feedback.labels("success").inc(successes)
    if accepted - successes:
        engine.metrics.feedback.labels("failure").inc(accepted - successes)
    if not ignored:
        return {"accepted": accepted}
    engine.metrics.feedback.labels("unknown_deployment").inc(ignored)
    return {"accepted": accepted, "ignored": ignored, "ignored_reason": "unknown_deployment"}


def _known_variant(spec: ExperimentSpec | None, variant: str | None) -> bool:
    return spec is not None and any(v.name == variant for v in spec.variants)


@router.get("/v1/deployments/stats")
async def deployment_stats(request: Request) -> dict[str, Any]:
    engine = (await tenant_of(request)).engine
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
    engine = (await tenant_of(request)).engine
    return {"models": [e.model_dump() for e in engine.snapshot.catalog.entries]}


@router.get("/v1/profiles")
async def profiles(request: Request) -> dict[str, Any]:
    engine = (await tenant_of(request)).engine
    p = engine.snapshot.profiles
    return {
        "default": p.default,
        "profiles": {name: prof.model_dump() for name, prof in p.profiles.items()},
        "teams": p.teams,
        "keys": p.keys,
    }
