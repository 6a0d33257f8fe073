"""Circuit breaker: after N consecutive sidecar failures stop calling it for T seconds, then let
exactly one probe through; the probe's result closes the circuit or opens it again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int,
        open_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[State, State], None] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self._clock = clock
        self._on_change = on_change
        # LiteLLM calls the hooks from its event loop and, for sync calls, from worker threads.
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._failures = 0
        self._open_until = 0.0
        self._probe_started: float | None = None

    @property
    def state(self) -> State:
        return self._state

    def allow(self) -> bool:
        """May this request call the sidecar? In half-open, only one caller at a time (the probe)."""
        with self._lock:
            if self._state == "closed":
                return True
            now = self._clock()
            if self._state == "open":
                if now < self._open_until:
                    return False
                self._set("half_open")
            # A probe that never reported back (cancelled request) must not wedge the breaker.
            if self._probe_started is not None and now - self._probe_started < self.open_seconds:
                return False
            self._probe_started = now
            return True

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._probe_started = None
            if self._state != "closed":
                self._set("closed")

    def release_probe(self) -> None:
        """The caller took the probe slot but did not call the sidecar after all."""
        with self._lock:
            self._probe_started = None

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._probe_started = None
            if self._state == "half_open" or (
                self._state == "closed" and self._failures >= self.failure_threshold
            ):
                self._open_until = self._clock() + self.open_seconds
                self._set("open")

    def _set(self, new: State) -> None:
        old, self._state = self._state, new
        if self._on_change is not None and old != new:
            self._on_change(old, new)
