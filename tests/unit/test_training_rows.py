"""Training rows: the pending buffer stays bounded and expires, the writer rotates and caps its
files and drops (and counts) what does not fit its queue. Real files, a real writer thread."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np

from routeiq.observability import training_rows
from routeiq.observability.metrics import Metrics
from routeiq.observability.training_rows import (
    PendingDecision,
    PendingDecisions,
    RowWriter,
    TrainingRows,
    decode_vector,
)
from routeiq.settings import Settings
from tests._harness.net import wait_until


def _decision(seed: int = 0) -> PendingDecision:
    vector = np.random.default_rng(seed).normal(size=384).astype(np.float32)
    return PendingDecision(
        at=1.0,
        embedding=vector,
        category="code_generation",
        tier="moderate",
        complexity=0.4,
        low_confidence=False,
        strategy="centroid",
        experiment=None,
        variant=None,
        tokens=12,
        ranked=(("gpt-mini", "openai/gpt-mini"), ("claude", "anthropic/claude")),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _count(metrics: Metrics, result: str) -> float:
    value = metrics.registry.get_sample_value("routeiq_training_rows_total", {"result": result})
    return value or 0.0


def test_the_pending_buffer_stays_at_its_cap_under_ten_times_as_many_decisions() -> None:
    pending = PendingDecisions(capacity=500, ttl_seconds=3600)
    for i in range(5000):
        pending.add(f"req-{i}", _decision())
        assert len(pending) <= 500
    assert len(pending) == 500
    assert pending.get("req-0") is None  # the oldest went first
    assert pending.get("req-4999") is not None and pending.get("req-4500") is not None
    assert pending.get("req-4499") is None


def test_pending_decisions_expire() -> None:
    clock = Clock()
    pending = PendingDecisions(capacity=100, ttl_seconds=60, clock=clock)
    pending.add("old", _decision())
    clock.now = 30
    pending.add("newer", _decision())
    clock.now = 61
    assert pending.get("old") is None
    assert pending.get("newer") is not None
    pending.add("newest", _decision())  # adding drops what expired at the front
    clock.now = 200
    pending.add("last", _decision())
    assert len(pending) == 1


def _writer(tmp_path: Path, metrics: Metrics, **kwargs: int) -> RowWriter:
    writer = RowWriter(
        tmp_path,
        metrics,
        queue_size=kwargs.get("queue_size", 100),
        max_file_bytes=kwargs.get("max_file_bytes", 1 << 20),
        max_files=kwargs.get("max_files", 3),
    )
    writer._thread.start()
    return writer


def test_an_outcome_joins_once_per_ranked_deployment_and_the_row_has_the_vector(tmp_path: Path) -> None:
    metrics = Metrics.create(process=False)
    rows = TrainingRows(PendingDecisions(10, 60), _writer(tmp_path, metrics), metrics, include_prompt=False)
    decision = _decision(7)
    rows.keep("r1", decision)

    def join(request_id: str, deployment: str) -> bool:
        return rows.join(
            request_id,
            deployment,
            success=True,
            quality=0.8,
            latency_ms=120.0,
            tenant="default",
            embedder_sha256="abc",
        )

    assert join("r1", "claude")  # a fallback the gateway served
    assert not join("r1", "claude")  # repeated: no second row
    assert not join("r1", "not-ranked")  # a deployment the decision never ranked
    assert not join("unknown", "claude")
    rows.close()
    lines = rows.writer.path.read_text().splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert row["model"] == "anthropic/claude" and row["chosen"] == "gpt-mini"
    assert row["quality"] == 0.8 and row["success"] is True and "prompt" not in row
    np.testing.assert_array_equal(decode_vector(row["embedding"]), decision.embedding)
    assert _count(metrics, "unmatched") == 3 and _count(metrics, "written") == 1


def test_the_writer_rotates_and_keeps_only_so_many_files(tmp_path: Path) -> None:
    metrics = Metrics.create(process=False)
    writer = _writer(tmp_path, metrics, max_file_bytes=4000, max_files=3)
    row = {"embedding": "x" * 900}
    for _ in range(60):  # ~55 KB through files of 4 KB
        assert writer.offer(dict(row))
        wait_until(
            lambda: _count(metrics, "written") + _count(metrics, "failed") >= _count(metrics, "queued"),
            5,
            "rows written",
        )
    writer.close()
    files = sorted(tmp_path.glob("*.jsonl"))
    assert len(files) == 4  # three rotated + the active one
    assert all(p.stat().st_size <= 4000 for p in files)
    assert writer.path in files
    assert _count(metrics, "failed") == 0


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path: Path) -> None:
    metrics = Metrics.create(process=False)
    writer = RowWriter(tmp_path, metrics, queue_size=5, max_file_bytes=1 << 20, max_files=2)
    # The thread is not started: nothing drains the queue, as when the disk stalls.
    accepted = [writer.offer({"n": i}) for i in range(50)]
    assert accepted.count(True) == 5
    assert _count(metrics, "dropped") == 45
    writer._thread.start()
    writer.close()
    assert len(writer.path.read_text().splitlines()) == 5


def test_a_dead_process_file_is_retired_at_start(tmp_path: Path) -> None:
    host = training_rows._safe(socket.gethostname())
    stale = tmp_path / f"rows-{host}-999999999.jsonl"  # no such pid
    stale.write_text("{}\n")
    metrics = Metrics.create(process=False)
    rows = TrainingRows.from_settings(Settings(training_rows_dir=tmp_path), metrics)
    assert rows is not None
    rows.close()
    assert not stale.exists()
    assert len(list(tmp_path.glob("*.rotated-*.jsonl"))) == 1
