"""The LiteLLM adapter — the only module that imports litellm.

RouteIQ *narrows* LiteLLM's choice; it never replaces it. `RouteIQRouting` is a `CustomLogger`
whose `async_filter_deployments` hook LiteLLM runs inside its own healthy-deployment filtering
(after cooldowns, team and health-check filters; before tag, order and pre-call-check filters
and before its `routing_strategy` picks one). For a model group the operator opted in, the hook
keeps only the deployments of the model RouteIQ ranked best, so LiteLLM's weights, rpm/tpm
limits, cooldowns, retries, fallbacks and pre-routing routers all keep working; every other
group is left alone. It also puts the decision into LiteLLM's routing-decision metadata (the
standard logging payload's `routing_decision`), adds `x-routeiq-*` response headers on the
proxy and reports each call's outcome to POST /feedback.

`proxy_installer` is the instance named in the proxy's `litellm_settings.callbacks`; `install`
is the SDK's one call.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import warnings
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger
from litellm.litellm_core_utils.core_helpers import get_or_create_metadata_bucket

from .breaker import CircuitBreaker
from .config import ClientConfig
from .decide import Decider, Fallback
from .errors import ConfigError
from .feedback import FeedbackReporter
from .http import RouteIQClient
from .metrics import RETRY, SINGLE, ClientMetrics
from .narrow import (
    STATE_KEY,
    CallState,
    decision_of_call,
    decision_record,
    distinct_models,
    narrow,
    response_headers,
)

log = logging.getLogger("routeiq_client")


class ClientResources:
    """What the hooks share: the connection pool, the circuit breaker, metrics, the feedback
    queue and the per-deployment facts cache. `close()` releases them."""

    def __init__(
        self,
        config: ClientConfig | None = None,
        client: RouteIQClient | None = None,
        metrics: ClientMetrics | None = None,
    ) -> None:
        self.config = config or ClientConfig.from_env()
        self.metrics = metrics or ClientMetrics()
        self.client = client or RouteIQClient(self.config)
        self.breaker = CircuitBreaker(
            self.config.failure_threshold, self.config.open_seconds, on_change=self.metrics.circuit
        )
        self.reporter = FeedbackReporter(self.config, self.metrics) if self.config.feedback else None
        self._facts: dict[tuple[str, str], dict[str, Any]] = {}
        self._facts_lock = threading.Lock()
        self.decider = Decider(self.client, self.breaker, self.metrics, self.facts)

    def facts(self, deployment: Mapping[str, Any]) -> Mapping[str, Any]:
        """Cost, context window and capabilities from LiteLLM's model info, once per deployment."""
        params = deployment.get("litellm_params") or {}
        key = (str((deployment.get("model_info") or {}).get("id")), str(params.get("model")))
        found = self._facts.get(key)
        if found is None:
            found = model_facts(deployment)
            with self._facts_lock:
                self._facts[key] = found
        return found

    def close(self) -> None:
        """Flush feedback and stop its thread. Connection pools belong to their event loops and
        are closed by `await client.aclose()` on each."""
        if self.reporter is not None:
            self.reporter.close()


class RouteIQRejected(litellm.BadRequestError):
    """`on_reject: strict`: the sidecar refused the request; the proxy's caller gets a 400."""


