"""Structural and content signals: cheap (well under a millisecond), no model involved.

Signals are facts about the request (tools present, tool loop, code, math, language, length);
they never decide on their own. The `routeiq.decision.classify` docstring gives the rule by which
they adjust the centroid result.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from routeiq.decision.prompt import PromptView

# Scans are bounded (head and tail of the task) so signals stay well under a millisecond
# whatever was pasted. Matching is word-set membership and plain substring search: a single
# IGNORECASE regex with large alternations cost ~0.4 ms per 1.5 KB here; this costs ~0.03 ms.
_HEAD_CHARS, _TAIL_CHARS = 3000, 1000

_WORDS = re.compile(r"[a-z][a-z0-9_+#]*")
_CODE_WORDS = frozenset(
    "python javascript typescript java golang rust c++ sql regex bash shell kotlin swift html css "
    "react django flask kubernetes docker yaml json api function functions script code bug compile "
    "compiler refactor unittest pytest exception traceback stacktrace endpoint repo dockerfile "
    "npm pip git linter segfault".split()
)
_CODE_MARKS = (
    "```",
    "def ",
    "#include",
    "console.log",
    "=>",
    "public static",
    "();",
    "};",
    "import ",
    "select ",
    "traceback (most recent",
    "unit test",
    "stack trace",
)
_MATH_WORDS = frozenset(
    "solve equation equations integral derivative probability theorem prove proof lemma matrix "
    "polynomial prime primes modulo compute calculate percent percentage ratio remainder "
    "algebra geometry triangle factorial logarithm sqrt".split()
)
_MATH_PATTERN = re.compile(r"\\frac|\\sum|\\int|\$[^$\n]{1,80}\$|\d\s*[-+*/^×÷=]\s*\d|how many|sum of")
_REASONING_WORDS = frozenset(
    "reason reasoning justify derive deduce prove analyze analyse evaluate critique tradeoff "
    "tradeoffs".split()
)
_REASONING_PHRASES = (
    "step by step",
    "step-by-step",
    "think carefully",
    "think through",
    "explain why",
    "logic puzzle",
    "pros and cons",
    "trade-off",
    "what if",
    "compare and contrast",
)
_AGENTIC_PHRASES = (
    "search the web",
    "search online",
    "search for",
    "look up",
    "browse",
    "fetch ",
    "call the ",
    "use the ",
    "run the ",
    "run this",
    "execute",
    "send an email",
    "send a message",
    "send email",
    "book a",
    "book me",
    "schedule",
    "create a ticket",
    "open a pr",
    "create an issue",
    "deploy",
    "query the",
    "check my",
    "check the weather",
    "download",
    "upload",
    "my calendar",
    "my inbox",
)
_TRANSLATE_WORDS = frozenset(
    "translate translation translating traduce traduire traduza tradurre übersetze übersetzen".split()
)
_TRANSLATE_PHRASES = (
    "how do you say",
    "in english",
    "in spanish",
    "in french",
    "in german",
    "in italian",
    "in portuguese",
    "in chinese",
    "in japanese",
    "in korean",
    "in russian",
    "in arabic",
    "翻译",
    "翻譯",
    "翻訳",
    "traduc",
)
# An explicit instruction in the opening words names the task outright ("summarize this: …",
# "translate into French: …", "tl;dr"). Checked on the first characters only: a pasted text that
# merely mentions a summary must not trigger it.
_INTENT_CHARS = 80
_INTENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "summarization",
        (
            "summarize",
            "summarise",
            "summary of",
            "sum up",
            "sum this up",
            "tl;dr",
            "tldr",
            "key takeaways",
            "recap ",
            "condense",
            "resum",
            "zusammenfass",
            "fasse ",
            "总结",
            "概括",
            "要約",
            "まとめ",
        ),
    ),
    ("translation", ("translate", "traduce", "traduis", "traduza", "tradu", "übersetze", "翻译", "翻訳")),
)
_STEPS = re.compile(r"(?m)^\s*(?:\d+[.)]|[-*•])\s+\S")
_CONSTRAINT_WORDS = frozenset(
    "must exactly constraint constraints requirement requirements ensure optimize optimise complexity".split()
)
_CONSTRAINT_PHRASES = (
    "should not",
    "shouldn't",
    "at least",
    "at most",
    "no more than",
    "without using",
    "only use",
    "format as",
    "formatted as",
    "in json",
    "in under",
    "make sure",
    "edge case",
    "o(",
)
_EN_WORDS = frozenset(
    "the a an and is are of to in for on with this that what how why can you please "
    "it be i my me your do does write give make ".split()
)
_LATIN_LANGS: dict[str, frozenset[str]] = {
    "es": frozenset("el la los las de que y en un una por para con es cómo qué escribe dame ".split()),
    "fr": frozenset("le la les des de et est un une pour avec dans que qui comment écris pas ".split()),
    "de": frozenset("der die das und ist nicht ein eine mit für auf wie ich schreibe bitte ".split()),
    "pt": frozenset("o a os as de que e em um uma para com não como você escreva ".split()),
    "it": frozenset("il lo la gli le di che e un una per con non come scrivi sono ".split()),
}
_LATIN_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_SCRIPTS = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
)


@dataclass(frozen=True)
class Signals:
    approx_tokens: int  # estimated prompt tokens of the whole request (context-window filter)
    task_tokens: int  # estimated tokens of the last user turn
    messages: int
    user_turns: int
    has_system: bool
    tools: int
    tool_loop: bool  # the conversation is inside a tool-call loop (tool result last, or pending call)
    tool_results: int
    agentic: bool
    code: bool
    math: bool
    reasoning: bool
    translation: bool
    intent: str | None  # a category named outright by the task's opening words
    steps: int  # enumerated items in the task
    constraints: int  # constraint markers in the task
    questions: int
    language: str
    non_english: bool
    images: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def estimate_tokens(chars: int, non_ascii: int = 0) -> int:
    """~4 chars per token for Latin text; CJK and other scripts run near a token per char."""
    return (chars - non_ascii) // 4 + non_ascii + (1 if chars else 0)


def detect_language(text: str) -> str:
    sample = text[:600].lower()
    words = _LATIN_WORD.findall(sample)
    if not words:
        return "und"
    if not sample.isascii():
        letters = sum(len(w) for w in words)
        counts = [(len(rx.findall(sample)), lang) for lang, rx in _SCRIPTS]
        best, lang = max(counts)
        if lang != "ja" and counts[0][0]:
            best, lang = counts[0][0] + best, "ja"  # kana means Japanese even among kanji
        if best >= letters * 0.3:
            return lang
    vocabulary = set(words)
    english = len(vocabulary & _EN_WORDS)
    chosen, hits_best = "en", english
    for lang, stopwords in _LATIN_LANGS.items():
        hits = len(vocabulary & stopwords)
        if hits > hits_best * 1.5 and hits >= 2:
            chosen, hits_best = lang, hits
    if chosen == "en" and english == 0 and not sample.isascii():
        return "other"
    return chosen


def _intent(lower: str) -> str | None:
    opening = lower.lstrip()[:_INTENT_CHARS]
    for category, markers in _INTENTS:
        if _any_in(opening, markers):
            return category
    return None


def _bounded(text: str) -> str:
    if len(text) <= _HEAD_CHARS + _TAIL_CHARS:
        return text
    return text[:_HEAD_CHARS] + "\n" + text[-_TAIL_CHARS:]


def _any_in(text: str, phrases: tuple[str, ...]) -> bool:
    return any(p in text for p in phrases)


def _count_in(text: str, phrases: tuple[str, ...]) -> int:
    return sum(text.count(p) for p in phrases)


def extract_signals(view: PromptView, tools: int) -> Signals:
    task = _bounded(view.last_user)
    lower = task.lower()
    word_list = _WORDS.findall(lower)
    words = set(word_list)
    system_lower = view.system[:1000].lower()
    system_words = set(_WORDS.findall(system_lower)) if system_lower else set()
    non_ascii = 0 if view.last_user.isascii() else sum(1 for c in task if ord(c) > 0x2FF)
    language = detect_language(task or view.system)
    tool_loop = view.last_role in ("tool", "function") or (
        view.last_role == "assistant" and view.tool_calls > 0
    )
    code = (
        not words.isdisjoint(_CODE_WORDS)
        or _any_in(task, _CODE_MARKS)
        or _any_in(lower, _CODE_MARKS)
        or not system_words.isdisjoint(_CODE_WORDS)
    )
    return Signals(
        approx_tokens=estimate_tokens(view.total_chars, non_ascii) + 4 * view.messages,
        task_tokens=estimate_tokens(len(view.last_user), non_ascii),
        messages=view.messages,
        user_turns=view.user_turns,
        has_system=bool(view.system),
        tools=tools,
        tool_loop=tool_loop,
        tool_results=view.tool_results,
        agentic=tools > 0 or view.tool_calls > 0 or _any_in(lower, _AGENTIC_PHRASES),
        code=code,
        math=not words.isdisjoint(_MATH_WORDS) or bool(_MATH_PATTERN.search(lower)),
        reasoning=not words.isdisjoint(_REASONING_WORDS) or _any_in(lower, _REASONING_PHRASES),
        translation=not words.isdisjoint(_TRANSLATE_WORDS) or _any_in(lower, _TRANSLATE_PHRASES),
        intent=_intent(lower),
        steps=len(_STEPS.findall(task)),
        constraints=sum(map(_CONSTRAINT_WORDS.__contains__, word_list))
        + _count_in(lower, _CONSTRAINT_PHRASES),
        questions=task.count("?") + task.count("？"),
        language=language,
        non_english=language not in ("en", "und"),
        images=view.images,
    )
