"""From a request to the text that decides the route.

`PromptView` is the normalised conversation: the last user turn (the task), the system prompt,
earlier user turns, tool traffic and sizes. `embed_segments` picks, in priority order, what the
embedder sees; tool results and assistant turns are never embedded (signals summarise them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from routeiq.decision.schemas import ContentPart, Message, RouteRequest

# Characters kept per segment before tokenising: generous for the token budget (~4 chars per
# token in English) but bounded, so a pasted 1 MB document costs no more to tokenise than 4 KB.
_CHARS_PER_TOKEN = 6


@dataclass
class PromptView:
    last_user: str = ""
    system: str = ""
    earlier_user: list[str] = field(default_factory=list)  # newest first
    assistant_chars: int = 0
    tool_result_chars: int = 0
    tool_results: int = 0
    tool_calls: int = 0
    images: int = 0
    messages: int = 0
    user_turns: int = 0
    last_role: str = "user"
    total_chars: int = 0


def _content_text(content: str | list[ContentPart] | None) -> tuple[str, int]:
    """Text of a message and how many non-text (image/audio/file) parts it carries."""
    if content is None:
        return "", 0
    if isinstance(content, str):
        return content, 0
    texts: list[str] = []
    media = 0
    for part in content:
        if part.text is not None:
            texts.append(part.text)
        elif part.type != "text":
            media += 1
    return "\n".join(texts), media


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def view_of(request: RouteRequest) -> PromptView:
    view = PromptView()
    if request.messages is None:
        texts = [t for t in _as_list(request.prompt) + _as_list(request.input) if t]
        view.messages = len(texts)
        view.user_turns = len(texts)
        if texts:
            view.last_user = texts[-1]
            view.earlier_user = texts[-2::-1]
        view.total_chars = sum(len(t) for t in texts)
        return view
    return _view_of_messages(request.messages, view)


def _view_of_messages(messages: list[Message], view: PromptView) -> PromptView:
    view.messages = len(messages)
    user_texts: list[str] = []
    for message in messages:
        text, media = _content_text(message.content)
        view.images += media
        view.total_chars += len(text)
        role = message.role
        if role in ("system", "developer"):
            if not view.system:
                view.system = text
        elif role == "user":
            user_texts.append(text)
        elif role in ("tool", "function"):
            view.tool_results += 1
            view.tool_result_chars += len(text)
        else:
            view.assistant_chars += len(text)
            if message.tool_calls:
                view.tool_calls += len(message.tool_calls)
    view.last_role = messages[-1].role
    view.user_turns = len(user_texts)
    non_empty = [t for t in user_texts if t.strip()]
    if non_empty:
        view.last_user = non_empty[-1]
        view.earlier_user = non_empty[-2::-1]
    return view


def _trim(text: str, max_chars: int) -> str:
    text = text.strip()
    if len(text) <= max_chars:
        return text
    head = max_chars * 3 // 4
    return text[:head] + " … " + text[len(text) - (max_chars - head) :]


def embed_segments(view: PromptView, budget: int, *, earlier_turns: int = 2) -> list[str]:
    """Segments to embed, most important first: the task, then system prompt, then context."""
    max_chars = budget * _CHARS_PER_TOKEN
    ordered = [view.last_user, view.system, *view.earlier_user[:earlier_turns]]
    return [_trim(t, max_chars) for t in ordered if t and t.strip()]
