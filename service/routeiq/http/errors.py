"""The one error renderer. Every error response the service writes — from a handler, from
request validation, from Starlette's routing (404/405), from middleware (auth, body limit) and
for an unexpected exception — is a `RouteIQError` rendered here as
`{"error": {"type", "message", "field"?, ...}}` with the status of its class (`routeiq.errors`)
and the headers its kind calls for.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope, Send

from routeiq.errors import (
    BadRequest,
    DeadlineUnmet,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    NotReady,
    Overloaded,
    PayloadTooLarge,
    RouteIQError,
    Unauthorized,
)

log = logging.getLogger("routeiq.http")

# Starlette raises these for requests no route takes, or a body the JSON parser cannot take
# (e.g. nested past its recursion limit).
_STARLETTE_ERRORS: dict[int, type[RouteIQError]] = {400: BadRequest, 404: NotFound, 405: MethodNotAllowed}


def error_headers(exc: RouteIQError) -> list[tuple[str, str]]:
    if isinstance(exc, Overloaded | NotReady | DeadlineUnmet) or exc.status == 429:
        return [("Retry-After", str(exc.extra.get("retry_after", 1)))]
    if isinstance(exc, Unauthorized):
        return [("WWW-Authenticate", 'Bearer realm="routeiq"')]
    return []


def _body(exc: RouteIQError) -> bytes:
    return orjson.dumps(exc.to_body())


def error_response(exc: RouteIQError, state: Any = None) -> Response:
    """A handler-side error response; `state` (the request's) learns the error type for the
    access log."""
    if state is not None:
        state.error_type = exc.type
    return Response(
        _body(exc), status_code=exc.status, headers=dict(error_headers(exc)), media_type="application/json"
    )


async def send_error(scope: Scope, send: Send, exc: RouteIQError) -> None:
    """The same response, written from raw ASGI middleware."""
    scope.setdefault("state", {})["error_type"] = exc.type
    body = _body(exc)
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error_headers(exc)]
    await send(
        {
            "type": "http.response.start",
            "status": exc.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def internal_error() -> RouteIQError:
    """What a caller sees of a bug: nothing about it (the log has the traceback)."""
    return RouteIQError("internal error")


def _field_of(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body",)]
    return ".".join(parts) or "body"


def validation_error(exc: RequestValidationError) -> RouteIQError:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        return BadRequest(f"malformed JSON: {first.get('msg')}", field="body")
    field = _field_of(tuple(first.get("loc", ())))
    if first.get("type") == "too_long":  # a list over its schema ceiling: "too much", like the limits
        ctx: Any = first.get("ctx") or {}
        limit = ctx.get("limit")
        return PayloadTooLarge(f"{field}: {first.get('msg')}", field=field, limit=limit)
    message = f"{field}: {first.get('msg')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem(s))"
    return InvalidRequest(message, field=field)


def install_error_handlers(app: FastAPI) -> None:
    """Map every error FastAPI and Starlette can raise inside the app onto the taxonomy. An
    unexpected exception is not handled here: `ErrorBoundaryMiddleware` renders it inside the
    middleware stack, so it still carries the request id and CORS headers."""

    def render(request: Request, exc: RouteIQError) -> Response:
        engine = getattr(request.app.state, "engine", None)
        if engine is not None:
            engine.metrics.errors.labels(exc.type).inc()
        return error_response(exc, request.state)

    async def on_routeiq_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RouteIQError)
        if exc.status >= 500 and not isinstance(exc, Overloaded | NotReady):
            log.error("internal error: %s", exc.message)
        return render(request, exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return render(request, validation_error(exc))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        kind = _STARLETTE_ERRORS.get(exc.status_code)
        error = kind(str(exc.detail)) if kind is not None else RouteIQError(str(exc.detail))
        response = error_response(error, request.state)
        response.status_code = exc.status_code  # an unmapped status keeps Starlette's code
        response.headers.update(getattr(exc, "headers", None) or {})
        return response

    app.add_exception_handler(RouteIQError, on_routeiq_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
