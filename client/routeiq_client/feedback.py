"""Outcome feedback: per-request success / failure / latency, sent to POST /feedback in batches
by a daemon thread, so that reporting never slows or fails a request.

The queue is bounded: when it is full (sidecar down for long) new outcomes are dropped and
counted: feedback is a statistic, never worth unbounded memory or a request's latency. A batch
the service refuses *for now* (429, e.g. the tenant's feedback quota, or 503 while it drains or
starts) is held, counted `deferred`, and sent again after its Retry-After (at most
MAX_RETRY_WAIT_S, MAX_TRIES times); held outcomes count against the queue bound, and close()
drops them instead of waiting. Any other refusal or error drops the batch.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from .config import ClientConfig
from .metrics import ClientMetrics

log = logging.getLogger("routeiq_client")

RETRY_STATUSES = frozenset({429, 503})  # "not now": the quota refills, the service comes back
MAX_RETRY_WAIT_S = 30.0
MAX_TRIES = 5
DEFAULT_RETRY_WAIT_S = 1.0  # a 429 / 503 without Retry-After
DECISION_FIELDS = ("request_id", "experiment", "variant", "experiment_phase")  # echoed from its decision


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
        self._held: list[dict[str, Any]] = []  # a batch refused for now, sent again at _resume_at
        self._resume_at = 0.0
        self._tries = 0  # refusals of the held batch so far
        self.accepted = 0  # outcomes queued so far (not dropped)

    def report(
        self,
        deployment_id: str,
        success: bool,
        latency_ms: float | None = None,
        error_class: str | None = None,
        model: str | None = None,
        decision: Mapping[str, str | int] | None = None,
    ) -> None:
        """Queue one outcome. O(1), never blocks on the network, never raises. `decision`: the
        routing decision's `request_id`, `experiment`, `variant`, `experiment_phase`, echoed so
        the outcome counts for its A/B variant (in its ramp phase) and joins its training row."""
        outcome: dict[str, Any] = {"deployment_id": deployment_id[:256], "success": success}
        for key, value in (decision or {}).items():
            if key in DECISION_FIELDS and value is not None and value != "":
                outcome[key] = value[:256] if isinstance(value, str) else value
        if latency_ms is not None and 0 <= latency_ms <= 3_600_000:
            outcome["latency_ms"] = round(latency_ms, 3)
        if error_class:
            outcome["error_class"] = error_class[:128]
        if model:
            outcome["model"] = model[:256]
        with self._cond:
            if self._closed or len(self._queue) + len(self._held) >= self.config.feedback_queue:
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
                    batch = self._next_batch_locked()
                    if batch is None:
                        return
                    self._pending = len(batch)
                if batch:
                    self._send(http, batch)
                with self._cond:
                    self._pending = 0
                    self._cond.notify_all()

    def _next_batch_locked(self) -> list[dict[str, Any]] | None:
        """The next batch to send ([] when there is none yet); None once closed and empty."""
        while self._held:
            if self._closed:  # do not wait out a Retry-After at shutdown
                self.metrics.feedback("dropped", len(self._held))
                self._held = []
                break
            wait = self._resume_at - time.monotonic()
            if wait <= 0:
                batch, self._held = self._held, []
                return batch
            self._cond.wait(wait)
        if not self._queue and not self._closed:
            self._cond.wait(self.config.feedback_interval_s)
        if not self._queue and self._closed:
            return None
        return [self._queue.popleft() for _ in range(min(len(self._queue), self.config.feedback_batch))]

    def _send(self, http: httpx.Client, batch: list[dict[str, Any]]) -> None:
        response: httpx.Response | None = None
        try:
            response = http.post("/feedback", json={"outcomes": batch})
            problem = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # the reporter thread must outlive anything raised here
            problem = f"{type(exc).__name__}: {exc}"
        if response is not None and response.status_code == 200:
            self._tries = 0
            self.metrics.feedback("sent", len(batch))
            return
        if response is not None and response.status_code in RETRY_STATUSES and self._tries < MAX_TRIES:
            with self._cond:
                if not self._closed:
                    self._tries += 1
                    self._held = batch
                    self._resume_at = time.monotonic() + _retry_after(response)
                    self.metrics.feedback("deferred", len(batch))
                    log.debug("routeiq feedback batch of %d held: %s", len(batch), problem)
                    return
        self._tries = 0
        self.metrics.feedback("dropped", len(batch))
        log.debug("routeiq feedback batch of %d dropped: %s", len(batch), problem)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far was sent (or dropped). For tests and shutdown."""
        with self._cond:
            self._cond.notify_all()
            return self._cond.wait_for(
                lambda: not self._queue and not self._pending and not self._held, timeout
            )

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)


def _retry_after(response: httpx.Response) -> float:
    """Seconds the service asked to wait (Retry-After in seconds), within (0, MAX_RETRY_WAIT_S]."""
    try:
        wait = float(response.headers.get("Retry-After", DEFAULT_RETRY_WAIT_S))
    except ValueError:  # an HTTP date, or garbage: not worth parsing for a statistic
        wait = DEFAULT_RETRY_WAIT_S
    return min(max(wait, 0.05), MAX_RETRY_WAIT_S)
