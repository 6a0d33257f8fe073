"""A tiny misbehaving HTTP server on 127.0.0.1 standing in for the routeiq service, for the
client's fault handling: slow, garbage, unknown deployments, 500s."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubSidecar:
    """An HTTP server on 127.0.0.1 that answers /route badly on purpose. `mode`:
    "slow" (a valid answer after `delay` s), "garbage" (200, not JSON), "unknown" (200, a
    deployment id nobody offered), "error" (500 with a JSON error), "ok" (the first candidate)."""

    def __init__(self, mode: str = "ok", delay: float = 0.5) -> None:
        self.mode, self.delay = mode, delay
        self.requests: list[tuple[str, dict[str, object]]] = []  # (path, body)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                stub.requests.append((self.path, body))
                status, payload = stub.answer(body) if self.path == "/route" else (200, b'{"accepted":0}')
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, body: dict[str, object]) -> tuple[int, bytes]:
        candidates = body.get("candidates") or [{"deployment_id": "none"}]
        assert isinstance(candidates, list)
        first = {"deployment_id": candidates[0]["deployment_id"], "model": "x", "fallbacks": []}
        if self.mode == "slow":
            time.sleep(self.delay)
            return 200, json.dumps(first).encode()
        if self.mode == "garbage":
            return 200, b"<html>not json"
        if self.mode == "unknown":
            return 200, json.dumps(
                {"deployment_id": "no-such-deployment", "fallbacks": ["nor-this"]}
            ).encode()
        if self.mode == "error":
            return 500, b'{"error":{"type":"internal_error","message":"boom"}}'
        return 200, json.dumps(first).encode()

    def routes(self) -> list[dict[str, object]]:
        return [body for path, body in self.requests if path == "/route"]

    def outcomes(self) -> list[dict[str, object]]:
        found: list[dict[str, object]] = []
        for path, body in self.requests:
            if path == "/feedback":
                found.extend(body["outcomes"])  # type: ignore[arg-type]
        return found

    def __enter__(self) -> StubSidecar:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
