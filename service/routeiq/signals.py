"""Structural and content signals: cheap (well under a millisecond), no model involved.

Signals are facts about the request (tools present, tool loop, code, math, language, length);
they never decide on their own. `classify.combine` documents how they adjust the centroid result.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from .extract import PromptView

# Regex scans are bounded so signals stay sub-millisecond whatever was pasted.
_SCAN_CHARS = 8000

_CODE = re.compile(
    r"```|\bdef \w+\(|\bclass \w+[:(]|\bfunction\b|\bimport \w|#include|\bconsole\.log|"
    r"\bSELECT\b.+\bFROM\b|=>|\bpublic static\b|\breturn\b.*;|Traceback \(most recent|"
    r"\b(python|javascript|typescript|java|golang|rust|c\+\+|sql|regex|bash|shell|kotlin|swift|"
    r"html|css|react|django|flask|kubernetes|docker|yaml|json|api|function|script|code|bug|"
    r"compile[rd]?|refactor|unit tests?|stack trace|exception)\b",
    re.IGNORECASE,
)
_MATH = re.compile(
    r"\\frac|\\sum|\\int|\$[^$]+\$|\b\d+\s*[-+*/^×÷=]\s*\d+|\b(solve|equation|integral|derivative|"
    r"probability|theorem|prove|proof|lemma|matrix|polynomial|prime|modulo|compute|calculate|"
    r"how many|percent|ratio|sum of|remainder)\b",
    re.IGNORECASE,
)
_REASONING = re.compile(
    r"\b(step[- ]by[- ]step|reason(ing)?|think (carefully|through)|explain why|justify|derive|"
    r"deduce|logic(al)? puzzle|prove|trade-?offs?|pros and cons|why does|why is|what if|"
    r"compare and contrast|analy[sz]e|evaluate|critique)\b",
    re.IGNORECASE,
)
_AGENTIC = re.compile(
    r"\b(search (the web|online|for)|look up|browse|fetch|call the|use the \w+ tool|run (the|this)|"
    r"execute|send (an? )?(email|message)|book|schedule|create a (ticket|issue|pr)|open a pr|"
    r"deploy|query the|check (my|the) (calendar|inbox|weather|status)|download|upload)\b",
    re.IGNORECASE,
)
_TRANSLATE = re.compile(
    r"\b(translate|translation|traduc\w*|übersetz\w*|tradu\w*|how do you say|in (english|spanish|"
    r"french|german|italian|portuguese|chinese|japanese|korean|russian|arabic))\b|翻[译譯訳]",
    re.IGNORECASE,
)
_STEPS = re.compile(r"(?m)^\s*(?:\d+[.)]|[-*•])\s+\S")
_CONSTRAINTS = re.compile(
    r"\b(must|should not|shouldn't|at least|at most|no more than|exactly|without using|only use|"
    r"constraints?|requirements?|format(ted)? as|in json|in under|within \d+|make sure|ensure|"
    r"edge cases?|complexity|O\(|optimi[sz]e)\b",
    re.IGNORECASE,
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
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


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
    sample = text[:2000]
    letters = [c for c in sample if c.isalpha()]
    if not letters:
        return "und"
    scripts = {"cjk": 0, "kana": 0, "hangul": 0, "cyrillic": 0, "arabic": 0, "other": 0}
    latin = 0
    for c in letters:
        o = ord(c)
        if o < 0x250:
            latin += 1
        elif 0x3040 <= o <= 0x30FF:
            scripts["kana"] += 1
        elif 0x4E00 <= o <= 0x9FFF:
            scripts["cjk"] += 1
        elif 0xAC00 <= o <= 0xD7AF:
            scripts["hangul"] += 1
        elif 0x0400 <= o <= 0x04FF:
            scripts["cyrillic"] += 1
        elif 0x0600 <= o <= 0x06FF:
            scripts["arabic"] += 1
        else:
            scripts["other"] += 1
    if latin < len(letters) * 0.5:
        if scripts["kana"]:
            return "ja"
        top = max(scripts, key=lambda k: scripts[k])
        return {"cjk": "zh", "hangul": "ko", "cyrillic": "ru", "arabic": "ar"}.get(top, "other")
    words = [w.lower() for w in _WORD.findall(sample)]
    english = sum(w in _EN_WORDS for w in words)
    best, best_hits = "en", english
    for lang, vocabulary in _LATIN_LANGS.items():
        hits = sum(w in vocabulary for w in words)
        if hits > best_hits * 1.5 and hits >= 2:
            best, best_hits = lang, hits
    return best


def extract_signals(view: PromptView, tools: int) -> Signals:
    task = view.last_user[:_SCAN_CHARS]
    scan = task if not view.system else task + "\n" + view.system[: _SCAN_CHARS // 4]
    non_ascii = sum(1 for c in view.last_user[:_SCAN_CHARS] if ord(c) > 0x2FF)
    language = detect_language(task or view.system)
    tool_loop = view.last_role in ("tool", "function") or (
        view.last_role == "assistant" and view.tool_calls > 0
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
        agentic=tools > 0 or view.tool_calls > 0 or bool(_AGENTIC.search(task)),
        code=bool(_CODE.search(scan)),
        math=bool(_MATH.search(task)),
        reasoning=bool(_REASONING.search(task)),
        translation=bool(_TRANSLATE.search(task)),
        steps=len(_STEPS.findall(task)),
        constraints=len(_CONSTRAINTS.findall(task)),
        questions=task.count("?") + task.count("？"),
        language=language,
        non_english=language not in ("en", "und"),
        images=view.images,
    )
