"""create_app + lifespan. Nothing is loaded at import time: the engine is built in the lifespan."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CollectorRegistry, multiprocess
from starlette.middleware import Middleware

from routeiq import __version__
from routeiq.config_sync import ConfigSync
from routeiq.engine import Engine, close_within
from routeiq.http import connections
from routeiq.http.admin import router as admin_router
from routeiq.http.auth import AuthMiddleware, TokenSet, startup_warnings
from routeiq.http.connections import ConnectionGuard, EdgeShed
from routeiq.http.docs import install_docs
from routeiq.http.errors import install_error_handlers
from routeiq.http.handlers import router
from routeiq.http.http_metrics import HttpMetricsMiddleware
from routeiq.http.middleware import (
    BodyLimitMiddleware,
    ErrorBoundaryMiddleware,
    RequestIdMiddleware,
    ShedMiddleware,
)
from routeiq.http.token_source import TokenSource
from routeiq.http.ui import install_ui
from routeiq.observability.metrics import Metrics, start_metrics_listener
from routeiq.observability.tracing import Tracing
from routeiq.settings import Settings
from routeiq.state.build import build_state, redis_client
from routeiq.tenants import Tenants, load_tenants_file

log = logging.getLogger("routeiq")


def _freeze_startup_heap() -> None:
    """Everything loaded by start-up (modules, tokenizer, catalog, snapshots) lives as long as the
    process; moved out of the collector's reach, a full collection scans only what requests made
    since. Without this a gen-2 pass took ~70 ms on the event loop (measured on a 2-core VM), i.e.
    one decision in a few hundred over the 25 ms p99 alert line."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, registry: CollectorRegistry | None = None) -> FastAPI:
    settings = settings or Settings()
    metrics = Metrics.create(registry, process=settings.prometheus_multiproc_dir is None)
    tokens = TokenSet.from_settings(settings)  # a bad token file stops start-up here
    specs = load_tenants_file(settings.tenants_file)  # and so does a bad tenants file
    source = TokenSource(settings, tokens)
    # This process's connection limits (one app per serving process; each worker makes its own).
    guard = connections.install(ConnectionGuard.from_settings(settings, metrics.connections_closed))
    tracing = Tracing() if settings.tracing_enabled else None  # a missing extra stops it here

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for warning in startup_warnings(settings, tokens):
            log.warning(warning)
        client = redis_client(settings)  # one pool for every tenant's state
        engine = Engine.load(settings, metrics, build_state(settings, metrics, client=client))
        engine.warm_up()
        if settings.premium_share_target is not None:
            metrics.premium_target.set(settings.premium_share_target)
        metrics_listener = start_metrics_listener(settings, metrics)
        sync = ConfigSync(engine)
        await sync.start()
        tenants = Tenants(
            engine, sync, specs, lambda name: build_state(settings, metrics, tenant=name, client=client)
        )
        await start_tenants(tenants, source, settings)
        app.state.sync = sync
        app.state.tenants = tenants
        app.state.engine = engine
        # An edge refusal carries no CORS headers: with CORS on, the middleware sheds.
        guard.edge_shed = None if settings.cors_allow_origins else edge_shed(source, engine)
        _freeze_startup_heap()
        log.info(
            "routeiq ready: embedder=%s strategy=%s state=%s auth=%s",
            engine.embedder.name,
            engine.snapshot.estimator().name,
            engine.state.backend,
            f"on ({', '.join(sorted(tokens.digests))})" if tokens.enabled else "off",
        )
        try:
            yield
        finally:
            guard.edge_shed = None
            await close_within("the tenants' tasks", tenants.stop())
            if metrics_listener is not None:
                metrics_listener.shutdown()
            if tracing is not None:
                tracing.shutdown()
            await close_within("the config sync", sync.stop())
            await engine.close()  # each of its steps bounded
            if settings.prometheus_multiproc_dir is not None:
                # This worker's live gauges (in flight, degraded) stop counting once it is gone.
                multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    app = FastAPI(
        title="RouteIQ",
        version=__version__,
        summary="Routing decisions for LLM gateways: which model and deployment should serve this prompt.",
        lifespan=lifespan,
        docs_url=None,  # install_docs serves them with local assets
        redoc_url=None,
        middleware=middleware_stack(settings, source, metrics, tracing),
    )
    app.state.tokens = source
    app.state.metrics = metrics
    app.state.settings = settings
    app.include_router(router)
    app.include_router(admin_router)
    install_docs(app)
    install_ui(app)
    install_error_handlers(app)
    return app


async def start_tenants(tenants: Tenants, source: TokenSource, settings: Settings) -> None:
    """Build the tenants of the client names in force, then follow the tokens file (a new name's
    tenant is built when its token arrives) and the tenants file."""
    await tenants.start(sorted(source.current().digests))
    source.on_change.append(lambda tokens: tenants.follow(sorted(tokens.digests)))
    if settings.tenants_file is not None:
        tenants.watch(settings.tenants_file)


def edge_shed(source: TokenSource, engine: Engine) -> EdgeShed:
    """Refusals the connection layer may answer itself (`connections.EdgeShed`): admission's
    verdict while authentication is off. With tokens in force the caller's tenant decides
    (`ShedMiddleware`, behind auth), so the edge passes every request on."""
    metrics = engine.metrics

    def verdict(seconds_left: float | None) -> str | None:
        return None if source.current().enabled else engine.admission.shedding(seconds_left)

    def refused(reason: str, path: str) -> None:
        metrics.rejected.labels(reason).inc()
        count, _ = metrics.http("POST", path, 503)  # path is one of the two decision routes
        count.inc()

    return EdgeShed(verdict, refused)


def middleware_stack(
    settings: Settings, tokens: TokenSource, metrics: Metrics, tracing: Tracing | None = None
) -> list[Middleware]:
    """In execution order: the first sees each request first and its response last."""
    stack = [
        Middleware(RequestIdMiddleware),  # every response, however made, carries the id
        Middleware(HttpMetricsMiddleware, metrics=metrics),  # counts what other layers answer too
    ]
    if tracing is not None:
        # Not installed at all when off: tracing then costs a request nothing.
        from routeiq.http.tracing import TracingMiddleware

        stack.append(Middleware(TracingMiddleware, tracing=tracing))
    if settings.cors_allow_origins:
        # Outside auth and every error source, so browsers can read 401s and shed 503s too.
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_allow_origins,
                allow_methods=["GET", "POST"],
                allow_headers=[
                    "Authorization",
                    "Content-Type",
                    "X-Request-ID",
                    "X-RouteIQ-Profile",
                    "X-RouteIQ-Session",
                ],
                expose_headers=["X-Request-ID", "Retry-After"],
            )
        )
    return [
        *stack,
        # Auth before the body limit: an unauthenticated caller is refused before its body is read.
        Middleware(AuthMiddleware, tokens=tokens, metrics=metrics),
        # Shedding next (it needs the tenant auth names): under overload a refusal costs no body
        # read, parsing or validation.
        Middleware(ShedMiddleware),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        Middleware(ErrorBoundaryMiddleware),  # innermost: a bug's 500 still passes through the rest
    ]
