"""Real processes and servers on 127.0.0.1 for integration tests and the client benchmark:
the routeiq service as a subprocess, and a tiny misbehaving HTTP stub for fault injection."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, proc: subprocess.Popen[bytes] | None, timeout: float, ok: int = 200) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered:\n{out[-4000:]}")
        try:
            if httpx.get(url, timeout=1.0, trust_env=False).status_code == ok:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer {ok} within {timeout} s")


class ServiceProcess:
    """`routeiq serve` on a free loopback port; `stop()` kills it (SIGKILL: a crash, not a drain)."""

    def __init__(self, env: Mapping[str, str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, "ROUTEIQ_LOG_LEVEL": "warning", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "routeiq.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self._env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        wait_http(self.url + "/readyz", self.proc, timeout)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def stats(self) -> dict[str, object]:
        data: dict[str, object] = httpx.get(self.url + "/v1/deployments/stats", trust_env=False).json()
        return data


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
