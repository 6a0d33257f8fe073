"""Training data files: JSON Lines are split on newlines only. JSON allows U+2028 / U+2029 and
other Unicode line breaks unescaped inside strings (json.dumps with ensure_ascii=False writes
them so), and a prompt pasted from a web page or a PDF carries them."""

from __future__ import annotations

import json
from pathlib import Path

from routeiq.training.data import load_examples

BREAKS = "first\u2028second\u2029third\x85fourth\x0bfifth\x1cend"


def test_a_prompt_with_unicode_line_breaks_stays_one_row(tmp_path: Path) -> None:
    rows = [
        {"prompt": f"Summarise: {BREAKS}", "scores": {"a": 1.0, "b": 0.0}},
        {"prompt": "hello", "scores": {"a": 0.5, "b": 0.5}},
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    examples = load_examples(path, 64)
    assert len(examples) == 2
    assert examples[1].scores == {"a": 0.5, "b": 0.5}
    # CRLF files (written on Windows) load the same
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert len(load_examples(path, 64)) == 2
