"""A real `routeiq serve` subprocess on 127.0.0.1 for tests that need the whole process:
signals, start-up failures, worker crashes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "routeiq.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]


def serve_env(**settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTEIQ_")}
    env.update({f"ROUTEIQ_{k.upper()}": str(v) for k, v in settings.items()})
    return env


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)


@contextmanager
def running_server(tmp: Path, ready_timeout: float = 60.0, **settings: object) -> Iterator[Server]:
    port = free_port()
    stderr_path = tmp / f"serve-{port}.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            serve_command(port), env=serve_env(**settings), stdout=subprocess.DEVNULL, stderr=stderr
        )
    server = Server(process, f"http://127.0.0.1:{port}", stderr_path)
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"routeiq serve exited {process.returncode}:\n{server.stderr()}")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"routeiq serve not ready in {ready_timeout}s:\n{server.stderr()}")
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
