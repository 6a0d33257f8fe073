"""W3C trace context for the sidecar call: the `traceparent` (and `tracestate`) of the current
OpenTelemetry span, so the service's span joins the gateway's trace. LiteLLM's proxy has such a
span when its OpenTelemetry callback is on. Without opentelemetry-api installed, or with no
span active, no header is added."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any


@cache
def _injector() -> Callable[[dict[str, str]], Any] | None:
    """Imported once: after that, "not installed" costs one cached call."""
    try:
        from opentelemetry.propagate import inject
    except ImportError:
        return None
    return inject


def trace_headers() -> dict[str, str] | None:
    inject = _injector()
    if inject is None:
        return None
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier or None
