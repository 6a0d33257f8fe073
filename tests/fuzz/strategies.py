"""Hypothesis strategies for hostile requests: right shapes with wrong values, wrong shapes,
unencodable and control text, huge and non-finite numbers, deep nesting. Built by hand (not
from the OpenAPI schema) so they generate in well under a millisecond and go where schemathesis
does not: lone surrogates, NaN, 10^30, 40-deep lists."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Text from every corner: surrogates (Cs), controls (Cc), format chars (Cf: RTL marks, ZWJ),
# combining marks, CJK, emoji, plus words the signal detectors look for.
_ALPHABET = st.characters(categories=["Cs", "Cc", "Cf", "Mn", "Lu", "Ll", "Lo", "Nd", "Po", "Sm", "So", "Zs"])
_WORDS = st.sampled_from(
    [
        "def f(x):",
        "prove that",
        "step by step",
        "```python",
        "translate to French",
        "2+2=",
        "SELECT *",
        "hi",
        "bonjour",
        "你好",
        "🙂",
        "\u202e",
        "\x00",
        "\ud800",
        "tool",
        "{",
        "}",
        "\\",
        "\n" * 3,
    ]
)
text = st.one_of(
    st.text(_ALPHABET, max_size=40),
    st.lists(_WORDS, max_size=12).map(" ".join),
    st.builds(lambda w, n: w * n, _WORDS, st.integers(1, 400)),
)
numbers = st.one_of(
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 1e308, -0.0, 0.5]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)


def nested(depth: int) -> Any:
    value: Any = "deep"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


deep = st.integers(1, 60).map(nested)
anything = st.one_of(json_values, deep)

content_part = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(["text", "image_url", "input_audio", "file"]), text)},
    optional={"text": st.one_of(text, anything), "image_url": anything, "extra": anything},
)
message = st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(["user", "system", "assistant", "tool", "developer"]), text)},
    optional={
        "content": st.one_of(text, st.none(), st.lists(content_part, max_size=4), anything),
        "tool_calls": st.one_of(st.lists(st.dictionaries(text, anything, max_size=3), max_size=3), anything),
        "tool_call_id": st.one_of(text, anything),
        "name": st.one_of(text, anything),
    },
)
candidate = st.fixed_dictionaries(
    {
        "deployment_id": st.one_of(text, anything),
        "model": st.one_of(st.sampled_from(["gpt-4o", "x/y"]), text),
    },
    optional={
        "model_group": text,
        "provider": text,
        "tier": st.one_of(st.sampled_from(["budget", "mid", "premium"]), text),
        "input_cost_per_mtok": numbers,
        "output_cost_per_mtok": numbers,
        "quality": numbers,
        "max_input_tokens": numbers,
        "supports_tools": st.one_of(st.booleans(), anything),
        "supports_vision": st.booleans(),
        "supports_reasoning": st.booleans(),
    },
)
route_request = st.fixed_dictionaries(
    {},
    optional={
        "messages": st.one_of(st.lists(message, max_size=6), anything),
        "prompt": st.one_of(text, st.lists(text, max_size=3), anything),
        "input": st.one_of(text, st.lists(text, max_size=3)),
        "model": st.one_of(st.sampled_from(["auto", "gpt-4o-mini", "claude"]), text, anything),
        "tools": st.one_of(st.lists(st.dictionaries(text, anything, max_size=3), max_size=4), anything),
        "candidates": st.one_of(st.lists(candidate, max_size=5), anything),
        "profile": st.one_of(st.sampled_from(["auto", "eco", "premium", "free", "reasoning"]), text),
        "session_id": text,
        "user": text,
        "team": text,
        "key_alias": text,
        "metadata": anything,
        "explain": st.one_of(st.booleans(), anything),
        "unknown_field": anything,
    },
)

# Well-typed requests with hostile values: these get past the schema and exercise limits,
# signals, the embedder, the catalog and the policy.
_short = st.text(_ALPHABET, min_size=1, max_size=20)
good_part = st.fixed_dictionaries({"type": st.just("text"), "text": text})
good_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "user", "system", "assistant", "tool"]),
        "content": st.one_of(text, st.lists(good_part, min_size=1, max_size=3)),
    },
    optional={"tool_calls": st.lists(st.dictionaries(_short, json_values, max_size=3), max_size=2)},
)
good_candidate = st.fixed_dictionaries(
    {"deployment_id": _short, "model": st.one_of(st.sampled_from(["gpt-4o", "gpt-4o-mini", "x/y"]), _short)},
    optional={
        "tier": st.sampled_from(["budget", "mid", "premium"]),
        "input_cost_per_mtok": st.floats(0, 1e6),
        "output_cost_per_mtok": st.floats(0, 1e6),
        "quality": st.floats(0, 1),
        "max_input_tokens": st.integers(1, 100_000_000),
        "supports_tools": st.booleans(),
        "supports_vision": st.booleans(),
    },
)
_good_optional = {
    "model": st.sampled_from(["auto", "gpt-4o-mini", "claude", "unknown-model"]),
    "tools": st.lists(st.dictionaries(_short, json_values, max_size=3), max_size=3),
    "candidates": st.lists(good_candidate, min_size=1, max_size=5, unique_by=lambda c: c["deployment_id"]),
    "profile": st.sampled_from(["auto", "eco", "premium", "free", "reasoning"]),
    "session_id": _short,
    "team": _short,
    "metadata": st.dictionaries(_short, json_values, max_size=3),
    "explain": st.booleans(),
}
good_request = st.one_of(
    st.fixed_dictionaries(
        {"messages": st.lists(good_message, min_size=1, max_size=6)}, optional=_good_optional
    ),
    st.fixed_dictionaries(
        {"prompt": st.one_of(text, st.lists(text, min_size=1, max_size=3))}, optional=_good_optional
    ),
    st.fixed_dictionaries({"input": text}, optional=_good_optional),
)
# Mostly well-typed; often wrong-typed; sometimes not an object at all.
route_body = st.one_of(good_request, good_request, good_request, route_request, anything)
outcome = st.fixed_dictionaries(
    {"deployment_id": st.one_of(text, anything), "success": st.one_of(st.booleans(), anything)},
    optional={"latency_ms": numbers, "quality": numbers, "error_class": text, "model": text},
)
feedback_body = st.one_of(
    st.fixed_dictionaries({"outcomes": st.one_of(st.lists(outcome, max_size=4), anything)}), anything
)
