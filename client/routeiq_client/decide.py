"""The fail-open decision: ask the sidecar which models suit a request, best first.

The answer is a ranking of models, not a deployment: LiteLLM picks the deployment (see
narrow.py). On any sidecar problem the outcome is a `Fallback`, and the caller leaves LiteLLM's
own selection alone. A sidecar that *rejects* the request (unknown profile, no candidate fits)
is a `Fallback` too, marked `rejected`, so that the operator's `on_reject` policy decides.

No litellm import here: deployments are plain dicts (`model_list` elements).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .breaker import CircuitBreaker
from .errors import SidecarError, SidecarHTTPError
from .http import RouteIQClient
from .metrics import CIRCUIT_OPEN, FALLBACK, REJECTED, SIDECAR, ClientMetrics
from .narrow import ranked_models
from .request import candidate, route_payload

log = logging.getLogger("routeiq_client")

Deployment = dict[str, Any]
FactsFn = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def _no_facts(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True)
class Ranking:
    """The sidecar's answer and the models it names, best first (never empty)."""

    answer: dict[str, Any]
    models: list[str]


@dataclass(frozen=True)
class Fallback:
    """The sidecar was not used. `reason` is the metrics label (`timeout`, `rejected`, ...);
    `error_type` is the service's error type for a rejection (`unknown_profile`, ...)."""

    reason: str
    detail: str
    error_type: str | None = None

    @property
    def rejected(self) -> bool:
        return self.reason == REJECTED


class Decider:
    def __init__(
        self,
        client: RouteIQClient,
        breaker: CircuitBreaker,
        metrics: ClientMetrics,
        facts: FactsFn = _no_facts,
    ) -> None:
        self.client = client
        self.breaker = breaker
        self.metrics = metrics
        self.facts = facts

    async def rank(
        self,
        model: str,
        healthy: Sequence[Deployment],
        messages: Sequence[Any] | None,
        input: Any,
        request_kwargs: Mapping[str, Any] | None,
    ) -> Ranking | Fallback:
        """Never raises for a sidecar problem."""
        start = time.perf_counter()
        if not self.breaker.allow():
            return self._fallback(start, CIRCUIT_OPEN, "", "circuit open")
        try:
            payload = route_payload(model, messages, input, request_kwargs, self._candidates(healthy))
            if payload is None:
                self.breaker.release_probe()  # says nothing about the sidecar's health
                return self._fallback(start, FALLBACK, "no_text", "request has no text")
            answer = await self.client.route(payload)
            models = ranked_models(answer, healthy)
        except SidecarHTTPError as exc:
            if not exc.trips_circuit:
                self.breaker.record_success()
                if exc.reason == "rejected":
                    return self._fallback(start, REJECTED, "", str(exc), exc.error_type)
            else:
                self.breaker.record_failure()
            return self._fallback(start, FALLBACK, exc.reason, str(exc))
        except SidecarError as exc:
            if exc.trips_circuit:
                self.breaker.record_failure()
            else:
                self.breaker.record_success()
            return self._fallback(start, FALLBACK, exc.reason, str(exc))
        except Exception as exc:  # a bug of ours must not fail the request either
            log.exception("routeiq client error; LiteLLM selects alone")
            self.breaker.record_failure()
            return self._fallback(start, FALLBACK, "internal", repr(exc))
        self.breaker.record_success()
        if not models:
            detail = f"deployment_id {answer['deployment_id']!r} is not a healthy candidate"
            return self._fallback(start, FALLBACK, "unknown_deployment", detail)
        self.metrics.decision(SIDECAR, time.perf_counter() - start)
        return Ranking(answer, models)

    def _candidates(self, healthy: Sequence[Deployment]) -> list[dict[str, Any]]:
        seen: set[str] = set()
        candidates: list[dict[str, Any]] = []
        for deployment in healthy:
            item = candidate(deployment, self.facts(deployment))
            if item is not None and item["deployment_id"] not in seen:
                seen.add(item["deployment_id"])
                candidates.append(item)
        return candidates

    def _fallback(
        self, start: float, source: str, reason: str, detail: str, error_type: str | None = None
    ) -> Fallback:
        # Rejections are logged by the adapter (every one, with the request id); the rest here.
        self.metrics.decision(source, time.perf_counter() - start, reason, detail)
        return Fallback(reason or source, detail, error_type)
