"""Builds the POST /route body from what LiteLLM hands a routing strategy. Pure functions.

Only an allow-list of fields is copied out of `request_kwargs`: the proxy puts API keys,
`secret_fields`, `user_api_key_auth` and raw headers (Authorization) there, and none of that may
leave the process. Image/audio payloads are reduced to their part type (the sidecar only counts
them), and tool calls to their names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SHORT = 256  # the service's limit for identifiers (profile, session, user, team, model)
MAX_MESSAGES = 512  # the service's default ROUTEIQ_MAX_MESSAGES
PROFILE_HEADER = "x-routeiq-profile"
SESSION_HEADER = "x-routeiq-session"
# Request-scoped RouteIQ hints an SDK user may put in `metadata`; forwarded as-is (scalars only).
METADATA_PREFIX = "routeiq_"
_TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
_CANDIDATE_OVERRIDES = {"routeiq_tier": "tier", "routeiq_quality": "quality"}


def route_payload(
    model: str,
    messages: Sequence[Any] | None,
    input: Any,
    request_kwargs: Mapping[str, Any] | None,
    candidates: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """The /route body, or None when the request carries no text to route on (token-id
    embeddings, empty input): then there is nothing for the sidecar to decide."""
    kwargs = request_kwargs or {}
    body: dict[str, Any] = {"model": _short(model), "candidates": candidates}
    if messages:
        cleaned = clean_messages(messages)
        if not cleaned:
            return None
        body["messages"] = cleaned
    elif isinstance(input, str) and input.strip():
        body["input"] = input
    elif isinstance(input, list) and input:
        if all(isinstance(item, str) for item in input):
            body["input"] = list(input)
        else:  # Responses API items, or token ids (nothing to read)
            cleaned = clean_messages(responses_items_as_messages(input))
            if not cleaned:
                return None
            body["messages"] = cleaned
    else:
        return None
    tools = _tool_stubs(kwargs.get("tools"))
    if tools:
        body["tools"] = tools
    body.update(request_context(kwargs))
    return body


def request_context(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """profile / session / user / team / key alias, from the proxy's metadata or the SDK's."""
    meta = _metadata(kwargs)
    headers = meta.get("headers") if isinstance(meta.get("headers"), Mapping) else {}
    assert isinstance(headers, Mapping)
    found = {
        "profile": headers.get(PROFILE_HEADER) or meta.get("routeiq_profile"),
        "session_id": headers.get(SESSION_HEADER)
        or meta.get("routeiq_session")
        or meta.get("session_id")
        or kwargs.get("litellm_session_id"),
        "user": kwargs.get("user") or meta.get("user_api_key_user_id"),
        "team": meta.get("user_api_key_team_alias") or meta.get("user_api_key_team_id"),
        "key_alias": meta.get("user_api_key_alias"),
    }
    context: dict[str, Any] = {k: _short(v) for k, v in found.items() if isinstance(v, str) and v}
    hints = {
        k: v
        for k, v in meta.items()
        if isinstance(k, str) and k.startswith(METADATA_PREFIX) and isinstance(v, str | int | float | bool)
    }
    if hints:
        context["metadata"] = hints
    return context


def _metadata(kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    # /v1/chat/completions and the SDK use `metadata`; /v1/responses and /v1/messages use
    # `litellm_metadata`. Read both, the proxy's own bucket winning.
    merged: dict[str, Any] = {}
    for key in ("metadata", "litellm_metadata"):
        bucket = kwargs.get(key)
        if isinstance(bucket, Mapping):
            merged.update(bucket)
    return merged


def clean_messages(messages: Iterable[Any]) -> list[dict[str, Any]]:
    cleaned = [m for m in (_clean_message(m) for m in messages) if m is not None]
    if len(cleaned) > MAX_MESSAGES:  # keep the opening (session fingerprint) and the latest turns
        cleaned = cleaned[:2] + cleaned[-(MAX_MESSAGES - 2) :]
    return cleaned


def _clean_message(message: Any) -> dict[str, Any] | None:
    if not isinstance(message, Mapping):
        dump = getattr(message, "model_dump", None)
        message = dump() if callable(dump) else None
        if not isinstance(message, Mapping):
            return None
    out: dict[str, Any] = {"role": str(message.get("role") or "user")[:32]}
    content = message.get("content")
    if isinstance(content, str):
        out["content"] = content
    elif isinstance(content, list):
        out["content"] = [p for p in (_clean_part(p) for p in content) if p is not None]
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        out["tool_calls"] = [_tool_call_stub(c) for c in calls if isinstance(c, Mapping)]
    if isinstance(message.get("tool_call_id"), str):
        out["tool_call_id"] = _short(message["tool_call_id"])
    if isinstance(message.get("name"), str):
        out["name"] = _short(message["name"])
    return out


def _clean_part(part: Any) -> dict[str, Any] | None:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, Mapping):
        return None
    kind = str(part.get("type") or "text")[:64]
    if kind in _TEXT_PART_TYPES and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    return {"type": kind}  # image / audio / file: the sidecar counts them, never reads them


def _tool_call_stub(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") if isinstance(call.get("function"), Mapping) else {}
    assert isinstance(function, Mapping)
    return {
        "id": _short(str(call.get("id") or "")),
        "type": "function",
        "function": {"name": _short(str(function.get("name") or ""))},
    }


def responses_items_as_messages(items: Iterable[Any]) -> list[dict[str, Any]]:
    """OpenAI Responses `input` items as chat messages (text, function calls, their outputs)."""
    messages: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        kind = item.get("type")
        if kind == "function_call":
            call = {"id": item.get("call_id"), "function": {"name": item.get("name")}}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": item.get("call_id"),
                    "content": output if isinstance(output, str) else "",
                }
            )
        elif "role" in item:
            messages.append({"role": item["role"], "content": item.get("content")})
    return messages


def _tool_stubs(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        return []
    stubs = []
    for tool in tools:
        if isinstance(tool, Mapping):
            function = tool.get("function") if isinstance(tool.get("function"), Mapping) else tool
            assert isinstance(function, Mapping)
            stubs.append(
                {
                    "type": str(tool.get("type") or "function")[:64],
                    "name": _short(str(function.get("name") or "")),
                }
            )
    return stubs


def candidate(deployment: Mapping[str, Any], facts: Mapping[str, Any]) -> dict[str, Any] | None:
    """A /route candidate for one LiteLLM deployment; None if it has no id to answer with.

    `facts` are cost / context / capability fields from LiteLLM's model info; `model_info`
    may override tier and quality (`routeiq_tier`, `routeiq_quality`)."""
    info = deployment.get("model_info") or {}
    params = deployment.get("litellm_params") or {}
    deployment_id, model = info.get("id"), params.get("model")
    if not isinstance(deployment_id, str) or not deployment_id or not isinstance(model, str) or not model:
        return None
    out: dict[str, Any] = {"deployment_id": _short(deployment_id), "model": _short(model)}
    if isinstance(deployment.get("model_name"), str):
        out["model_group"] = _short(deployment["model_name"])
    provider = params.get("custom_llm_provider") or (model.split("/", 1)[0] if "/" in model else None)
    if isinstance(provider, str):
        out["provider"] = provider[:64]
    out.update(facts)
    for key, field in _CANDIDATE_OVERRIDES.items():
        if key in info:
            out[field] = info[key]
    return out


def _short(value: str) -> str:
    return value[:SHORT]
