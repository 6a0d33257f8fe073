"""Signals are cheap structural facts; each one here is checked both ways."""

from __future__ import annotations

from routeiq.decision.prompt import embed_segments, view_of
from routeiq.decision.schemas import RouteRequest
from routeiq.decision.signals import Signals, detect_language, extract_signals


def signals_of(**body: object) -> Signals:
    request = RouteRequest.model_validate(body)
    return extract_signals(view_of(request), len(request.tools or ()))


def test_plain_chat_has_no_special_signals() -> None:
    s = signals_of(prompt="hi, how are you?")
    assert not (s.code or s.math or s.agentic or s.tool_loop or s.translation)
    assert s.language == "en" and not s.non_english
    assert s.task_tokens < 10


def test_code_math_reasoning_translation() -> None:
    assert signals_of(prompt="Fix this:\n```python\ndef f(x): return x+\n```").code
    assert signals_of(prompt="Solve the equation 3x + 5 = 20").math
    assert signals_of(prompt="Think step by step and explain why the sky is blue").reasoning
    assert signals_of(prompt="Translate 'good morning' into German").translation


def test_tool_loop_detection() -> None:
    messages = [
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "type": "function"}]},
        {"role": "tool", "tool_call_id": "1", "content": '{"temp": 18}'},
    ]
    s = signals_of(messages=messages, tools=[{"type": "function", "function": {"name": "weather"}}])
    assert s.tool_loop and s.agentic and s.tools == 1 and s.tool_results == 1
    s2 = signals_of(messages=messages[:1])
    assert not s2.tool_loop


def test_languages() -> None:
    assert detect_language("Escribe una función en Python que ordene una lista de números") == "es"
    assert detect_language("Écris une fonction qui trie une liste pour moi, avec des tests") == "fr"
    assert detect_language("Schreibe bitte eine Funktion, die eine Liste sortiert und ist schnell") == "de"
    assert detect_language("请帮我写一个排序函数") == "zh"
    assert detect_language("ソート関数を書いてください") == "ja"
    assert detect_language("Write a function that sorts a list") == "en"
    assert detect_language("12345 !!!") == "und"


def test_tool_results_are_not_embedded_and_last_user_turn_comes_first() -> None:
    request = RouteRequest.model_validate(
        {
            "messages": [
                {"role": "system", "content": "You are a coding agent."},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "an answer"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "now refactor it"},
                        {"type": "image_url", "image_url": {"url": "x"}},
                    ],
                },
                {"role": "tool", "content": "SECRET TOOL OUTPUT " * 100},
            ]
        }
    )
    view = view_of(request)
    segments = embed_segments(view, 128)
    assert segments == ["now refactor it", "You are a coding agent.", "first question"]
    assert view.images == 1 and view.tool_results == 1
    assert all("SECRET" not in s for s in segments)


def test_long_documents_are_trimmed_head_and_tail() -> None:
    doc = "Summarize this report.\n" + ("filler text " * 5000) + "\nEnd with three bullets."
    view = view_of(RouteRequest(prompt=doc))
    (segment,) = embed_segments(view, 64)
    assert segment.startswith("Summarize this report.") and segment.endswith("three bullets.")
    assert len(segment) < 64 * 6 + 10
    s = extract_signals(view, 0)
    assert s.task_tokens > 10_000  # length is still known to signals and the context filter


def test_explicit_intent_in_the_opening_words_only() -> None:
    assert (
        signals_of(prompt="summarize this in 2 sentences\n\nHi all, the office move...").intent
        == "summarization"
    )
    assert signals_of(prompt="tl;dr: the meeting moved to 3pm").intent == "summarization"
    assert signals_of(prompt="Translate into French: where is the station?").intent == "translation"
    assert signals_of(prompt="请帮我总结这篇文章的主要观点").intent == "summarization"
    late = (
        "Write a poem about autumn leaves and quiet rivers in the evening light. " * 2 + "Then summarize it."
    )
    assert signals_of(prompt=late).intent is None
    assert signals_of(prompt="hi, how are you?").intent is None
