"""Request bodies for the load tests, built from bench/data so every run sends the same traffic.

Workloads (each a list of /route JSON bodies, deterministic for a seed):
- `short32`: single prompts cut to exactly 32 tokens (the headline throughput workload);
- `mixed`:   45% short chat, 15% long documents (1-4k words, summarise/analyse), 20% agent
             tool loops (system prompt + tools + tool calls/results), 20% code questions;
- `repeat`:  what an agent gateway really sends over and over — a few conversations whose
             turns come back (session affinity) and a small pool of repeated prompts
             (embedding cache hits);
- `cached32`: 64 of the short32 prompts over and over: every decision is an embedding cache hit.

`raw_segments` gives, for each body, exactly the text the service embeds, so the raw ONNX
baseline runs on the same inputs as the service.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from routeiq.decision.prompt import embed_segments, view_of
from routeiq.decision.schemas import RouteRequest
from routeiq.inference.embedder import OnnxEmbedder

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ("short32", "mixed", "repeat", "cached32")

_SYSTEM_AGENT = (
    "You are a coding agent working in a repository. Use the tools to read files, run tests "
    "and edit code. Think before each call and stop when the tests pass."
)
_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name.replace('_', ' ')} in the workspace",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    }
    for name in ("read_file", "run_tests", "apply_patch", "search_code")
]


def labelled() -> list[dict[str, str]]:
    lines = (ROOT / "bench/data/labelled_prompts.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def prompts_of_length(embedder: OnnxEmbedder, tokens: int, count: int) -> list[str]:
    """`count` real prompts cut to exactly `tokens` tokens (long prompts first, then windows
    over the concatenation of all prompts, so every text is distinct)."""
    tokenizer = embedder._tokenizer
    stream: list[int] = []
    out: list[str] = []
    for row in labelled():
        ids = tokenizer.encode(row["prompt"], add_special_tokens=False).ids
        stream.extend(ids)
        if len(ids) >= tokens and len(out) < count:
            out.append(tokenizer.decode(ids[:tokens]))
    start = 0
    while len(out) < count:
        window = stream[start : start + tokens]
        text = tokenizer.decode(window)
        # decode/encode round trips can merge word pieces: keep only texts that stay `tokens` long
        if len(tokenizer.encode(text, add_special_tokens=False).ids) == tokens:
            out.append(text)
        start = (start + 7) % max(len(stream) - tokens, 1)
    return out


def _document(rng: random.Random, rows: list[dict[str, str]], words: int) -> str:
    parts: list[str] = []
    while sum(len(p.split()) for p in parts) < words:
        parts.append(rng.choice(rows)["prompt"])
    return "\n\n".join(parts)


def _agent_conversation(rng: random.Random, rows: list[dict[str, str]], turns: int) -> dict[str, Any]:
    task = rng.choice([r for r in rows if r["category"] in ("code_generation", "tool_use")])["prompt"]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": _SYSTEM_AGENT},
        {"role": "user", "content": task},
    ]
    for turn in range(turns):
        call_id = f"call_{turn}"
        tool = rng.choice(_TOOLS)["function"]["name"]
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": tool, "arguments": json.dumps({"path": f"src/mod{turn}.py"})},
                    }
                ],
            }
        )
        result = _document(rng, rows, rng.randint(40, 400))
        messages.append({"role": "tool", "tool_call_id": call_id, "content": result})
    return {"messages": messages, "tools": _TOOLS, "model": "auto"}


def _chat(rng: random.Random, rows: list[dict[str, str]]) -> dict[str, Any]:
    row = rng.choice([r for r in rows if r["category"] != "code_generation"])
    return {"messages": [{"role": "user", "content": row["prompt"]}], "model": "auto"}


def _code(rng: random.Random, rows: list[dict[str, str]]) -> dict[str, Any]:
    row = rng.choice([r for r in rows if r["category"] == "code_generation"])
    return {"messages": [{"role": "user", "content": row["prompt"]}], "model": "auto"}


def _long(rng: random.Random, rows: list[dict[str, str]]) -> dict[str, Any]:
    ask = rng.choice(
        ["Summarise the following document in five bullet points:", "What are the main risks in this report?"]
    )
    text = f"{ask}\n\n{_document(rng, rows, rng.randint(1000, 4000))}"
    return {"messages": [{"role": "user", "content": text}], "model": "auto"}


def bodies(workload: str, embedder: OnnxEmbedder, count: int = 256, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = labelled()
    if workload == "short32":
        return [{"prompt": p, "model": "auto"} for p in prompts_of_length(embedder, 32, count)]
    if workload == "mixed":
        kinds = rng.choices(["chat", "long", "agent", "code"], weights=[45, 15, 20, 20], k=count)
        makers = {"chat": _chat, "long": _long, "code": _code}
        return [
            _agent_conversation(rng, rows, rng.randint(1, 6)) if kind == "agent" else makers[kind](rng, rows)
            for kind in kinds
        ]
    if workload == "repeat":
        # 8 agent conversations replayed turn by turn (the same opening -> session affinity)
        # and 32 repeated short prompts (embedding cache): a pool the cache holds entirely.
        conversations = [_agent_conversation(rng, rows, 6) for _ in range(8)]
        replay = []
        for conv in conversations:
            for turn in range(1, 7):
                replay.append({**conv, "messages": conv["messages"][: 2 + 2 * turn]})
        prompts = [_chat(rng, rows) if i % 2 else _code(rng, rows) for i in range(32)]
        pool = replay + prompts
        return [pool[i % len(pool)] for i in range(count)]
    if workload == "cached32":
        pool = [{"prompt": p, "model": "auto"} for p in prompts_of_length(embedder, 32, 64)]
        return [pool[i % len(pool)] for i in range(count)]
    raise ValueError(f"unknown workload {workload!r}; expected one of {WORKLOADS}")


def raw_segments(body: dict[str, Any], budget: int) -> list[str]:
    """Exactly the text segments the service embeds for this body."""
    return embed_segments(view_of(RouteRequest.model_validate(body)), budget)


def load_mix(embedder: OnnxEmbedder, count: int, budget: int) -> list[list[str]]:
    return [raw_segments(b, budget) for b in bodies("mixed", embedder, count)]
