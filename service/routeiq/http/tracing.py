"""One server span per request (probes and scrapes excepted), continuing the caller's W3C
`traceparent`. For a decision the span carries what was decided and each stage's time, read
from the decision summary the handler leaves for the access log: the pipeline itself knows
nothing about tracing. Installed only when tracing is on."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routeiq.http.http_metrics import route_template
from routeiq.observability.tracing import Tracing

_UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})
_CONTEXT_HEADERS = (b"traceparent", b"tracestate")
_DECISION_FIELDS = (
    "model",
    "deployment_id",
    "profile",
    "tier",
    "category",
    "strategy",
    "reason",
    "experiment",
    "variant",
)


class TracingMiddleware:
    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in _UNTRACED:
            await self.app(scope, receive, send)
            return
        from opentelemetry.trace import SpanKind, Status, StatusCode

        carrier = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _CONTEXT_HEADERS
        }
        parent = self.tracing.propagator.extract(carrier)
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope.get("method", "GET")
        with self.tracing.tracer.start_as_current_span(
            method, context=parent, kind=SpanKind.SERVER, record_exception=False
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                state = scope.get("state", {})
                # One call: the SDK takes its lock and checks limits once per call, not per key.
                span.set_attributes(
                    {
                        "http.request.method": method,
                        "http.route": route,
                        "http.response.status_code": status,
                        "routeiq.request_id": state.get("request_id") or "",
                        **_decision_attributes(state.get("decision")),
                    }
                )
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))


def _decision_attributes(decision: dict[str, Any] | None) -> dict[str, Any]:
    if not decision:
        return {}
    out: dict[str, Any] = {
        f"routeiq.{k}": decision[k] for k in _DECISION_FIELDS if decision.get(k) is not None
    }
    for name in ("complexity", "confidence"):
        if decision.get(name) is not None:
            out[f"routeiq.{name}"] = float(decision[name])
    for stage, ms in (decision.get("timings_ms") or {}).items():
        out[f"routeiq.stage.{stage}_ms"] = float(ms)
    return out
