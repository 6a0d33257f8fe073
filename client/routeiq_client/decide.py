"""The fail-open decision: ask the sidecar, map its answer onto one of the healthy deployments,
and on any problem fall back to local round-robin over those same deployments.

No litellm import here: deployments are plain dicts (`model_list` elements), so this is tested
without LiteLLM and reused by the adapter for both its async and its sync entry point.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .breaker import CircuitBreaker
from .errors import SidecarError, SidecarUnknownDeployment
from .http import RouteIQClient
from .metrics import CIRCUIT_OPEN, FALLBACK, SIDECAR, SINGLE, ClientMetrics
from .request import candidate, route_payload

log = logging.getLogger("routeiq_client")

Deployment = dict[str, Any]
FactsFn = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def _no_facts(deployment: Mapping[str, Any]) -> Mapping[str, Any]:
    return {}


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
        self._turns: dict[str, itertools.count[int]] = {}
        # Filled by choose(): the last sidecar answer, for logging/tests (never read on the hot path).
        self.last_answer: dict[str, Any] | None = None

    async def choose(
        self,
        model: str,
        healthy: Sequence[Deployment],
        messages: Sequence[Any] | None,
        input: Any,
        request_kwargs: Mapping[str, Any] | None,
    ) -> Deployment:
        """One element of `healthy` (which must be non-empty), never None, never raising for a
        sidecar problem."""
        start = time.perf_counter()
        if len(healthy) == 1:  # nothing to decide: do not spend the sidecar's time
            self.metrics.decision(SINGLE, time.perf_counter() - start)
            return healthy[0]
        if not self.breaker.allow():
            return self._fallback(model, healthy, start, CIRCUIT_OPEN, "", "")
        try:
            by_id, candidates = self._candidates(healthy)
            payload = route_payload(model, messages, input, request_kwargs, candidates)
            if payload is None:
                self.breaker.release_probe()  # says nothing about the sidecar's health
                return self._fallback(model, healthy, start, FALLBACK, "no_text", "request has no text")
            answer = await self.client.route(payload)
            chosen = _pick(answer, by_id)
        except SidecarError as exc:
            if exc.trips_circuit:
                self.breaker.record_failure()
            else:
                self.breaker.record_success()
            return self._fallback(model, healthy, start, FALLBACK, exc.reason, str(exc))
        except Exception as exc:  # a bug of ours must not fail the request either
            log.exception("routeiq client error; falling back")
            self.breaker.record_failure()
            return self._fallback(model, healthy, start, FALLBACK, "internal", repr(exc))
        self.breaker.record_success()
        self.last_answer = answer
        self.metrics.decision(SIDECAR, time.perf_counter() - start)
        return chosen

    def _candidates(
        self, healthy: Sequence[Deployment]
    ) -> tuple[dict[str, Deployment], list[dict[str, Any]]]:
        by_id: dict[str, Deployment] = {}
        candidates: list[dict[str, Any]] = []
        for deployment in healthy:
            item = candidate(deployment, self.facts(deployment))
            if item is not None and item["deployment_id"] not in by_id:
                by_id[item["deployment_id"]] = deployment
                candidates.append(item)
        return by_id, candidates

    def _fallback(
        self, model: str, healthy: Sequence[Deployment], start: float, source: str, reason: str, detail: str
    ) -> Deployment:
        turn = self._turns.get(model)
        if turn is None:
            turn = self._turns.setdefault(model, itertools.count())
        chosen = healthy[next(turn) % len(healthy)]
        self.metrics.decision(source, time.perf_counter() - start, reason, detail)
        return chosen


def _pick(answer: Mapping[str, Any], by_id: Mapping[str, Deployment]) -> Deployment:
    chosen = by_id.get(answer["deployment_id"])
    if chosen is not None:
        return chosen
    # The answer's own ranked fallbacks, before giving up on it.
    fallbacks = answer.get("fallbacks")
    for deployment_id in fallbacks if isinstance(fallbacks, list) else ():
        if isinstance(deployment_id, str) and deployment_id in by_id:
            return by_id[deployment_id]
    raise SidecarUnknownDeployment(f"deployment_id {answer['deployment_id']!r} is not a healthy candidate")
