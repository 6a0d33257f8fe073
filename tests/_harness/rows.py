"""Reading a service's training-row files while it may still be appending to them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def written_rows(folder: Path) -> list[dict[str, Any]]:
    """Every complete row of the folder's *.jsonl: a line the writer is appending at this moment
    has no newline yet and is left for the next read (the service's writer ends every row with
    one, so here, unlike `routeiq refine`, an unterminated line is never a finished row).

    Bytes, split on b"\\n" alone: a read can stop inside a multi-byte character of the torn line,
    and a prompt may hold Unicode line breaks (U+2028, U+0085) that str.splitlines would split on."""
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        data = path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        rows += [json.loads(line) for line in complete.split(b"\n")[:-1]]
    return rows
