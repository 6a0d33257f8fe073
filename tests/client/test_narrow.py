"""Narrowing to RouteIQ's model: equivalent deployments stay one choice, a call's failures are
never offered again while something else is healthy, and another call's state is never reused."""

from __future__ import annotations

from typing import Any

from routeiq_client.narrow import (
    CallState,
    decision_of_call,
    decision_record,
    narrow,
    ranked_models,
    response_headers,
)


def dep(deployment_id: str, model: str, **info: Any) -> dict[str, Any]:
    return {
        "model_name": "g",
        "litellm_params": {"model": model},
        "model_info": {"id": deployment_id, **info},
    }


EU, US, MINI = dep("eu", "openai/gpt-4o"), dep("us", "openai/gpt-4o"), dep("mini", "openai/gpt-4o-mini")


def ids(deployments: list[dict[str, Any]]) -> list[str]:
    return [d["model_info"]["id"] for d in deployments]


def test_equivalent_deployments_are_one_choice() -> None:
    assert ranked_models({"deployment_id": "us", "fallbacks": ["eu", "mini"]}, [EU, US, MINI]) == [
        "openai/gpt-4o",
        "openai/gpt-4o-mini",
    ]
    chosen, model = narrow([EU, US, MINI], ["openai/gpt-4o", "openai/gpt-4o-mini"], [])
    assert (ids(chosen), model) == (["eu", "us"], "openai/gpt-4o")  # LiteLLM picks between them


def test_an_operator_declared_equivalence_joins_different_model_strings() -> None:
    azure = dep("az", "azure/my-gpt4o-deployment", routeiq_model="openai/gpt-4o")
    chosen, _ = narrow([EU, azure, MINI], ranked_models({"deployment_id": "eu"}, [EU, azure, MINI]), [])
    assert ids(chosen) == ["eu", "az"]


def test_failed_deployments_move_to_the_next_deployment_then_the_next_model() -> None:
    ranked = ["openai/gpt-4o", "openai/gpt-4o-mini"]
    assert ids(narrow([EU, US, MINI], ranked, ["eu"])[0]) == ["us"]
    assert ids(narrow([EU, US, MINI], ranked, ["eu", "us"])[0]) == ["mini"]
    # every ranked model used up: whatever has not failed, not a repeat
    assert narrow([EU, US, MINI], ["openai/gpt-4o"], ["eu", "us"]) == ([MINI], None)
    # nothing left that has not failed: LiteLLM's healthy set, unchanged (it raises its own errors)
    assert ids(narrow([EU], ["openai/gpt-4o"], ["eu"])[0]) == ["eu"]


def test_call_state_remembers_the_previous_attempt_and_is_per_call() -> None:
    bucket: dict[str, Any] = {}
    state = CallState.of(bucket, "call-1")
    state.note_previous_attempt(bucket)  # first attempt: nothing routed yet
    state.groups["g"] = {"models": ["openai/gpt-4o"], "record": None}
    bucket["model_info"] = {"id": "eu"}  # what LiteLLM writes for the attempt it made
    again = CallState.of(bucket, "call-1")
    again.note_previous_attempt(bucket)
    assert again.failed == ["eu"] and "g" in again.groups
    other = CallState.of(bucket, "call-2")  # the same metadata dict passed to another call
    assert other.groups == {} and other.failed == []


def test_decision_record_and_headers() -> None:
    answer = {
        "model": "openai/gpt-4o-mini",
        "tier": "trivial",
        "category": "conversation",
        "complexity": 0.1,
        "profile": "eco",
        "strategy": "centroid",
        "reason": "cheapest",
        "request_id": "r1",
        "experiment": None,
    }
    record = decision_record("auto", answer)
    assert record["router_model_name"] == "auto" and "routeiq_experiment" not in record
    assert response_headers(record) == {
        "x-routeiq-model": "openai/gpt-4o-mini",
        "x-routeiq-tier": "trivial",
        "x-routeiq-category": "conversation",
        "x-routeiq-profile": "eco",
        "x-routeiq-strategy": "centroid",
        "x-routeiq-request-id": "r1",
    }


def test_an_outcome_echoes_the_decision_of_the_group_that_ran() -> None:
    answer = {
        "model": "openai/gpt-4o",
        "request_id": "r-1",
        "experiment": "ab",
        "variant": "treatment",
        "experiment_phase": 2,
    }
    state = {
        "call": "t",
        "last": "g",
        "groups": {"g": {"models": [], "record": decision_record("g", answer)}, "other": {"record": None}},
    }
    # LiteLLM hands logging callbacks the request's metadata under litellm_params (SDK) or at the
    # top level (proxy's litellm_metadata).
    for kwargs in (
        {"litellm_params": {"metadata": {"_routeiq": state}}},
        {"litellm_metadata": {"_routeiq": state}},
    ):
        assert decision_of_call(kwargs) == {
            "request_id": "r-1",
            "experiment": "ab",
            "variant": "treatment",
            "experiment_phase": 2,
        }
    no_experiment = {**state, "groups": {"g": {"record": decision_record("g", {"request_id": "r-2"})}}}
    assert decision_of_call({"metadata": {"_routeiq": no_experiment}}) == {"request_id": "r-2"}
    assert decision_of_call({"metadata": {"_routeiq": {**state, "last": "other"}}}) == {}
    assert decision_of_call({"metadata": {}}) == {} and decision_of_call({}) == {}
