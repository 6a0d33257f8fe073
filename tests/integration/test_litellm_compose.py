"""RouteIQ composed with LiteLLM on a real `litellm.Router` (mock_response deployments) and a real
`routeiq serve`: RouteIQ picks the model, LiteLLM still picks the deployment, retries move on,
groups not opted in are untouched, and the decision is in LiteLLM's logging payload."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger

from routeiq_client import ClientConfig, ConfigError, install
from routeiq_client.litellm_strategy import RouteIQRejected
from tests._harness import ServeProcess

from .routed import Routed, make_routed, served_by

__all__ = ["make_routed"]  # a fixture: imported to be found here
FAIL = "litellm.InternalServerError"


def deployment(
    group: str, deployment_id: str, model: str, reply: str = "ok", **params: Any
) -> dict[str, Any]:
    return {
        "model_name": group,
        "litellm_params": {"model": model, "mock_response": reply, **params},
        "model_info": {"id": deployment_id},
    }


# Two regions of one model with LiteLLM weights 9 : 1, beside a budget model.
WEIGHTED = [
    deployment("auto", "gpt-4o-eu", "openai/gpt-4o", weight=9),
    deployment("auto", "gpt-4o-us", "openai/gpt-4o", weight=1),
    deployment("auto", "gpt-4o-mini", "openai/gpt-4o-mini"),
]


@pytest.fixture
def routed(service: ServeProcess, make_routed: Callable[..., Routed]) -> Callable[..., Routed]:
    return lambda *args, **kwargs: make_routed(service.url, *args, **kwargs)


def test_litellm_weights_still_split_equivalent_deployments(routed: Any) -> None:
    r = routed(WEIGHTED)
    split = Counter(served_by(x) for x in r.run(200, metadata={"routeiq_profile": "premium"}))
    decided = r.decisions()["sidecar"]
    # RouteIQ chose the model (premium: gpt-4o) whenever it answered; on this shared machine
    # it may shed a few requests (503), which LiteLLM then serves alone.
    assert decided >= 190 and split["gpt-4o-mini"] <= 200 - decided, (split, r.decisions())
    # LiteLLM's weights chose the region: 9 : 1 is 180 : 20 on average, and an eu share
    # outside 75..98 % has a chance below 1e-6 under simple-shuffle.
    regions = split["gpt-4o-eu"] + split["gpt-4o-us"]
    assert 0.75 <= split["gpt-4o-eu"] / regions <= 0.98, split


def test_a_retry_never_repeats_a_failed_deployment_and_asks_the_sidecar_once(routed: Any) -> None:
    # eco ranks gemini-2.0-flash first; it always fails. Cooldowns off: only RouteIQ's memory
    # of the call keeps the retries away from it.
    failing = [
        deployment("auto", "gemini-2.0-flash", "gemini/gemini-2.0-flash", FAIL),
        deployment("auto", "gpt-4o-mini", "openai/gpt-4o-mini"),
        deployment("auto", "gpt-4o", "openai/gpt-4o"),
    ]
    r = routed(failing, {"num_retries": 2, "retry_after": 0, "disable_cooldowns": True})
    results = r.run(8, metadata={"routeiq_profile": "eco"})
    assert all(served_by(x) != "gemini-2.0-flash" for x in results)
    counts = r.decisions()
    assert counts["sidecar"] == 8, counts  # one /route per call, none per retry
    assert counts["retry"] == 8, counts


def test_a_failed_region_is_retried_in_the_other_region_of_the_same_model(routed: Any) -> None:
    regions = [
        deployment("auto", "gpt-4o-eu", "openai/gpt-4o", FAIL, weight=9),
        deployment("auto", "gpt-4o-us", "openai/gpt-4o", weight=1),
        deployment("auto", "gpt-4o-mini", "openai/gpt-4o-mini"),
    ]
    r = routed(regions, {"num_retries": 1, "retry_after": 0, "disable_cooldowns": True})
    served = {served_by(x) for x in r.run(6, metadata={"routeiq_profile": "premium"})}
    assert served == {"gpt-4o-us"}  # same model, next deployment; never the budget model


def test_groups_not_opted_in_keep_litellms_own_selection(routed: Any) -> None:
    other = [deployment("other", f"o{i}", m) for i, m in enumerate(["openai/gpt-4o", "openai/gpt-4o-mini"])]
    r = routed(WEIGHTED + other)
    served = Counter(served_by(x) for x in r.run(30, group="other", metadata={"routeiq_profile": "eco"}))
    assert set(served) == {"o0", "o1"}, served  # simple-shuffle over both; eco would pick one
    assert r.decisions() == {}  # the sidecar was never asked


class PayloadRecorder(CustomLogger):
    def __init__(self) -> None:
        super().__init__()
        self.decisions: list[dict[str, Any]] = []

    async def async_log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.decisions.append(kwargs["standard_logging_object"]["metadata"]["routing_decision"])


def test_the_decision_is_in_the_standard_logging_payload(routed: Any) -> None:
    recorder = PayloadRecorder()
    litellm.callbacks.append(recorder)
    try:
        r = routed(WEIGHTED)
        served_by(r.run(1, until=lambda: bool(recorder.decisions), metadata={"routeiq_profile": "eco"})[0])
    finally:
        litellm.logging_callback_manager.remove_callback_from_all_lists(recorder)
    assert recorder.decisions, "no success event logged"
    decision = recorder.decisions[0]
    assert decision["router_model_name"] == "auto"
    assert decision["routed_model"] == "openai/gpt-4o-mini"
    assert decision["routeiq_profile"] == "eco"
    assert decision["tier"] == "trivial"  # the prompt tier, as LiteLLM's complexity router reports it
    assert {"request_type", "routeiq_strategy", "routeiq_reason", "routeiq_request_id"} <= set(decision)


def test_unknown_profile_strict_is_a_clear_bad_request(routed: Any) -> None:
    r = routed(WEIGHTED, {"num_retries": 2, "retry_after": 0})
    (result,) = r.run(1, metadata={"routeiq_profile": "ecoo"})
    assert isinstance(result, RouteIQRejected), repr(result)
    assert result.status_code == 400
    assert "unknown_profile" in str(result) and "ecoo" in str(result)
    assert r.decisions() == {"rejected": 1}  # not retried into a second /route


def test_unknown_profile_fail_open_is_served_and_warned_every_time(
    routed: Any, caplog: pytest.LogCaptureFixture
) -> None:
    r = routed(WEIGHTED, on_reject="fail-open")
    with caplog.at_level(logging.WARNING, logger="routeiq_client"):
        results = r.run(3, metadata={"routeiq_profile": "ecoo"})
    assert all(served_by(x) for x in results)
    warnings = [m for m in caplog.messages if "unknown_profile" in m and "litellm_call_id=" in m]
    assert len(warnings) == 3, caplog.messages


def test_install_refuses_no_groups_or_a_group_the_router_lacks(service: ServeProcess) -> None:
    router = litellm.Router(model_list=WEIGHTED)
    with pytest.raises(ConfigError, match="ROUTEIQ_CLIENT_GROUPS is empty"):
        install(router, ClientConfig(url=service.url))
    with pytest.raises(ConfigError, match="'chat'"):
        install(router, ClientConfig(url=service.url, groups=("chat",)))
