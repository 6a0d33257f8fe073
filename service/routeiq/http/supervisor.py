"""`routeiq serve --workers N`: uvicorn's worker supervisor with an exit code and clean metrics.

uvicorn's `Multiprocess` restarts a worker that dies, stops when one fails to start, and in both
cases returns normally — so `uvicorn.run` exits 0 after "Child process failed to start", and a
worker that dies during start-up for any other reason (an exception before the lifespan, e.g. an
unwritable PROMETHEUS_MULTIPROC_DIR) is restarted for ever. `Supervisor` adds:

- a result: `failed` is set when a worker failed to start, or when workers died before ever
  serving `MAX_EARLY_DEATHS` times in a row (a crash loop), and the parent then stops;
- clean-up of a dead worker's multiprocess metric files (`mark_process_dead`), so its live
  gauges (decisions in flight, degraded) stop counting once it is gone, SIGKILL included.
"""

from __future__ import annotations

import logging
import os
import time

from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("routeiq")

MAX_EARLY_DEATHS = 3  # deaths in a row of workers that never served before the parent gives up
_EARLY_SECONDS = 30.0  # a worker that dies sooner than this after its start "never served"


class Supervisor(Multiprocess):
    failed = False
    _early_deaths = 0
    _started_at: dict[int, float]

    def init_processes(self) -> None:
        self._started_at = {}
        super().init_processes()
        for process in self.processes:
            self._note_start(process)

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
            replacement = Process(self.config, self.sockets)
            replacement.start()
            self._note_start(replacement)
            self.processes[index] = replacement

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
