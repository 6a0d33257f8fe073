"""The graceful drain on SIGTERM, the same for `routeiq serve` with one worker (server.py) and
for each worker of `--workers N` (supervisor.py).

Readiness goes false at once (`/readyz` -> 503 "draining") and every response from then on says
`Connection: close`, so kept-alive clients move off; the process keeps serving for
ROUTEIQ_DRAIN_DELAY_SECONDS (load balancers notice late), then uvicorn's graceful shutdown stops
accepting and lets requests already received finish. A second SIGTERM, or SIGINT, skips the delay.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from routeiq.http import connections

log = logging.getLogger("routeiq")


def mark_draining(app: FastAPI | None) -> None:
    """Readiness false, so load balancers stop sending. Requests that still reach the process
    (already received, or on a kept-alive connection) are served, not refused: none is lost.
    No app (the signal came before the worker loaded it): only the connection layer drains."""
    if app is not None and getattr(app.state, "draining", False):
        return
    if app is not None:
        app.state.draining = True
    connections.guard().draining = True  # every response from now on says `Connection: close`
    log.info("draining: readiness is false; finishing in-flight requests")


def _fastapi_app(loaded: object) -> FastAPI | None:
    """The FastAPI app under whatever ASGI wrappers uvicorn put around the factory's result."""
    for _ in range(8):
        if isinstance(loaded, FastAPI):
            return loaded
        loaded = getattr(loaded, "app", None)
    return None


class DrainingServer(uvicorn.Server):
    """uvicorn.Server that flips readiness, optionally keeps serving for `delay` seconds, then
    runs uvicorn's own graceful shutdown. `app` None: a `--workers` worker, whose app uvicorn
    builds from the factory (`config.loaded_app`)."""

    def __init__(self, config: uvicorn.Config, app: FastAPI | None, delay: float = 0.0) -> None:
        super().__init__(config)
        self._routeiq_app = app
        self._delay = delay
        self._timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        app = self._routeiq_app or _fastapi_app(getattr(self.config, "loaded_app", None))
        mark_draining(app)
        if self._delay > 0 and sig == signal.SIGTERM and self._timer is None:
            # uvicorn's loop polls `should_exit`, so setting it from a timer thread is enough
            self._timer = threading.Timer(self._delay, super().handle_exit, (sig, frame))
            self._timer.daemon = True
            self._timer.start()
            return
        super().handle_exit(sig, frame)


def exit_cleanly(sig: int, frame: FrameType | None) -> None:
    """SIGTERM handler once uvicorn has re-raised it after its shutdown (or before it started):
    a clean exit, 0, instead of the default handler's 143."""
    raise SystemExit(0)
