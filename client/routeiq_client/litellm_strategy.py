"""The LiteLLM adapter — the only module that imports litellm.

- `RouteIQStrategy`: a `CustomRoutingStrategyBase` for `router.set_custom_routing_strategy`.
  It replaces LiteLLM's whole selection path, so it asks the router's own helper for the healthy
  deployments (cooldowns, team / tag / order filters, aliases, ids, `specific_deployment`) and
  only ever returns one of them.
- `RouteIQFeedbackLogger`: a `CustomLogger` that queues each call's outcome for POST /feedback.
- `RouteIQProxyInstaller`: the feedback logger plus an `async_pre_call_hook` that installs the
  strategy on the proxy's router before each request is routed, re-installing it when the router
  object was replaced or `update_settings` reset the strategy. `proxy_installer` is the instance
  named in `litellm_settings.callbacks`.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import litellm
from litellm.integrations.custom_logger import CustomLogger
from litellm.types.router import CustomRoutingStrategyBase

from .breaker import CircuitBreaker
from .bridge import LoopThread
from .config import ClientConfig
from .decide import Decider
from .feedback import FeedbackReporter
from .http import RouteIQClient
from .metrics import SPECIFIC, ClientMetrics

log = logging.getLogger("routeiq_client")


class ClientResources:
    """What outlives one strategy instance: the connection pool, the circuit breaker, metrics,
    the feedback queue, the sync bridge and the per-deployment facts cache. A re-installed
    strategy keeps using them; `close()` releases them."""

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
        self.bridge = LoopThread()
        self._facts: dict[tuple[str, str], dict[str, Any]] = {}
        self._facts_lock = threading.Lock()

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
        """Flush feedback, close the sync path's pool and stop the threads. Pools of other
        event loops are closed by `await client.aclose()` on those loops."""
        if self.reporter is not None:
            self.reporter.close()
        if self.bridge.started:
            self.bridge.run(self.client.aclose())
        self.bridge.stop()


class RouteIQStrategy(CustomRoutingStrategyBase):
    def __init__(
        self,
        router: litellm.Router,
        config: ClientConfig | None = None,
        resources: ClientResources | None = None,
    ) -> None:
        self.router = router
        self.resources = resources or ClientResources(config)
        self.decider = Decider(
            self.resources.client, self.resources.breaker, self.resources.metrics, self.resources.facts
        )

    async def async_get_available_deployment(
        self,
        model: str,
        messages: list[dict[str, str]] | None = None,
        input: str | list[Any] | None = None,
        specific_deployment: bool | None = False,
        request_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        kwargs = request_kwargs if request_kwargs is not None else {}
        start = time.perf_counter()
        # The router's own errors (no healthy deployment, unknown model id) pass through unchanged.
        healthy = await self.router.async_get_healthy_deployments(
            model=model,
            request_kwargs=kwargs,
            messages=messages,
            input=input,
            specific_deployment=specific_deployment,
        )
        if isinstance(healthy, dict):  # a deployment id or specific_deployment: LiteLLM already chose
            self.resources.metrics.decision(SPECIFIC, time.perf_counter() - start)
            return healthy
        return await self.decider.choose(model, healthy, messages, input, kwargs)

    def get_available_deployment(
        self,
        model: str,
        messages: list[dict[str, str]] | None = None,
        input: str | list[Any] | None = None,
        specific_deployment: bool | None = False,
        request_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Sync entry (Router.completion): the async path on the resources' private loop, which
        works whether or not the calling thread is already running an event loop."""
        return self.resources.bridge.run(
            self.async_get_available_deployment(model, messages, input, specific_deployment, request_kwargs)
        )

    def install(self) -> RouteIQStrategy:
        self.router.set_custom_routing_strategy(self)
        return self

    def is_installed(self, router: Any) -> bool:
        current = getattr(router, "__dict__", {}).get("async_get_available_deployment")
        return router is self.router and getattr(current, "__self__", None) is self


class RouteIQFeedbackLogger(CustomLogger):
    """Reports every call's outcome (deployment id, success, latency, error class) to the sidecar."""

    def __init__(self, resources: ClientResources | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._resources = resources
        self._resources_lock = threading.Lock()

    @property
    def resources(self) -> ClientResources:
        # Built on first use, not at import: the proxy imports this module before reading its env.
        if self._resources is None:
            with self._resources_lock:
                if self._resources is None:
                    self._resources = ClientResources()
        return self._resources

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
            reporter.report(deployment_id, success, _latency_ms(start, end), error, _model_of(kwargs))
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


class RouteIQProxyInstaller(RouteIQFeedbackLogger):
    """Put `routeiq_client.litellm_strategy.proxy_installer` in `litellm_settings.callbacks`."""

    def __init__(self, resources: ClientResources | None = None, **kwargs: Any) -> None:
        super().__init__(resources, **kwargs)
        self.strategy: RouteIQStrategy | None = None
        self.installs = 0

    def ensure_installed(self, router: Any) -> None:
        if router is None or (self.strategy is not None and self.strategy.is_installed(router)):
            return
        self.strategy = RouteIQStrategy(router, resources=self.resources).install()
        self.installs += 1
        log.info("routeiq strategy installed on the proxy router (install #%d)", self.installs)

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> None:
        try:
            from litellm.proxy import proxy_server

            self.ensure_installed(proxy_server.llm_router)
        except Exception:  # never fail a request because of routing glue: LiteLLM routes alone
            log.exception("routeiq: could not install the strategy on the proxy router")


def install(
    router: litellm.Router, config: ClientConfig | None = None, feedback: bool = True
) -> RouteIQStrategy:
    """SDK mode in one call: route `router` through RouteIQ and report outcomes."""
    strategy = RouteIQStrategy(router, config).install()
    if feedback and strategy.resources.reporter is not None:
        litellm.callbacks.append(RouteIQFeedbackLogger(strategy.resources))
    return strategy


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


# The instance LiteLLM's proxy imports by name (`litellm_settings.callbacks`). Cheap: the
# resources (pools, threads) are built on the first request.
proxy_installer = RouteIQProxyInstaller()


def __getattr__(name: str) -> Any:
    # `Runtime` was this module's name for ClientResources; kept importable for a while.
    if name == "Runtime":
        warnings.warn(
            "routeiq_client.litellm_strategy.Runtime is deprecated; use ClientResources",
            DeprecationWarning,
            stacklevel=2,
        )
        return ClientResources
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