class RouteIQRouting(CustomLogger):
    """Narrows the opted-in groups' deployments to RouteIQ's model; reports outcomes."""

    def __init__(self, resources: ClientResources | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._resources = resources
        self._resources_lock = threading.Lock()

    @property
    def resources(self) -> ClientResources:
        if self._resources is None:
            with self._resources_lock:
                if self._resources is None:
                    self._resources = ClientResources()
        return self._resources

    # -- selection ---------------------------------------------------------------------------

    async def async_filter_deployments(
        self,
        model: str,
        healthy_deployments: list[Any],
        messages: Any,
        request_kwargs: dict[str, Any] | None = None,
        parent_otel_span: Any = None,
    ) -> list[dict[str, Any]]:
        if request_kwargs is None or model not in self.resources.config.groups or not healthy_deployments:
            return healthy_deployments
        try:
            return await self._narrow(model, healthy_deployments, messages, request_kwargs)
        except RouteIQRejected:
            raise
        except Exception:  # never fail a request because of routing glue: LiteLLM selects alone
            log.exception("routeiq: could not narrow %r; LiteLLM selects alone", model)
            return healthy_deployments

    async def _narrow(
        self, group: str, healthy: list[dict[str, Any]], messages: Any, kwargs: dict[str, Any]
    ) -> list[dict[str, Any]]:
        _, bucket = get_or_create_metadata_bucket(kwargs)
        state = CallState.of(bucket, kwargs.get("litellm_trace_id"))
        state.note_previous_attempt(bucket)
        entry = state.groups.get(group)
        metrics = self.resources.metrics
        if entry is not None:
            metrics.decision(RETRY, 0.0)
        elif distinct_models(healthy) <= 1:
            metrics.decision(SINGLE, 0.0)
            entry = state.groups[group] = {"models": [], "record": None}
        else:
            outcome = await self.resources.decider.rank(group, healthy, messages, kwargs.get("input"), kwargs)
            if isinstance(outcome, Fallback):
                entry = self._fallback_entry(group, outcome, kwargs)
            else:
                entry = {"models": outcome.models, "record": decision_record(group, outcome.answer)}
            state.groups[group] = entry
        chosen, chosen_model = narrow(healthy, entry["models"], state.failed)
        state.data["last"] = group
        record = entry["record"]
        if record is not None:
            if chosen_model is not None:
                record = {**record, "routed_model": chosen_model}
            # LiteLLM's own recorder: the standard logging payload's `routing_decision`, with
            # LiteLLM's redaction rules applied, cleared and rewritten on every attempt.
            litellm.Router._record_routing_decision(request_kwargs=kwargs, routing_decision=record)
        return chosen

    def _fallback_entry(self, group: str, outcome: Fallback, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        if outcome.rejected:
            why = f"{outcome.error_type or 'rejected'}: {outcome.detail}"
            if self.resources.config.on_reject == "strict":
                raise RouteIQRejected(
                    message=f"RouteIQ refused this request for model group {group!r} ({why})",
                    model=group,
                    llm_provider="routeiq",
                )
            log.warning(
                "routeiq refused a request for %r (%s); served by LiteLLM's own selection "
                "(on_reject=fail-open), litellm_call_id=%s",
                group,
                why,
                kwargs.get("litellm_call_id") or kwargs.get("litellm_trace_id"),
            )
            reason = f"rejected:{outcome.error_type or 'rejected'}"
        else:
            reason = outcome.reason
        return {"models": [], "record": {"router_model_name": group, "routeiq_fallback": reason}}

    # -- visibility on the proxy -------------------------------------------------------------

    async def async_post_call_response_headers_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: Any,
        response: Any,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, Any] | None = None,
    ) -> dict[str, str] | None:
        for key in ("litellm_metadata", "metadata"):
            bucket = data.get(key)
            found = bucket.get(STATE_KEY) if isinstance(bucket, dict) else None
            if isinstance(found, dict):
                group = found.get("groups", {}).get(found.get("last"))
                record = group.get("record") if isinstance(group, dict) else None
                return response_headers(record) if isinstance(record, dict) else None
        return None

    # -- outcomes ----------------------------------------------------------------------------

    def _report(self, kwargs: Mapping[str, Any], success: bool, start: Any, end: Any) -> None:
        try:
            reporter = self.resources.reporter
            deployment_id = deployment_id_of(kwargs)
            if reporter is None or deployment_id is None:
                return
            error = None
            if not success:
                exception = kwargs.get("exception")
                error = type(exception).__name__ if exception is not None else "unknown"
            reporter.report(
                deployment_id,
                success,
                _latency_ms(start, end),
                error,
                _model_of(kwargs),
                decision_of_call(kwargs),
            )
        except Exception:  # reporting must never fail a request
            log.exception("routeiq feedback: could not queue an outcome")

    async def async_log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._report(kwargs, True, start_time, end_time)

    async def async_log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self._report(kwargs, False, start_time, end_time)

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._report(kwargs, True, start_time, end_time)

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._report(kwargs, False, start_time, end_time)


def install(router: litellm.Router, config: ClientConfig | None = None) -> RouteIQRouting:
    """SDK mode in one call: narrow `config.groups` of `router` through RouteIQ and report
    outcomes. The hook is process-wide (LiteLLM runs `litellm.callbacks` for every router);
    it acts on the named groups only. Only the async entry points (`acompletion`,
    `aresponses`, the proxy) run LiteLLM's filter hooks; sync `Router.completion` keeps
    LiteLLM's own selection."""
    resources = ClientResources(config)
    check_groups(resources.config, {str(d.get("model_name")) for d in router.model_list})
    routing = RouteIQRouting(resources)
    manager = litellm.logging_callback_manager
    # LiteLLM keeps one instance of a callback class in its lists: a second install replaces
    # the first instead of being silently ignored.
    for old in [c for c in manager.get_all_callbacks() if isinstance(c, RouteIQRouting)]:
        manager.remove_callback_from_all_lists(old)
    litellm.callbacks.append(routing)
    return routing


