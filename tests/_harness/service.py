"""`routeiq serve` as a real process on 127.0.0.1, for tests and benchmarks that need the whole
process: signals, start-up failures, several workers, replicas sharing Redis, crashes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType

import httpx

from tests._harness.env import clean_env
from tests._harness.net import REPO, free_port, wait_until


def http_ok(url: str) -> bool:
    """GET `url` answers 200 (any transport error: not yet)."""
    try:
        # trust_env=False: a developer's HTTP(S)_PROXY must not intercept loopback traffic
        return httpx.get(url, timeout=1.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


class ServeProcess:
    """One `routeiq serve`. Settings are keyword arguments (`auth_tokens=...` becomes
    `ROUTEIQ_AUTH_TOKENS`) on top of a clean environment: nothing of the developer's
    `ROUTEIQ_*` reaches it. `env` adds raw variables. Its stderr (the service log) goes to
    `log_path`, stdout to a file beside it, so a full pipe can never stall the server.

    As a context manager it is started on entry and killed on exit."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        workers: int = 1,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        file_limit: tuple[int, int] | None = None,
        **settings: object,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self._own_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="routeiq-serve-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = self.directory / f"serve-{self.port}.log"
        self._out_path = self.directory / f"serve-{self.port}.out"
        overrides = {"ROUTEIQ_LOG_LEVEL": "warning"}
        if workers > 1:  # the workers' metric files, kept with the log instead of in /tmp
            overrides["PROMETHEUS_MULTIPROC_DIR"] = str(self.directory / f"metrics-{self.port}")
        overrides |= {f"ROUTEIQ_{name.upper()}": str(value) for name, value in settings.items()}
        overrides |= dict(env or {})
        self.env = clean_env(**overrides)
        self.file_limit = file_limit  # (soft, hard) RLIMIT_NOFILE of the server process
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_seconds = 0.0

    @property
    def command(self) -> list[str]:
        where = ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        serve = ["-m", "routeiq.cli", "serve", *where]
        if self.file_limit is None:
            return [sys.executable, *serve]
        # The limit is set in the same process, which then becomes the server (exec keeps the
        # pid), so the test's own limits never change.
        soft, hard = self.file_limit
        limit = (
            "import os, resource, sys; "
            f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard})); "
            "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
        )
        return [sys.executable, "-c", limit, *serve]

    def start(self, timeout: float = 90.0) -> ServeProcess:
        """Start and wait until /readyz answers 200; fail with the log if it exits or stalls."""
        with self.log_path.open("wb") as log, self._out_path.open("wb") as out:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=log,
                start_new_session=True,  # its own process group: workers die with it
            )
        process = self.process
        try:
            self.ready_seconds = wait_until(
                lambda: http_ok(self.url + "/readyz"),
                timeout,
                f"routeiq serve on {self.url}",
                interval=0.05,
                alive=lambda: (
                    None
                    if process.poll() is None
                    else f"exited with {process.returncode}:\n{self.log()[-4000:]}"
                ),
            )
        except (TimeoutError, RuntimeError) as exc:
            tail = self.log()[-4000:] if isinstance(exc, TimeoutError) else ""
            self.kill()
            raise type(exc)(f"{exc}\n{tail}") from None
        return self

    def run(self, timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
        """Run to exit instead (a start-up that must fail), output captured."""
        return subprocess.run(
            self.command, env=self.env, cwd=REPO, capture_output=True, timeout=timeout, check=False
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait(self, timeout: float) -> int:
        """Wait for the exit (after `terminate()`); its exit code."""
        assert self.process is not None
        return self.process.wait(timeout)

    def terminate(self) -> None:
        """SIGTERM and return at once: the drain is what the caller watches."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (uvicorn stops its workers), SIGKILL to the group if it does not exit."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._cleanup()

    def kill(self) -> None:
        """SIGKILL to the whole group: a crash, not a drain."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):  # the group: no orphaned worker
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self._cleanup()

    def pause(self) -> None:
        """SIGSTOP: it accepts connections (the kernel does) but never answers."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGCONT)

    def stats(self) -> dict[str, object]:
        data: dict[str, object] = httpx.get(self.url + "/v1/deployments/stats", trust_env=False).json()
        return data

    def _cleanup(self) -> None:
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()


@contextlib.contextmanager
def replicas_of(
    make_dir: Callable[[str], Path], workers: int = 2, **settings: object
) -> Iterator[list[ServeProcess]]:
    """Two replicas (`a`, `b`) of `routeiq serve --workers N` on the same settings (a shared
    Redis among them), each in a folder `make_dir(name)` gives; both stopped on the way out."""
    services: list[ServeProcess] = []
    try:
        for name in ("a", "b"):
            services.append(ServeProcess(make_dir(name), workers=workers, **settings).start())
        yield services
    finally:
        for s in services:
            s.stop()


def no_keepalive_client() -> httpx.Client:
    """No keep-alive: each request opens a connection, so the kernel spreads them over workers."""
    return httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0), trust_env=False)
