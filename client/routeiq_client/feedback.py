"""Outcome feedback: per-request success / failure / latency, sent to POST /feedback in batches
by a daemon thread, so that reporting never slows or fails a request.

The queue is bounded: when it is full (sidecar down for long) new outcomes are dropped and
counted, and a batch the sidecar does not accept is dropped, not retried: feedback is a
statistic, never worth memory or a request's latency.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any

import httpx

from .config import ClientConfig
from .metrics import ClientMetrics

log = logging.getLogger("routeiq_client")


class FeedbackReporter:
    def __init__(
        self, config: ClientConfig, metrics: ClientMetrics, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics
        self._transport = transport
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._pending = 0  # taken off the queue, not yet sent: lets flush() wait for them
        self.accepted = 0  # outcomes queued so far (not dropped)

    def report(
        self,
        deployment_id: str,
        success: bool,
        latency_ms: float | None = None,
        error_class: str | None = None,
        model: str | None = None,
    ) -> None:
        """Queue one outcome. O(1), never blocks on the network, never raises."""
        outcome: dict[str, Any] = {"deployment_id": deployment_id[:256], "success": success}
        if latency_ms is not None and 0 <= latency_ms <= 3_600_000:
            outcome["latency_ms"] = round(latency_ms, 3)
        if error_class:
            outcome["error_class"] = error_class[:128]
        if model:
            outcome["model"] = model[:256]
        with self._cond:
            if self._closed or len(self._queue) >= self.config.feedback_queue:
                dropped = True
            else:
                dropped = False
                self._queue.append(outcome)
                self.accepted += 1
                if len(self._queue) >= self.config.feedback_batch:
                    self._cond.notify()
            self._start_locked()
        if dropped:
            self.metrics.feedback("dropped")

    def _start_locked(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="routeiq-feedback", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        with httpx.Client(
            base_url=self.config.url,
            headers=self.config.auth_headers(),
            timeout=httpx.Timeout(self.config.feedback_timeout_s),
            transport=self._transport,
            trust_env=False,
        ) as http:
            while True:
                with self._cond:
                    if not self._queue and not self._closed:
                        self._cond.wait(self.config.feedback_interval_s)
                    if not self._queue and self._closed:
                        return
                    batch = [
                        self._queue.popleft()
                        for _ in range(min(len(self._queue), self.config.feedback_batch))
                    ]
                    self._pending = len(batch)
                if batch:
                    self._send(http, batch)
                with self._cond:
                    self._pending = 0
                    self._cond.notify_all()

    def _send(self, http: httpx.Client, batch: list[dict[str, Any]]) -> None:
        try:
            response = http.post("/feedback", json={"outcomes": batch})
            ok = response.status_code == 200
            problem = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            ok, problem = False, f"{type(exc).__name__}: {exc}"
        if ok:
            self.metrics.feedback("sent", len(batch))
        else:
            self.metrics.feedback("dropped", len(batch))
            log.debug("routeiq feedback batch of %d dropped: %s", len(batch), problem)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far was sent (or dropped). For tests and shutdown."""
        with self._cond:
            self._cond.notify_all()
            return self._cond.wait_for(lambda: not self._queue and not self._pending, timeout)

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
