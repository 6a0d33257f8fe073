"""Pure ASGI middleware: request identity and access log (outermost), the body-size limit, and
the error boundary (innermost). `http.app.middleware_stack` lists them in execution order.

Request identity wraps everything, so every response — errors from other middleware, load-shed
503s and unexpected 500s included — carries `X-Request-ID`: a shed response that cannot be
traced is a shed response nobody can explain. The same layer writes one access-log line per request with the
request id, status, timings, the authenticated client name and the decision summary the handler
left in `request.state` (see logs.py); it never logs bodies.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routeiq.errors import BadRequest, PayloadTooLarge, TenantOverQuota
from routeiq.http import deadline
from routeiq.http.connections import refusal
from routeiq.http.errors import internal_error, send_error

_VALID_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
# Probes and scrapers are logged at debug level: every 10 s from every kubelet is noise.
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

access_log = logging.getLogger("routeiq.access")


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        incoming = header_of(scope, b"x-request-id")
        request_id = incoming if incoming and _VALID_ID.match(incoming) else new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["arrived"] = start  # a caller's deadline counts from here (pipeline.Context)
        encoded = request_id.encode("ascii")
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", encoded))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Backstop for a bug in middleware itself (ErrorBoundaryMiddleware catches the app's):
            # Starlette's ServerErrorMiddleware sits outside every user middleware, so a 500 it
            # rendered would carry no request id.
            if status == 0:
                await _internal_error(scope, send_with_id)
            else:
                status = 500  # the response had started: the client sees a cut connection
        finally:
            _log_access(scope, state, status, start)


class ErrorBoundaryMiddleware:
    """Innermost: an unexpected exception becomes a JSON 500 *inside* the middleware stack, so it
    travels out through CORS and request identity like any other response (and is logged with
    the request id and its traceback). The body says nothing about the bug."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception:
            if started:
                raise
            await _internal_error(scope, send)


async def _internal_error(scope: Scope, send: Send) -> None:
    request_id = scope.get("state", {}).get("request_id")
    logging.getLogger("routeiq").exception("unexpected error", extra={"request_id": request_id})
    await send_error(scope, send, internal_error())


def _log_access(scope: Scope, state: dict[str, Any], status: int, start: float) -> None:
    path: str = scope.get("path", "")
    level = logging.DEBUG if path in _QUIET_PATHS and status < 500 else logging.INFO
    if not access_log.isEnabledFor(level):
        return
    fields: dict[str, Any] = {
        "request_id": state.get("request_id"),
        "method": scope.get("method"),
        "path": path[:256],
        "status": status,
        "duration_ms": round((time.perf_counter() - start) * 1000, 3),
    }
    for key in ("client", "error_type", "decision"):
        if state.get(key) is not None:
            fields[key] = state[key]
    access_log.log(level, "%s %s %s", fields["method"], fields["path"], status, extra={"fields": fields})


_SHED_PATHS = frozenset({"/route", "/route/batch"})


class ShedMiddleware:
    """503 `overloaded` for a decision request while admission would refuse it anyway, before
    its body is read or its caller authenticated: the refusal costs the same few microseconds
    whatever the request holds (see `Admission.shedding`). Likewise 429 `tenant_over_quota`
    for a `/feedback` whose tenant's outcome quota has less than one outcome left: no batch
    would be let in, so its body (up to 1000 outcomes) is neither read nor validated."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/feedback" and scope["method"] == "POST":
            client = scope.get("state", {}).get("client")  # named by auth, which runs first
            tenants = getattr(scope["app"].state, "tenants", None)
            tenant = None if client is None or tenants is None else tenants.peek(client)
            if tenant is not None:
                try:
                    await tenant.refuse_feedback_when_empty()
                except TenantOverQuota as exc:
                    await send_error(scope, send, exc)
                    return
        elif scope["type"] == "http" and scope["path"] in _SHED_PATHS and scope["method"] == "POST":
            engine = getattr(scope["app"].state, "engine", None)
            if engine is not None and not _shared(engine, scope):
                stated = header_of(scope, b"x-routeiq-deadline-ms")
                reason = engine.admission.shedding(None if stated is None else deadline.seconds_of(stated))
                if reason is not None:
                    engine.metrics.rejected.labels(reason).inc()
                    await send_error(scope, send, refusal(reason))
                    return
        await self.app(scope, receive, send)


def _shared(engine: Any, scope: Scope) -> bool:
    """Other tenants are using capacity: the fair share decides for this caller (named by auth,
    which runs first) — a tenant within its share is admitted past a full gate, so shedding it
    here would hand the whole service to whoever floods it."""
    tenant = scope.get("state", {}).get("client") or engine.tenant
    capacity = engine.capacity
    return bool(capacity.decisions.others_active(tenant) or capacity.embeddings.others_active(tenant))


class BodyLimitMiddleware:
    """413 before reading a body that is declared or turns out larger than the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header_of(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_error(scope, send, BadRequest("Content-Length is not a number"))
                return
            if int(declared) > self.max_bytes:
                await _too_large(scope, send, self.max_bytes)
                return
        # Buffer the body (bounded by the limit) before the app sees it, so an oversized
        # stream gets a clean 413 instead of a half-read request inside the framework.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await _too_large(scope, send, self.max_bytes)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def header_of(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    error = PayloadTooLarge(
        f"request body exceeds {limit} bytes (ROUTEIQ_MAX_BODY_BYTES)", field="body", limit=limit
    )
    await send_error(scope, send, error)
