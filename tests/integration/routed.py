"""A real `litellm.Router` with RouteIQ's hook registered the way `install` does, each with its own
metrics, for the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import litellm
import pytest
from prometheus_client import CollectorRegistry

from routeiq_client import ClientConfig, ClientMetrics, RouteIQRouting
from routeiq_client.litellm_strategy import ClientResources
from tests._harness import ServeProcess

HI = [{"role": "user", "content": "hi"}]


class Routed:
    """A Router with RouteIQ's hook registered the way `install` does, with its own metrics."""

    def __init__(
        self, url: str, model_list: list[dict[str, Any]], router: dict[str, Any], **config: Any
    ) -> None:
        self.router = litellm.Router(model_list=model_list, **router)
        self.url = url
        settings = {"deadline_ms": 10_000.0, "feedback": False, "groups": ("auto",), **config}
        self.resources = ClientResources(
            ClientConfig(url=url, **settings), metrics=ClientMetrics(registry=CollectorRegistry())
        )
        self.routing = RouteIQRouting(self.resources)

    def decisions(self) -> dict[str, int]:
        counts: dict[str, int] = self.resources.metrics.snapshot()["decisions"]
        return counts

    def run(
        self, calls: int, group: str = "auto", until: Callable[[], bool] | None = None, **kwargs: Any
    ) -> list[Any]:
        """`calls` completions on one loop (then up to 10 s for `until`, on the same loop, where
        LiteLLM's logging tasks run); each result is the response or the exception."""

        async def go() -> list[Any]:
            out: list[Any] = []
            try:
                for _ in range(calls):
                    try:
                        out.append(await self.router.acompletion(model=group, messages=HI, **kwargs))
                    except Exception as exc:
                        out.append(exc)
                for _ in range(200):
                    if until is None or await asyncio.to_thread(until):  # the loop keeps running
                        break
                    await asyncio.sleep(0.05)
            finally:
                await self.resources.client.aclose()
            return out

        return asyncio.run(go())


@pytest.fixture
def routed(service: ServeProcess) -> Iterator[Any]:
    made: list[Routed] = []

    def make(model_list: list[dict[str, Any]], router: dict[str, Any] | None = None, **config: Any) -> Routed:
        one = Routed(service.url, model_list, router or {}, **config)
        litellm.callbacks.append(one.routing)
        made.append(one)
        return one

    yield make
    for one in made:
        # LiteLLM promotes callbacks into its success/failure lists and keeps one instance per
        # class there: remove it everywhere, or the next test's instance is never called.
        litellm.logging_callback_manager.remove_callback_from_all_lists(one.routing)
        one.resources.close()


@pytest.fixture
def make_routed() -> Iterator[Callable[..., Routed]]:
    """`make_routed(url, model_list, router_kwargs=None, **client_config)`; unregistered after."""
    made: list[Routed] = []

    def make(
        url: str, model_list: list[dict[str, Any]], router: dict[str, Any] | None = None, **config: Any
    ) -> Routed:
        one = Routed(url, model_list, router or {}, **config)
        litellm.callbacks.append(one.routing)
        made.append(one)
        return one

    yield make
    for one in made:
        # LiteLLM promotes callbacks into its success/failure lists and keeps one instance per
        # class there: remove it everywhere, or the next test's instance is never called.
        litellm.logging_callback_manager.remove_callback_from_all_lists(one.routing)
        one.resources.close()


def served_by(response: Any) -> str:
    assert not isinstance(response, Exception), repr(response)
    return str(response._hidden_params["model_id"])
