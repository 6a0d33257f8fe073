"""Reading a service's training-row files while it may still be appending to them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def written_rows(folder: Path) -> list[dict[str, Any]]:
    """Every complete row of the folder's *.jsonl: a line the writer is appending at this moment
    has no newline yet and is left for the next read."""
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        text = path.read_text(encoding="utf-8")
        rows += [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]
    return rows
