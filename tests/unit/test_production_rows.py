"""Reading training-row files that a worker may be appending to: a last line without its newline
is a row still being written (counted `incomplete`), not damage (`unreadable`). Real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from routeiq.observability.training_rows import PendingDecision, make_row
from routeiq.training import production_rows

SHA = "e" * 64
DIMENSION = 8


def _line(n: int, prompt: str | None = None) -> bytes:
    """One row as the writer appends it (observability/training_rows.py: RowWriter._write)."""
    decision = PendingDecision(
        at=float(n),
        embedding=np.random.default_rng(n).normal(size=DIMENSION).astype(np.float32),
        category="conversation",
        tier="moderate",
        complexity=0.4,
        low_confidence=False,
        strategy="centroid",
        experiment=None,
        variant=None,
        tokens=12,
        ranked=(("mini", "openai/gpt-mini"), ("big", "openai/gpt-big")),
        prompt=prompt,
    )
    row = make_row(
        f"req-{n}",
        decision,
        deployment_id="mini",
        model="openai/gpt-mini",
        success=True,
        quality=0.8,
        latency_ms=100.0,
        tenant="default",
        embedder_sha256=SHA,
        feedback_at=float(n) + 1,
    )
    return (json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


def _load(path: Path) -> production_rows.ProductionRows:
    return production_rows.load([path], SHA, DIMENSION)


def test_a_torn_last_line_is_a_row_being_written_not_an_unreadable_one(tmp_path: Path) -> None:
    path = tmp_path / "rows-host-1.jsonl"
    tail = _line(3)
    path.write_bytes(_line(0) + _line(1) + _line(2) + tail[: len(tail) // 2])
    rows = _load(path)
    assert len(rows) == 3
    assert rows.skipped["incomplete"] == 1
    assert rows.skipped["unreadable"] == 0


def test_a_tear_inside_a_multibyte_character_is_still_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "rows-host-1.jsonl"
    tail = _line(1, prompt="un café, s'il vous plaît")
    cut = tail.index("é".encode()) + 1  # between the two bytes of é
    path.write_bytes(_line(0) + tail[:cut])
    rows = _load(path)
    assert len(rows) == 1
    assert rows.skipped["incomplete"] == 1
    assert rows.skipped["unreadable"] == 0


def test_a_last_row_without_its_newline_is_used(tmp_path: Path) -> None:
    """A writer that stopped before the final newline: its last row parses, so it is kept."""
    path = tmp_path / "rows-host-1.jsonl"
    # A prompt with Unicode line breaks (JSON allows them unescaped) stays one row.
    path.write_bytes(_line(0, prompt="first\u2028second\x85third") + _line(1).rstrip(b"\n"))
    rows = _load(path)
    assert len(rows) == 2
    assert rows.at.tolist() == [0.0, 1.0]
    assert rows.skipped["incomplete"] == 0
    assert rows.skipped["unreadable"] == 0


def test_a_complete_line_that_does_not_parse_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "rows-host-1.jsonl"
    path.write_bytes(_line(0) + b'{"garbage": \n' + _line(1) + b"not json either\n")
    rows = _load(path)
    assert len(rows) == 2
    assert rows.skipped["unreadable"] == 2
    assert rows.skipped["incomplete"] == 0


def test_only_the_last_line_of_each_file_can_be_incomplete(tmp_path: Path) -> None:
    first, second = tmp_path / "rows-a-1.jsonl", tmp_path / "rows-b-2.jsonl"
    first.write_bytes(_line(0) + _line(1)[:40])
    second.write_bytes(_line(2) + b"torn, then finished\n" + _line(3)[:40])
    rows = production_rows.load([tmp_path], SHA, DIMENSION)
    assert len(rows) == 2 and rows.files == 2
    assert rows.skipped == {"unreadable": 1, "incomplete": 2, "other_embedder": 0, "other_tenant": 0}


def test_an_empty_file_has_nothing_to_skip(tmp_path: Path) -> None:
    path = tmp_path / "rows-host-1.jsonl"
    path.write_bytes(b"")
    rows = _load(path)
    assert len(rows) == 0
    assert set(rows.skipped.values()) == {0}


def test_rows_of_another_embedder_are_still_counted_apart(tmp_path: Path) -> None:
    path = tmp_path / "rows-host-1.jsonl"
    other = {**json.loads(_line(1)), "embedder_sha256": "0" * 64}
    path.write_bytes(_line(0) + (json.dumps(other) + "\n").encode())
    rows = _load(path)
    assert len(rows) == 1 and rows.skipped["other_embedder"] == 1