def check_groups(config: ClientConfig, known: set[str]) -> None:
    if not config.groups:
        raise ConfigError(
            "ROUTEIQ_CLIENT_GROUPS is empty: name the model groups RouteIQ routes (comma-separated)"
        )
    missing = [g for g in config.groups if g not in known]
    if missing:
        raise ConfigError(f"ROUTEIQ_CLIENT_GROUPS names {missing!r}, not model groups of this router")


def model_facts(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """Candidate fields LiteLLM knows about a deployment: the deployment's own model_info /
    litellm_params first (operators set prices there), then the local model cost map."""
    params = deployment.get("litellm_params") or {}
    own = {**params, **(deployment.get("model_info") or {})}
    try:
        known: Mapping[str, Any] = litellm.get_model_info(model=str(params.get("model")))
    except Exception:  # unknown to the cost map: the sidecar completes from its catalog
        known = {}

    def pick(name: str) -> Any:
        value = own.get(name)
        if value is not None:
            return value
        value = known.get(name)
        # The cost map lists many paid models at 0 (price not tracked): a 0 from it means
        # "unknown", and the sidecar's catalog knows better. An operator's explicit 0 stands.
        return None if value == 0 and name.endswith("_cost_per_token") else value

    facts: dict[str, Any] = {}
    for per_token, per_mtok in (
        ("input_cost_per_token", "input_cost_per_mtok"),
        ("output_cost_per_token", "output_cost_per_mtok"),
    ):
        cost = pick(per_token)
        if isinstance(cost, int | float) and math.isfinite(cost) and 0 <= cost * 1e6 <= 1e6:
            facts[per_mtok] = round(cost * 1e6, 6)
    tokens = pick("max_input_tokens")
    if isinstance(tokens, int) and tokens >= 1:
        facts["max_input_tokens"] = tokens
    for source, target in (
        ("supports_function_calling", "supports_tools"),
        ("supports_reasoning", "supports_reasoning"),
        ("supports_vision", "supports_vision"),
    ):
        value = pick(source)
        if isinstance(value, bool):
            facts[target] = value
    return facts


def deployment_id_of(kwargs: Mapping[str, Any]) -> str | None:
    standard = kwargs.get("standard_logging_object")
    if isinstance(standard, Mapping) and isinstance(standard.get("model_id"), str):
        return str(standard["model_id"])
    params = kwargs.get("litellm_params")
    if isinstance(params, Mapping):
        info = params.get("model_info")
        if isinstance(info, Mapping) and isinstance(info.get("id"), str):
            return str(info["id"])
    return None


def _model_of(kwargs: Mapping[str, Any]) -> str | None:
    model = kwargs.get("model")
    return model if isinstance(model, str) else None


def _latency_ms(start: Any, end: Any) -> float | None:
    if isinstance(start, datetime) and isinstance(end, datetime):
        return (end - start) / timedelta(milliseconds=1)
    if isinstance(start, int | float) and isinstance(end, int | float):
        return (end - start) * 1000
    return None


def _proxy_instance() -> RouteIQRouting:
    """Built when the proxy imports this module while loading its config, so a bad
    `ROUTEIQ_CLIENT_*` setting stops the proxy at start-up with one line naming it."""
    try:
        config = ClientConfig.from_env()
        if not config.groups:
            check_groups(config, set())
    except ConfigError as exc:
        # Raising here would leave a page of uvicorn traceback around the one line that
        # matters; the proxy has served nothing yet, so there is nothing to clean up.
        print(f"routeiq-client: {exc}", file=sys.stderr, flush=True)
        os._exit(2)
    return RouteIQRouting(ClientResources(config))


def __getattr__(name: str) -> Any:
    # The proxy names `routeiq_client.litellm_strategy.proxy_installer`; it is made on that
    # first lookup, not at import, so the SDK can import this module without proxy settings.
    if name == "proxy_installer":
        with _PROXY_LOCK:
            instance = globals().get("_proxy")
            if instance is None:
                instance = globals()["_proxy"] = _proxy_instance()
        return instance
    if name == "Runtime":
        warnings.warn(
            "routeiq_client.litellm_strategy.Runtime is deprecated; use ClientResources",
            DeprecationWarning,
            stacklevel=2,
        )
        return ClientResources
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_PROXY_LOCK = threading.Lock()
