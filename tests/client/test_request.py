"""The /route body built from LiteLLM's inputs: the right fields, and nothing secret."""

from __future__ import annotations

import json

from routeiq_client.request import candidate, route_payload

DEPLOYMENTS = [
    {
        "model_name": "auto",
        "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "sk-dep"},
        "model_info": {"id": "a"},
    },
    {
        "model_name": "auto",
        "litellm_params": {"model": "local-llm"},
        "model_info": {"id": "b", "routeiq_tier": "premium"},
    },
    {"model_name": "auto", "litellm_params": {"model": "no-id"}, "model_info": {}},
]


def test_candidates_carry_ids_models_and_overrides_never_keys() -> None:
    made = [candidate(d, {"input_cost_per_mtok": 1.0}) for d in DEPLOYMENTS]
    assert made[0] == {
        "deployment_id": "a",
        "model": "openai/gpt-4o-mini",
        "model_group": "auto",
        "provider": "openai",
        "input_cost_per_mtok": 1.0,
    }
    assert made[1] is not None and made[1]["tier"] == "premium" and "provider" not in made[1]
    assert made[2] is None
    assert "sk-dep" not in json.dumps(made)


def test_context_from_proxy_headers_and_metadata_without_secrets() -> None:
    kwargs = {
        "api_key": "sk-1",
        "secret_fields": {"raw_headers": {"authorization": "Bearer sk-2"}},
        "litellm_metadata": {
            "headers": {"authorization": "Bearer sk-3", "x-routeiq-profile": "eco", "x-routeiq-session": "s"},
            "user_api_key_auth": {"api_key": "sk-4"},
            "user_api_key": "sk-5",
            "user_api_key_alias": "k",
            "user_api_key_team_id": "t",
            "routeiq_experiment": "x",
            "routeiq_nested": {"api_key": "sk-6"},
        },
        "tools": [{"type": "function", "function": {"name": "search", "parameters": {"secret": "sk-7"}}}],
    }
    body = route_payload("auto", [{"role": "user", "content": "hi"}], None, kwargs, [])
    assert body is not None
    assert not any(f"sk-{i}" in json.dumps(body) for i in range(1, 8))
    assert (body["profile"], body["session_id"], body["key_alias"], body["team"]) == ("eco", "s", "k", "t")
    assert body["metadata"] == {"routeiq_experiment": "x"}
    assert body["tools"] == [{"type": "function", "name": "search"}]


def test_messages_lose_binary_parts_and_tool_arguments() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "data:AAAA"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{...}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    body = route_payload("auto", messages, None, {}, [])
    assert body is not None
    assert body["messages"][0]["content"] == [{"type": "text", "text": "what is this"}, {"type": "image_url"}]
    assert body["messages"][1]["tool_calls"] == [{"id": "c1", "type": "function", "function": {"name": "f"}}]
    assert "data:AAAA" not in json.dumps(body)


def test_inputs_embeddings_responses_and_no_text() -> None:
    assert route_payload("e", None, "hello", {}, [])["input"] == "hello"  # type: ignore[index]
    assert route_payload("e", None, ["a", "b"], {}, [])["input"] == ["a", "b"]  # type: ignore[index]
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "ok"},
    ]
    body = route_payload("m", None, items, {}, [])
    assert body is not None
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool"]
    assert body["messages"][0]["content"] == [{"type": "text", "text": "hi"}]
    assert route_payload("e", None, [[1, 2, 3]], {}, []) is None  # token ids: nothing to read
    assert route_payload("e", None, "  ", {}, []) is None
