"""Request limits and text hygiene, applied to a parsed request before any work is done on it.

The body-size limit (middleware) bounds bytes; these bound what a body can hold once parsed —
counts, text lengths, JSON nesting — so no single request costs more than the operator allows.
Each violation names the setting and the limit: a 413 for "too much", a 422 for nesting.

Text that cannot be encoded (lone UTF-16 surrogates, which JSON allows as `\\ud800` escapes) is
repaired to U+FFFD here, once, so the tokenizer, the cache key and the logs never see it.
"""

from __future__ import annotations

from typing import Any

from routeiq.decision.schemas import ContentPart, Message, RouteRequest
from routeiq.errors import InvalidRequest, PayloadTooLarge
from routeiq.settings import Settings


def enforce(request: RouteRequest, settings: Settings, *, prefix: str = "") -> None:
    """Raise on the first limit `request` exceeds; repair unencodable text in place."""
    _count(request.messages, settings.max_messages, "max_messages", f"{prefix}messages")
    _count(request.candidates, settings.max_candidates, "max_candidates", f"{prefix}candidates")
    _count(request.tools, settings.max_tools, "max_tools", f"{prefix}tools")
    total = 0
    if request.messages is not None:
        for index, message in enumerate(request.messages):
            field = f"{prefix}messages.{index}.content"
            if isinstance(message.content, list):
                _count(message.content, settings.max_content_parts, "max_content_parts", field)
            total += _message_chars(message, settings, field)
            _check_total(total, settings, prefix)
    for name in ("prompt", "input"):
        value = getattr(request, name)
        items = [value] if isinstance(value, str) else list(value or [])
        for index, text in enumerate(items):
            field = f"{prefix}{name}" if isinstance(value, str) else f"{prefix}{name}.{index}"
            _check_chars(len(text), settings, field)
            total += len(text)
            _check_total(total, settings, prefix)
        if isinstance(value, str):
            setattr(request, name, scrub(value))
        elif value is not None:
            setattr(request, name, [scrub(t) for t in value])
    _check_depth(request, settings, prefix)


def scrub(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD (cheap when there are none)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _message_chars(message: Message, settings: Settings, field: str) -> int:
    content = message.content
    if content is None:
        return 0
    if isinstance(content, str):
        _check_chars(len(content), settings, field)
        message.content = scrub(content)
        return len(content)
    chars = sum(len(part.text) for part in content if part.text is not None)
    _check_chars(chars, settings, field)
    for part in content:
        if part.text is not None:
            part.text = scrub(part.text)
    return chars


def _count(items: list[Any] | None, limit: int, setting: str, field: str) -> None:
    if items is not None and len(items) > limit:
        raise PayloadTooLarge(
            f"{field} has {len(items)} items; at most {limit} are accepted ({_env(setting)})",
            field=field,
            limit=limit,
        )


def _check_chars(chars: int, settings: Settings, field: str) -> None:
    limit = settings.max_message_chars
    if chars > limit:
        raise PayloadTooLarge(
            f"{field} holds {chars} characters of text; at most {limit} are accepted "
            f"({_env('max_message_chars')})",
            field=field,
            limit=limit,
        )


def _check_total(total: int, settings: Settings, prefix: str) -> None:
    limit = settings.max_total_chars
    if total > limit:
        field = prefix.rstrip(".") or "body"
        raise PayloadTooLarge(
            f"the request holds more than {limit} characters of text ({_env('max_total_chars')})",
            field=field,
            limit=limit,
        )


def _check_depth(request: RouteRequest, settings: Settings, prefix: str) -> None:
    """Free-form JSON (metadata, tools, tool calls, extra message fields) nested at most
    `max_json_depth` deep. Walked iteratively: a deep document cannot exhaust the stack."""
    roots: list[tuple[str, Any]] = [("metadata", request.metadata), ("tools", request.tools)]
    for index, message in enumerate(request.messages or ()):
        roots.append((f"messages.{index}", _extras(message)))
        if isinstance(message.content, list):
            roots.extend(
                (f"messages.{index}.content.{j}", _extras(part)) for j, part in enumerate(message.content)
            )
    limit = settings.max_json_depth
    for field, root in roots:
        if root is not None and _depth_exceeds(root, limit):
            raise InvalidRequest(
                f"{prefix}{field} is nested more than {limit} levels deep ({_env('max_json_depth')})",
                field=f"{prefix}{field}",
                limit=limit,
            )


def _extras(model: Message | ContentPart) -> dict[str, Any]:
    extra = dict(model.model_extra or {})
    if isinstance(model, Message) and model.tool_calls is not None:
        extra["tool_calls"] = model.tool_calls
    return extra


def _depth_exceeds(root: Any, limit: int) -> bool:
    """True when containers (objects, arrays) nest deeper than `limit`; scalars add no level."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _env(setting: str) -> str:
    return f"ROUTEIQ_{setting.upper()}"
