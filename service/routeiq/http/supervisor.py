"""`routeiq serve --workers N`: uvicorn's worker supervisor with an exit code and clean metrics.

uvicorn's `Multiprocess` restarts a worker that dies, stops when one fails to start, and in both
cases returns normally — so `uvicorn.run` exits 0 after "Child process failed to start", and a
worker that dies during start-up for any other reason (an exception before the lifespan, e.g. an
unwritable PROMETHEUS_MULTIPROC_DIR) is restarted for ever. `Supervisor` adds:

- a result: `failed` is set when a worker failed to start, or when workers died before ever
  serving `MAX_EARLY_DEATHS` times in a row (a crash loop), and the parent then stops;
- clean-up of a dead worker's multiprocess metric files (`mark_process_dead`), so its live
  gauges (decisions in flight, degraded) stop counting once it is gone, SIGKILL included;
- the one-worker drain in every worker (`WorkerProcess`): on the SIGTERM the supervisor passes
  on, each worker's readiness goes false, its responses say `Connection: close`, it keeps
  serving for ROUTEIQ_DRAIN_DELAY_SECONDS and then runs uvicorn's graceful shutdown, and exits 0.
  The supervisor reads its signals every 0.5 s, so the drain starts up to that much later than
  with one worker.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from socket import socket

from uvicorn import Server
from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from routeiq.http.drain import DrainingServer, exit_cleanly

log = logging.getLogger("routeiq")

MAX_EARLY_DEATHS = 3  # deaths in a row of workers that never served before the parent gives up
_EARLY_SECONDS = 30.0  # a worker that dies sooner than this after its start "never served"


class WorkerProcess(Process):
    """A worker that drains like `routeiq serve` with one worker (`drain.DrainingServer`).
    Pickled into the spawned child: everything it holds is plain data."""

    def __init__(self, config: Config, sockets: list[socket], drain_delay: float) -> None:
        super().__init__(config, sockets)
        self.drain_delay = drain_delay

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = DrainingServer(self.config, None, self.drain_delay)
        return self._server

    def target(self, sockets: list[socket] | None = None) -> None:  # pragma: no cover (child)
        # uvicorn re-raises SIGTERM once its shutdown is done; exit 0 then, as one worker does.
        signal.signal(signal.SIGTERM, exit_cleanly)
        super().target(sockets)


class Supervisor(Multiprocess):
    failed = False
    _early_deaths = 0
    _started_at: dict[int, float]

    def __init__(self, config: Config, sockets: list[socket], drain_delay: float = 0.0) -> None:
        super().__init__(config, sockets)
        self.drain_delay = drain_delay

    def _spawn(self) -> Process:
        process = WorkerProcess(self.config, self.sockets, self.drain_delay)
        process.start()
        self._note_start(process)
        return process

    def init_processes(self) -> None:
        self._started_at = {}
        self.processes = [self._spawn() for _ in range(self.processes_num)]

    def join_all(self) -> None:
        """Wait for the draining workers; a second SIGTERM (or a SIGINT) meanwhile is passed on,
        and each worker then skips the rest of its drain delay, as one worker does."""
        while any(p.process.is_alive() for p in self.processes):
            for process in self.processes:
                process.process.join(0.1)
            hurry = [sig for sig in self.signal_queue if sig in (signal.SIGTERM, signal.SIGINT)]
            if hurry:
                self.signal_queue.clear()
                log.info("second signal: workers stop without the rest of the drain delay")
                for process in self.processes:
                    if process.process.is_alive() and process.pid is not None:
                        os.kill(process.pid, signal.SIGTERM)

    def handle_ttin(self) -> None:
        log.info("Received SIGTTIN, increasing the number of processes.")
        self.processes_num += 1
        self.processes.append(self._spawn())

    def restart_all(self) -> None:
        """SIGHUP: replace each worker, its replacement serving before the old one drains."""
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._spawn()
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    log.error("worker %s not ready in time; keeping %s, restart stopped", new.pid, old.pid)
                return
            old.terminate()
            old.join()
            _forget_worker(old.pid)
            self.processes[index] = new

    def _note_start(self, process: Process) -> None:
        if process.pid is not None:
            self._started_at[process.pid] = time.monotonic()

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung or dead: make sure it is gone
            process.join()
            pid = process.pid
            _forget_worker(pid)
            lived = time.monotonic() - self._started_at.pop(pid or -1, 0.0)
            if process.exitcode == STARTUP_FAILURE:
                log.error("worker %s failed to start (exit %s); stopping", pid, process.exitcode)
                self._fail()
                return
            self._early_deaths = self._early_deaths + 1 if lived < _EARLY_SECONDS else 0
            if self._early_deaths >= MAX_EARLY_DEATHS:
                log.error(
                    "workers died %d times in a row within %.0f s of starting (last: %s, exit %s); stopping",
                    self._early_deaths,
                    _EARLY_SECONDS,
                    pid,
                    process.exitcode,
                )
                self._fail()
                return
            log.warning("worker %s died (exit %s); starting a new one", pid, process.exitcode)
            self.processes[index] = self._spawn()

    def _fail(self) -> None:
        self.failed = True
        self.should_exit.set()


def _forget_worker(pid: int | None) -> None:
    if pid is None or not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
    except OSError as exc:  # a metrics folder that vanished must not stop the supervisor
        log.warning("could not remove metric files of worker %s: %s", pid, exc)
