"""RouteIQStrategy on a real litellm.Router (mock_response deployments) against a real routeiq
service subprocess and, for faults the service cannot be made to produce, a stub HTTP server.
Every fault must end in a successful completion."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import litellm
import pytest
from prometheus_client import CollectorRegistry

from routeiq_client import ClientConfig, ClientMetrics, RouteIQStrategy
from routeiq_client.litellm_strategy import ClientResources, RouteIQFeedbackLogger
from tests._harness import ServeProcess, free_port

from .conftest import example_model_list
from .stub_sidecar import StubSidecar

HI = [{"role": "user", "content": "hi"}]


def make_strategy(
    url: str,
    model_list: list[dict[str, Any]] | None = None,
    router_kwargs: dict[str, Any] | None = None,
    **config: Any,
) -> RouteIQStrategy:
    router = litellm.Router(model_list=model_list or example_model_list(), **(router_kwargs or {}))
    settings = {"deadline_ms": 10_000.0, "feedback": False, **config}  # speed is bench/, not tests
    resources = ClientResources(
        ClientConfig(url=url, **settings), metrics=ClientMetrics(registry=CollectorRegistry())
    )
    return RouteIQStrategy(router, resources=resources).install()


@pytest.fixture
def strategies() -> Iterator[list[RouteIQStrategy]]:
    made: list[RouteIQStrategy] = []
    yield made
    for strategy in made:
        strategy.resources.close()


def run(strategy: RouteIQStrategy, coro: Coroutine[Any, Any, Any]) -> Any:
    async def wrapped() -> Any:
        try:
            return await coro
        finally:
            await strategy.resources.client.aclose()

    return asyncio.run(wrapped())


def served_by(response: Any) -> str:
    return str(response._hidden_params["model_id"])


def decisions(strategy: RouteIQStrategy) -> dict[str, int]:
    counts: dict[str, int] = strategy.resources.metrics.snapshot()["decisions"]
    return counts


# -- the sidecar up ------------------------------------------------------------------------------


def test_profile_in_metadata_changes_the_choice(
    service: ServeProcess, strategies: list[RouteIQStrategy]
) -> None:
    strategy = make_strategy(service.url)
    strategies.append(strategy)

    async def go() -> tuple[str, str]:
        eco = await strategy.router.acompletion(
            model="auto", messages=HI, metadata={"routeiq_profile": "eco"}
        )
        premium = await strategy.router.acompletion(
            model="auto", messages=HI, metadata={"routeiq_profile": "premium"}
        )
        return served_by(eco), served_by(premium)

    eco, premium = run(strategy, go())
    # eco: cheapest budget model; premium: a premium-tier model. Both chosen by the sidecar.
    assert eco == "gemini-2.0-flash", decisions(strategy)
    assert premium in {"gpt-4o", "claude-sonnet-4"}
    assert decisions(strategy) == {"sidecar": 2}


def test_proxy_header_in_metadata_is_read(service: ServeProcess, strategies: list[RouteIQStrategy]) -> None:
    strategy = make_strategy(service.url)
    strategies.append(strategy)
    # What the proxy puts in request_kwargs: lower-cased headers under metadata / litellm_metadata.
    for bucket in ("metadata", "litellm_metadata"):
        kwargs = {bucket: {"headers": {"x-routeiq-profile": "eco"}}}
        response = run(strategy, strategy.router.acompletion(model="auto", messages=HI, **kwargs))
        assert served_by(response) == "gemini-2.0-flash", (bucket, decisions(strategy))


def test_sync_completion_outside_and_inside_a_running_loop(
    service: ServeProcess, strategies: list[RouteIQStrategy]
) -> None:
    strategy = make_strategy(service.url)
    strategies.append(strategy)
    meta = {"routeiq_profile": "eco"}
    outside = strategy.router.completion(model="auto", messages=HI, metadata=meta)

    async def inside() -> Any:  # a sync call made from code that runs an event loop
        return strategy.router.completion(model="auto", messages=HI, metadata=meta)

    within = asyncio.run(inside())
    assert served_by(outside) == served_by(within) == "gemini-2.0-flash", decisions(strategy)
    assert decisions(strategy) == {"sidecar": 2}


def test_embeddings_and_responses_route_through_the_sidecar(
    service: ServeProcess, strategies: list[RouteIQStrategy]
) -> None:
    model_list = example_model_list() + example_model_list("embed")
    strategy = make_strategy(service.url, model_list)
    strategies.append(strategy)

    async def go() -> tuple[Any, Any]:
        embedding = await strategy.router.aembedding(model="embed", input=["hello", "world"])
        responses = await strategy.router.aresponses(
            model="auto", input=[{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
        )
        return embedding, responses

    embedding, responses = run(strategy, go())
    assert served_by(embedding) in {"text-embedding-3-small", "text-embedding-3-large"}
    assert responses.output[0].content[0].text.startswith("served by ")
    assert decisions(strategy) == {"sidecar": 2}


def test_deployment_id_and_alias_resolve_without_asking(
    service: ServeProcess, strategies: list[RouteIQStrategy]
) -> None:
    strategy = make_strategy(service.url, router_kwargs={"model_group_alias": {"router": "auto"}})
    strategies.append(strategy)
    by_id = run(strategy, strategy.router.acompletion(model="gpt-4o", messages=HI))
    assert served_by(by_id) == "gpt-4o"
    via_alias = run(
        strategy,
        strategy.router.acompletion(model="router", messages=HI, metadata={"routeiq_profile": "eco"}),
    )
    assert served_by(via_alias) == "gemini-2.0-flash", decisions(strategy)
    assert decisions(strategy) == {"sidecar": 1, "specific": 1}


def test_outcomes_reach_the_service(service: ServeProcess, strategies: list[RouteIQStrategy]) -> None:
    # Own deployment ids: LiteLLM delivers callbacks of earlier tests' calls late (a global
    # logging worker), and they must not be counted here.
    model_list = [{**d, "model_info": {"id": d["model_info"]["id"] + "-fb"}} for d in example_model_list()]
    strategy = make_strategy(service.url, model_list, feedback=True, feedback_interval_s=0.05)
    strategies.append(strategy)
    litellm.callbacks.append(logger := RouteIQFeedbackLogger(strategy.resources))
    try:
        reporter = strategy.resources.reporter
        assert reporter is not None

        def served() -> int:
            stats = service.stats()["deployments"].get("gemini-2.0-flash-fb", {})  # type: ignore[attr-defined]
            return int(stats.get("successes", 0))

        async def until(count: int) -> None:
            # LiteLLM delivers success callbacks after returning (tasks, a thread pool): keep the
            # loop running until the service has counted them.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                await asyncio.to_thread(reporter.flush)
                if await asyncio.to_thread(served) >= count:
                    return
                await asyncio.sleep(0.02)

        async def three() -> None:
            for _ in range(3):
                await strategy.router.acompletion(
                    model="auto", messages=HI, metadata={"routeiq_profile": "eco"}
                )
            await until(3)

        run(strategy, three())
        strategy.router.completion(model="auto", messages=HI, metadata={"routeiq_profile": "eco"})
        asyncio.run(until(4))
    finally:
        litellm.callbacks.remove(logger)
    after = service.stats()["deployments"]["gemini-2.0-flash-fb"]  # type: ignore[index]
    assert after["successes"] == 4  # exactly once per request, async and sync
    assert after["mean_latency_ms"] is not None


# -- faults ---------------------------------------------------------------------------------------


def test_service_killed_falls_back_then_circuit_opens(
    strategies: list[RouteIQStrategy], tmp_path: Path
) -> None:
    with ServeProcess(tmp_path) as service:  # killed on exit, also if an assertion fails first
        strategy = make_strategy(service.url, failure_threshold=2, open_seconds=60)
        strategies.append(strategy)
        first = run(strategy, strategy.router.acompletion(model="auto", messages=HI))
        assert first.choices[0].message.content.startswith("served by ")
        service.kill()
    served = [
        served_by(run(strategy, strategy.router.acompletion(model="auto", messages=HI))) for _ in range(4)
    ]
    # round-robin over the four healthy deployments
    assert sorted(served) == sorted(d["model_info"]["id"] for d in example_model_list())
    assert decisions(strategy) == {"sidecar": 1, "fallback:connect_error": 2, "circuit_open": 2}
    assert strategy.resources.breaker.state == "open"


def test_slow_service_is_abandoned_at_the_deadline(strategies: list[RouteIQStrategy]) -> None:
    with StubSidecar(mode="slow", delay=1.0) as stub:
        strategy = make_strategy(stub.url, deadline_ms=50)
        strategies.append(strategy)
        start = time.perf_counter()
        response = run(strategy, strategy.router.acompletion(model="auto", messages=HI))
        elapsed = time.perf_counter() - start
        sync_start = time.perf_counter()
        strategy.router.completion(model="auto", messages=HI)
        sync_elapsed = time.perf_counter() - sync_start
    assert response.choices[0].message.content.startswith("served by ")
    assert elapsed < 0.8 and sync_elapsed < 0.8  # did not wait the stub's 1 s
    assert decisions(strategy) == {"fallback:timeout": 2}


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("garbage", "bad_response"), ("unknown", "unknown_deployment"), ("error", "http_error")],
)
def test_bad_answers_fall_back(mode: str, reason: str, strategies: list[RouteIQStrategy]) -> None:
    with StubSidecar(mode=mode) as stub:
        strategy = make_strategy(stub.url)
        strategies.append(strategy)
        response = run(strategy, strategy.router.acompletion(model="auto", messages=HI))
    assert response.choices[0].message.content.startswith("served by ")
    assert decisions(strategy) == {f"fallback:{reason}": 1}


def test_nothing_listening_at_all(strategies: list[RouteIQStrategy]) -> None:
    strategy = make_strategy(f"http://127.0.0.1:{free_port()}")
    strategies.append(strategy)
    response = strategy.router.completion(model="auto", messages=HI)
    assert response.choices[0].message.content.startswith("served by ")


def test_deployment_in_cooldown_is_never_offered(strategies: list[RouteIQStrategy]) -> None:
    model_list = example_model_list()
    model_list[0] = {
        **model_list[0],
        "litellm_params": {**model_list[0]["litellm_params"], "mock_response": "litellm.RateLimitError"},
    }
    broken = model_list[0]["model_info"]["id"]
    with StubSidecar(mode="ok") as stub:  # always answers the first candidate it is offered
        strategy = make_strategy(
            stub.url,
            model_list,
            {"num_retries": 1, "allowed_fails": 0, "cooldown_time": 60, "retry_after": 0},
        )
        strategies.append(strategy)
        response = run(strategy, strategy.router.acompletion(model="auto", messages=HI))
        later = run(strategy, strategy.router.acompletion(model="auto", messages=HI))
        offered = [[c["deployment_id"] for c in body["candidates"]] for body in stub.routes()]  # type: ignore[union-attr]
    assert offered[0][0] == broken  # the stub chose the failing one first
    assert all(broken not in ids for ids in offered[1:])  # then LiteLLM cooled it down
    assert served_by(response) != broken and served_by(later) != broken


def test_router_errors_pass_through_unchanged(
    service: ServeProcess, strategies: list[RouteIQStrategy]
) -> None:
    strategy = make_strategy(service.url)
    strategies.append(strategy)
    with pytest.raises(litellm.BadRequestError):
        run(strategy, strategy.router.acompletion(model="no-such-group", messages=HI))
    assert decisions(strategy) == {}


def test_secrets_never_reach_the_sidecar(strategies: list[RouteIQStrategy]) -> None:
    secret = "sk-secret-0123456789"
    with StubSidecar(mode="ok") as stub:
        strategy = make_strategy(stub.url)
        strategies.append(strategy)
        metadata = {
            "headers": {
                "authorization": f"Bearer {secret}",
                "x-routeiq-profile": "eco",
                "x-routeiq-session": "s1",
            },
            "user_api_key": secret,
            "user_api_key_auth": {"api_key": secret, "token": secret},
            "user_api_key_alias": "ci-key",
            "user_api_key_team_id": "team-a",
        }
        run(
            strategy,
            strategy.router.acompletion(
                model="auto",
                messages=HI,
                metadata=metadata,
                secret_fields={"raw_headers": {"authorization": secret}},
                api_key=secret,
                user="u1",
            ),
        )
        body = stub.routes()[0]
    assert secret not in json.dumps(body)
    assert (body["profile"], body["session_id"], body["key_alias"], body["team"], body["user"]) == (
        "eco",
        "s1",
        "ci-key",
        "team-a",
        "u1",
    )


def test_installer_reinstalls_after_reset_and_router_replacement(service: ServeProcess) -> None:
    from routeiq_client.litellm_strategy import RouteIQProxyInstaller

    config = ClientConfig(url=service.url, feedback=False, deadline_ms=10_000)
    resources = ClientResources(config, metrics=ClientMetrics(registry=CollectorRegistry()))
    installer = RouteIQProxyInstaller(resources)
    try:
        router = litellm.Router(model_list=example_model_list())
        installer.ensure_installed(router)
        installer.ensure_installed(router)
        assert installer.installs == 1
        router.routing_strategy_init("simple-shuffle", {})  # what update_settings does
        assert "async_get_available_deployment" not in router.__dict__
        installer.ensure_installed(router)
        assert installer.installs == 2
        replacement = litellm.Router(model_list=example_model_list())
        installer.ensure_installed(replacement)
        assert installer.installs == 3 and installer.strategy is not None
        assert installer.strategy.router is replacement
        response = replacement.completion(model="auto", messages=HI, metadata={"routeiq_profile": "eco"})
        assert served_by(response) == "gemini-2.0-flash", resources.metrics.snapshot()
    finally:
        resources.close()
