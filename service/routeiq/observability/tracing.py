"""OpenTelemetry tracing, an optional extra (`pip install 'routeiq[otel]'`), off by default.

Off (`ROUTEIQ_TRACING_ENABLED` unset): nothing here is imported by the serving path and no
middleware is installed, so a decision pays nothing. On: one tracer provider exporting over
OTLP/HTTP, configured by the standard variables the SDK reads itself
(`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `_HEADERS`, `_TIMEOUT`,
`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`).
"""

from __future__ import annotations

from typing import Any

from routeiq.errors import ConfigError


class Tracing:
    """The tracer and the W3C trace-context propagator, or an error naming the extra."""

    def __init__(self) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import OTELResourceDetector, Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
        except ImportError as exc:
            raise ConfigError(
                "ROUTEIQ_TRACING_ENABLED needs the otel extra: pip install 'routeiq[otel]'"
            ) from exc
        from routeiq import __version__

        # The default service name, unless OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES say otherwise.
        resource = Resource.create({"service.name": "routeiq", "service.version": __version__}).merge(
            OTELResourceDetector().detect()
        )
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer: Any = self.provider.get_tracer("routeiq", __version__)
        self.propagator = TraceContextTextMapPropagator()

    def shutdown(self) -> None:
        """Flush what is buffered (bounded by the exporter's timeout) and stop."""
        self.provider.shutdown()
