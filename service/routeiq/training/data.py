"""Training data: prompts with per-model quality scores.

Accepted (docs/training.md): JSONL, one object per line, or a JSON array of objects, each with
- the prompt: `prompt` (string), `question` (the dcrouter files' name for it) or `messages`
  (OpenAI chat messages, extracted exactly as POST /route extracts them);
- `scores`: {model name: quality in [0, 1]}; a row may score only some models (missing = unknown,
  not zero).

Rows are keyed by the text the service would embed (whitespace-collapsed, case-folded), so
`dedupe` and `exclude` compare what the router actually sees.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from routeiq.decision.prompt import embed_segments, view_of
from routeiq.decision.schemas import RouteRequest
from routeiq.errors import InvalidRequest


@dataclass(frozen=True)
class Example:
    request: RouteRequest
    segments: tuple[str, ...]
    scores: dict[str, float]

    @property
    def key(self) -> str:
        return " ".join(" ".join(self.segments).split()).casefold()


def _request(row: dict[str, Any], where: str) -> RouteRequest:
    body: dict[str, Any]
    if "messages" in row:
        body = {"messages": row["messages"]}
    elif "prompt" in row or "question" in row:
        body = {"prompt": row.get("prompt", row.get("question"))}
    else:
        raise InvalidRequest(f"{where}: needs 'prompt', 'question' or 'messages'", field="prompt")
    try:
        return RouteRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest(f"{where}: invalid prompt: {exc.errors()[0]['msg']}", field="prompt") from exc


def _scores(row: dict[str, Any], where: str) -> dict[str, float]:
    raw = row.get("scores")
    if not isinstance(raw, dict) or not raw:
        raise InvalidRequest(f"{where}: 'scores' must be a non-empty object", field="scores")
    scores: dict[str, float] = {}
    for model, value in raw.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            raise InvalidRequest(f"{where}: score for {model!r} must be a number in [0, 1]", field="scores")
        scores[str(model)] = float(value)
    return scores


def _rows(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        data = json.loads(text)
        for index, row in enumerate(data):
            yield f"{path}[{index}]", row
        return
    # "\n" only: str.splitlines() also breaks on U+2028, U+0085 and others, which JSON allows
    # unescaped inside a string (json.loads ignores the "\r" of a CRLF line).
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield f"{path}:{number}", json.loads(line)


def load_examples(path: Path, budget: int, *, scores: bool = True) -> list[Example]:
    """Every row of `path`, with the text segments the service would embed under `budget`.
    With `scores=False` (a traffic sample for calibration) rows need only the prompt."""
    examples: list[Example] = []
    try:
        for where, row in _rows(path):
            if not isinstance(row, dict):
                raise InvalidRequest(f"{where}: each row must be an object", field="row")
            request = _request(row, where)
            segments = tuple(embed_segments(view_of(request), budget))
            if not segments:
                raise InvalidRequest(f"{where}: the prompt has no text", field="prompt")
            scored = _scores(row, where) if scores or "scores" in row else {}
            examples.append(Example(request, segments, scored))
    except OSError as exc:
        raise InvalidRequest(f"cannot read training data {path}: {exc}", field="data") from exc
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{path} is neither JSONL nor a JSON array: {exc}", field="data") from exc
    if not examples:
        raise InvalidRequest(f"{path} holds no rows", field="data")
    return examples


def dedupe(examples: Sequence[Example]) -> list[Example]:
    """First occurrence of each prompt wins (a prompt twice would leak into its own neighbours)."""
    seen: set[str] = set()
    out: list[Example] = []
    for example in examples:
        if example.key not in seen:
            seen.add(example.key)
            out.append(example)
    return out


def exclude(examples: Sequence[Example], held_out: Sequence[Example]) -> list[Example]:
    """Drop every example whose prompt is also in `held_out` (split by prompt: none in both)."""
    banned = {e.key for e in held_out}
    return [e for e in examples if e.key not in banned]


def model_names(examples: Sequence[Example]) -> list[str]:
    """Models in order of first appearance (stable output order for the graph)."""
    names: dict[str, None] = {}
    for example in examples:
        for model in example.scores:
            names.setdefault(model, None)
    return list(names)


def score_matrix(
    examples: Sequence[Example], models: Sequence[str]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Scores [n, models] (0 where unknown) and the mask of known entries."""
    scores = np.zeros((len(examples), len(models)), dtype=np.float32)
    mask = np.zeros_like(scores)
    column = {m: i for i, m in enumerate(models)}
    for row, example in enumerate(examples):
        for model, value in example.scores.items():
            if model in column:
                scores[row, column[model]] = value
                mask[row, column[model]] = 1.0
    return scores, mask


def data_hash(examples: Sequence[Example]) -> str:
    """sha256 of exactly the rows a router was trained on (their embedded text and scores)."""
    digest = hashlib.sha256()
    for example in examples:
        row = {"segments": list(example.segments), "scores": dict(sorted(example.scores.items()))}
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()
