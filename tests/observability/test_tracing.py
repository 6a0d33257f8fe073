"""Tracing: a real `routeiq serve` with the otel extra exports to an OTLP/HTTP receiver running in
this test. A /route carrying a W3C traceparent yields a server span in the caller's trace, with
the decision's attributes and stage timings; off by default, no span at all."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from routeiq.errors import ConfigError
from routeiq.settings import Settings
from tests._harness import ServeProcess

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1: stores every span it is sent."""

    def __init__(self) -> None:
        self.spans: list = []
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    service = {a.key: a.value.string_value for a in resource.resource.attributes}
                    for scope in resource.scope_spans:
                        received.extend((service, span) for span in scope.spans)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate, timeout: float = 15.0) -> list:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [s for s in self.spans if predicate(s[1])]
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"no matching span; got {[s[1].name for s in self.spans]}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _attrs(span) -> dict[str, object]:  # type: ignore[no-untyped-def]
    out: dict[str, object] = {}
    for a in span.attributes:
        v = a.value
        out[a.key] = (
            v.string_value
            if v.HasField("string_value")
            else v.double_value
            if v.HasField("double_value")
            else v.int_value
        )
    return out


def test_a_decision_is_a_span_in_the_callers_trace(tmp_path: Path, receiver: Receiver) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_SERVICE_NAME": "routeiq-test",
    }
    with ServeProcess(tmp_path, tracing_enabled="true", env=env) as server:
        headers = {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
        decision = httpx.post(
            f"{server.url}/route", json={"prompt": "Write a haiku"}, headers=headers, trust_env=False
        ).json()
        httpx.get(f"{server.url}/healthz", trust_env=False)
        (service, span), *_ = receiver.wait_for(lambda s: s.name == "POST /route")
    assert span.trace_id.hex() == TRACE_ID and span.parent_span_id.hex() == PARENT_ID
    assert service["service.name"] == "routeiq-test"
    attrs = _attrs(span)
    assert (
        attrs["routeiq.model"] == decision["model"]
        and attrs["routeiq.deployment_id"] == decision["deployment_id"]
    )
    assert attrs["routeiq.request_id"] == decision["request_id"] and attrs["http.response.status_code"] == 200
    assert {f"routeiq.stage.{stage}_ms" for stage in decision["timings_ms"]} <= set(attrs)
    assert not [s for _, s in receiver.spans if "healthz" in s.name]  # probes are not traced


def test_off_by_default_sends_nothing(tmp_path: Path, receiver: Receiver) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with ServeProcess(tmp_path, env=env) as server:
        assert httpx.post(f"{server.url}/route", json={"prompt": "hi"}, trust_env=False).status_code == 200
        time.sleep(1.0)
    assert receiver.spans == []


def test_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_otel(name: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if name.startswith("opentelemetry"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_otel)
    from routeiq.http.app import create_app

    with pytest.raises(ConfigError, match=r"routeiq\[otel\]"):
        create_app(Settings(tracing_enabled=True))


def test_the_clients_span_is_the_parent_of_the_services(tmp_path: Path, receiver: Receiver) -> None:
    """routeiq-client sends the current span's traceparent: one trace from gateway to sidecar."""
    import asyncio

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from routeiq_client import ClientConfig, RouteIQClient

    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with ServeProcess(tmp_path, tracing_enabled="true", env=env) as server:
        gateway = TracerProvider().get_tracer("gateway")  # stands in for LiteLLM's span
        client = RouteIQClient(ClientConfig(url=server.url, deadline_ms=5000))

        async def call() -> tuple[str, str]:
            with gateway.start_as_current_span("litellm.completion") as span:
                context = span.get_span_context()
                await client.route(
                    {"prompt": "hello", "candidates": [{"deployment_id": "a", "model": "x/a"}]}
                )
            await client.aclose()
            return format(context.trace_id, "032x"), format(context.span_id, "016x")

        trace_id, span_id = asyncio.run(call())
        (_, span), *_ = receiver.wait_for(lambda s: s.name == "POST /route")
    assert span.trace_id.hex() == trace_id and span.parent_span_id.hex() == span_id
    assert trace.get_current_span() is trace.INVALID_SPAN
