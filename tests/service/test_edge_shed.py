"""Refusals at the edge: under overload a decision request is answered 503 by the connection
layer from its headers alone, without the app running for it (http/connections.py, EdgeShed).

A real uvicorn server with the service's protocol runs in a thread of this process, so a test
can fill the engine's admission gates exactly and count what reaches the app."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client import CollectorRegistry

from routeiq.http import connections
from routeiq.http.app import create_app
from routeiq.http.connections import GuardedHttpToolsProtocol
from routeiq.settings import Settings
from tests._harness import free_port, wait_until

TOKEN = "edge-test-token-0123456789abcdef"


class Served:
    def __init__(self, app: Any, port: int) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.app_calls = 0  # HTTP requests that reached the ASGI app

    @property
    def engine(self) -> Any:
        return self.app.state.engine

    def fill_queue(self) -> int:
        """Make admission refuse new embeddings (as a queue full of work would)."""
        queue = self.engine.admission.embeddings
        taken = 0
        while queue.try_acquire():
            taken += 1
        return taken

    def drain_queue(self, taken: int) -> None:
        for _ in range(taken):
            self.engine.admission.embeddings.release()


@contextmanager
def serve(**overrides: object) -> Iterator[Served]:
    settings = Settings(inference_threads=1, queue_depth_per_thread=2, **overrides)  # type: ignore[arg-type]
    # Connection limits are per process (one app per serving process); this test process runs
    # a second app now and then, so each server's limits are put back when it stops.
    previous = connections.guard()
    app = create_app(settings, registry=CollectorRegistry())
    port = free_port()
    served = Served(app, port)

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            served.app_calls += 1
        await app(scope, receive, send)

    config = uvicorn.Config(
        counting, host="127.0.0.1", port=port, http=GuardedHttpToolsProtocol, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=60, what="uvicorn start")
        yield served
    finally:
        server.should_exit = True
        thread.join(30)
        connections.install(previous)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with serve() as s:
        yield s


def _route(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST /route HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n"
        + extra
        + b"\r\n"
        + body
    )


_OPEN: list[Conn] = []


@pytest.fixture(autouse=True)
def _close_connections() -> Iterator[None]:
    """Close every test connection, also after a failed assertion (no unclosed-socket warning
    surfacing in a later test)."""
    yield
    while _OPEN:
        _OPEN.pop().close()


class Conn:
    """One kept-alive client connection that reads responses one at a time."""

    def __init__(self, served: Served) -> None:
        self.sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
        self.buffer = b""
        _OPEN.append(self)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"connection closed; unread {self.buffer!r}"
        self.buffer += chunk

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, body

    def close(self) -> None:
        self.sock.close()


def test_an_overloaded_service_refuses_from_the_headers_and_the_app_never_runs(served: Served) -> None:
    taken = served.fill_queue()
    calls = served.app_calls
    try:
        conn = Conn(served)
        body = b'{"prompt": "never parsed'  # malformed: had anything parsed it, a 400
        request = _route(body)
        conn.send(request[: -len(body)])  # headers only: the answer must not wait for the body
        status, headers, payload = conn.response()
        assert status == 503 and headers["content-type"] == "application/json"
        assert json.loads(payload)["error"]["type"] == "overloaded"
        assert headers["retry-after"] == "1" and headers["x-request-id"]
        assert "connection" not in headers  # kept alive
        conn.send(body)  # the body arrives late and is dropped unread
        conn.send(_route(b"{}", b"X-Request-ID: caller-id-7\r\n"))
        status, headers, _ = conn.response()
        assert status == 503 and headers["x-request-id"] == "caller-id-7"
        assert served.app_calls == calls  # neither request reached the app
    finally:
        served.drain_queue(taken)
    # The same connection, once there is room, gets a decision from the app.
    conn.send(_route(b'{"prompt": "write a haiku about rivers"}'))
    status, _, payload = conn.response()
    assert status == 200 and json.loads(payload)["model"]
    assert served.app_calls == calls + 1
    conn.close()


def test_pipelined_refusals_come_back_in_order_and_other_paths_are_served(served: Served) -> None:
    taken = served.fill_queue()
    try:
        conn = Conn(served)
        conn.send(
            _route(b"{}", b"X-Request-ID: first\r\n")
            + b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: second\r\n\r\n"
            + _route(b"{}", b"X-Request-ID: third\r\n")
        )
        seen = []
        for _ in range(3):
            status, headers, _ = conn.response()
            seen.append((status, headers["x-request-id"]))
        assert seen == [(503, "first"), (200, "second"), (503, "third")]
        conn.close()
    finally:
        served.drain_queue(taken)


def test_edge_refusals_are_counted_and_logged(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    time.sleep(1.1)  # the log says each kind of refusal at most once a second
    taken = served.fill_queue()
    try:
        with caplog.at_level("WARNING", logger="routeiq.http"), httpx.Client(trust_env=False) as client:
            for _ in range(3):
                assert client.post(served.url + "/route", json={"prompt": "x"}).status_code == 503
    finally:
        served.drain_queue(taken)
    metrics = httpx.get(served.url + "/metrics", trust_env=False).text
    rejected = [
        line
        for line in metrics.splitlines()
        if line.startswith('routeiq_requests_rejected_total{reason="queue_full"}')
    ]
    assert rejected and float(rejected[0].split()[-1]) >= 3
    assert any(
        line.startswith("routeiq_http_requests_total{")
        and 'route="/route"' in line
        and 'status="503"' in line
        for line in metrics.splitlines()
    )
    assert "refused at the edge: queue_full" in caplog.text


def test_with_authentication_on_the_edge_passes_requests_to_auth() -> None:
    with serve(auth_tokens=f"cluster-a:{TOKEN}") as served:
        taken = served.fill_queue()
        try:
            with httpx.Client(trust_env=False) as client:
                calls = served.app_calls
                anonymous = client.post(served.url + "/route", json={"prompt": "x"})
                assert anonymous.status_code == 401  # not a 503 to a caller who may not ask
                authorised = client.post(
                    served.url + "/route", json={"prompt": "x"}, headers={"Authorization": f"Bearer {TOKEN}"}
                )
                assert authorised.status_code == 503  # the app's shedding, behind auth
                assert served.app_calls == calls + 2
        finally:
            served.drain_queue(taken)


def test_a_deadline_that_cannot_be_met_is_refused_at_the_edge(served: Served) -> None:
    queue = served.engine.admission.embeddings
    saved = queue.avg_embed_s
    queue.avg_embed_s = 0.010  # one embedding ahead: 10 ms of wait, within the 15 ms queue cap
    assert queue.try_acquire()
    calls = served.app_calls
    try:
        conn = Conn(served)
        # 10 ms wait + 10 ms embedding: past the 16 ms the service plans on of a 20 ms deadline
        conn.send(_route(b"{}", b"X-RouteIQ-Deadline-Ms: 20\r\n"))
        status, headers, payload = conn.response()
        assert status == 503 and json.loads(payload)["error"]["type"] == "deadline_exceeded"
        assert headers["retry-after"] == "1" and served.app_calls == calls
        conn.send(_route(b'{"prompt": "a roomy deadline 4e1"}', b"X-RouteIQ-Deadline-Ms: 5000\r\n"))
        status, _, _ = conn.response()
        assert status == 200 and served.app_calls == calls + 1
        conn.send(_route(b'{"prompt": "hi"}', b"X-RouteIQ-Deadline-Ms: soon\r\n"))  # the app's 400
        status, _, payload = conn.response()
        assert status == 400 and json.loads(payload)["error"]["field"] == "X-RouteIQ-Deadline-Ms"
        conn.close()
    finally:
        queue.release()
        queue.avg_embed_s = saved
