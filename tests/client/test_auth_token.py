"""The client sends its bearer token (from config) to a real HTTP server, and never prints it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from routeiq_client import ClientConfig, RouteIQClient

seen_headers: list[str | None] = []


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        seen_headers.append(self.headers.get("Authorization"))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"deployment_id": "d0"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(("token", "expected"), [("s3cret-token", "Bearer s3cret-token"), ("", None)])
def test_token_is_sent_as_bearer(server: str, token: str, expected: str | None) -> None:
    seen_headers.clear()
    client = RouteIQClient(ClientConfig(url=server, deadline_ms=2000, token=token))

    async def go() -> dict[str, object]:
        return await client.route({"prompt": "hi"})

    assert asyncio.run(go())["deployment_id"] == "d0"
    assert seen_headers == [expected]


def test_token_never_printed() -> None:
    config = ClientConfig.from_env({"ROUTEIQ_CLIENT_TOKEN": "s3cret-token"})
    assert config.token == "s3cret-token"
    assert "s3cret" not in repr(config) and "***" in repr(config)
