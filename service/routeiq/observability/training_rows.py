"""Training rows from production: a decision joined with the outcome `/feedback` reports for it.

A decision that embedded its prompt leaves a `PendingDecision` here, keyed by its request id:
the vector it already computed (a reference, not a copy), what it classified and chose, and the
deployments it ranked. When an outcome names that `request_id`, the two are joined into one row
and handed to a writer thread that appends JSON lines to a file under
`ROUTEIQ_TRAINING_ROWS_DIR`. `routeiq refine` (training/refine.py) learns from those files.

Bounded everywhere, because callers choose request ids and how much they send:
- `PendingDecisions` is an LRU with a TTL: a decision is one dict insert, the oldest entry falls
  off past the cap, nothing ever scans it;
- a decision joins at most once per deployment it ranked (chosen + fallbacks), so repeating an
  outcome adds nothing;
- the writer's queue is bounded: a row that does not fit is dropped and counted, the event loop
  never waits on the disk;
- a file is rotated at a size cap and only so many rotated files are kept.

The prompt text is stored only with `ROUTEIQ_TRAINING_ROWS_INCLUDE_PROMPT=true`. Each process
writes its own file (`rows-<host>-<pid>.jsonl`), so workers and replicas never share one.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import os
import queue
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from routeiq.observability.metrics import Metrics
from routeiq.settings import Settings, SettingsError

log = logging.getLogger("routeiq.training_rows")

ROW_FORMAT = 1
ACTIVE_SUFFIX = ".jsonl"
ROTATED_MARK = ".rotated-"


@dataclass(slots=True)
class PendingDecision:
    """What a decision knew, kept until its outcome arrives."""

    at: float  # wall-clock time of the decision
    embedding: npt.NDArray[np.float32]
    category: str
    tier: str
    complexity: float
    low_confidence: bool
    strategy: str
    experiment: str | None
    variant: str | None
    tokens: int  # approximate prompt tokens: the length-only baseline needs it, not the text
    ranked: tuple[tuple[str, str], ...]  # (deployment_id, model): chosen first, then fallbacks
    prompt: str | None = None
    joined: set[str] = field(default_factory=set)  # deployments already turned into a row


class PendingDecisions:
    """Decisions waiting for feedback: LRU order, a cap and a TTL; O(1) per operation."""

    def __init__(
        self, capacity: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, PendingDecision]] = OrderedDict()

    def add(self, request_id: str, decision: PendingDecision) -> None:
        items = self._items
        now = self._clock()
        if request_id in items:
            items.move_to_end(request_id)
        items[request_id] = (now, decision)
        # Expired entries sit at the front (oldest first): dropping them here is amortised O(1).
        while items:
            first = next(iter(items.values()))[0]
            if len(items) <= self.capacity and now - first <= self.ttl_seconds:
                break
            items.popitem(last=False)

    def get(self, request_id: str) -> PendingDecision | None:
        entry = self._items.get(request_id)
        if entry is None:
            return None
        if self._clock() - entry[0] > self.ttl_seconds:
            del self._items[request_id]
            return None
        return entry[1]

    def __len__(self) -> int:
        return len(self._items)


def encode_vector(vector: npt.NDArray[np.float32]) -> str:
    """float32 little-endian, base64: a third of the size of a JSON list, exact."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(text: str) -> npt.NDArray[np.float32]:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def make_row(
    request_id: str,
    decision: PendingDecision,
    *,
    deployment_id: str,
    model: str,
    success: bool,
    quality: float | None,
    latency_ms: float | None,
    tenant: str,
    embedder_sha256: str,
    feedback_at: float | None = None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "format": ROW_FORMAT,
        "at": round(decision.at, 3),
        "feedback_at": round(time.time() if feedback_at is None else feedback_at, 3),
        "request_id": request_id,
        "tenant": tenant,
        "embedder_sha256": embedder_sha256,
        "dimension": int(decision.embedding.shape[-1]),
        "embedding": encode_vector(decision.embedding),
        "category": decision.category,
        "tier": decision.tier,
        "complexity": round(decision.complexity, 4),
        "low_confidence": decision.low_confidence,
        "strategy": decision.strategy,
        "experiment": decision.experiment,
        "variant": decision.variant,
        "tokens": decision.tokens,
        "candidates": [{"deployment_id": d, "model": m} for d, m in decision.ranked],
        "chosen": decision.ranked[0][0],
        "deployment_id": deployment_id,
        "model": model,
        "success": success,
        "quality": quality,
        "latency_ms": latency_ms,
    }
    if decision.prompt is not None:
        row["prompt"] = decision.prompt
    return row


# A row, or what builds it (called on the writer thread, off the event loop).
Row = dict[str, Any] | Callable[[], dict[str, Any]]


class RowWriter:
    """A daemon thread appending rows to this process's file; `offer` never blocks."""

    def __init__(
        self,
        folder: Path,
        metrics: Metrics,
        *,
        queue_size: int,
        max_file_bytes: int,
        max_files: int,
    ) -> None:
        self.folder = folder
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self._metrics = metrics
        self._queue: queue.Queue[Row | None] = queue.Queue(maxsize=queue_size)
        # Children looked up once: offer() runs on the event loop, once per outcome.
        self._queued = metrics.training_rows.labels("queued")
        self._dropped = metrics.training_rows.labels("dropped")
        self._stem = f"rows-{_safe(socket.gethostname())}-{os.getpid()}"
        self.path = folder / f"{self._stem}{ACTIVE_SUFFIX}"
        self._thread = threading.Thread(target=self._run, name="routeiq-training-rows", daemon=True)

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics) -> RowWriter | None:
        folder = settings.training_rows_dir
        if folder is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        _retire_dead_writers(folder)
        writer = cls(
            folder,
            metrics,
            queue_size=settings.training_rows_queue,
            max_file_bytes=int(settings.training_rows_max_file_mb * 1024 * 1024),
            max_files=settings.training_rows_max_files,
        )
        writer._thread.start()
        return writer

    def offer(self, row: Row) -> bool:
        """Queue `row` for the thread; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self._dropped.inc()
            return False
        self._queued.inc()
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (within `timeout`), then stop the thread."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            row = self._queue.get()
            if row is None:
                return
            batch = [row]
            # Whatever else is queued goes out in the same write.
            while len(batch) < 256:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._write(batch)
                    return
                batch.append(nxt)
            self._write(batch)

    def _write(self, rows: list[Row]) -> None:
        # The row is built here, on the writer thread: the event loop only queued its parts.
        data = "".join(
            json.dumps(r() if callable(r) else r, separators=(",", ":"), ensure_ascii=False) + "\n"
            for r in rows
        )
        try:
            size = self.path.stat().st_size if self.path.exists() else 0
            if size and size + len(data) > self.max_file_bytes:
                self._rotate()
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(data)
        except OSError as exc:
            self._metrics.training_rows.labels("failed").inc(len(rows))
            log.warning("training rows not written to %s: %s", self.path, exc)
            return
        self._metrics.training_rows.labels("written").inc(len(rows))

    def _rotate(self) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = (
            self.folder / f"{self._stem}{ROTATED_MARK}{stamp}-{time.time_ns() % 1_000_000:06d}{ACTIVE_SUFFIX}"
        )
        self.path.rename(target)
        self._prune()

    def _prune(self) -> None:
        # Rotated files of every writer in the folder count towards the cap; active files are
        # left alone (another worker may be appending to its own).
        # Another worker may delete one between the listing and the stat: that one is gone anyway.
        rotated = sorted(self.folder.glob(f"*{ROTATED_MARK}*{ACTIVE_SUFFIX}"), key=_mtime)
        for old in rotated[: max(len(rotated) - self.max_files, 0)]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def check_folder(settings: Settings) -> None:
    """Start-up check: the rows folder can be made and written, else one line naming the
    setting (the writer thread would otherwise fail row by row, long after "ready")."""
    folder = settings.training_rows_dir
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".routeiq-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise SettingsError(
            f"ROUTEIQ_TRAINING_ROWS_DIR={str(folder)!r}: not a writable folder: {exc.strerror or exc}"
        ) from None


def _retire_dead_writers(folder: Path) -> None:
    """A previous process on this host left its active file: mark it rotated, so the cap on
    rotated files covers it and restarts cannot pile up files."""
    prefix = f"rows-{_safe(socket.gethostname())}-"
    for path in folder.glob(f"{prefix}*{ACTIVE_SUFFIX}"):
        pid = path.name[len(prefix) : -len(ACTIVE_SUFFIX)]
        if not pid.isdigit() or int(pid) == os.getpid() or _alive(int(pid)):
            continue
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(path.stat().st_mtime))
        with contextlib.suppress(FileNotFoundError):
            path.rename(
                path.with_name(f"{path.name[: -len(ACTIVE_SUFFIX)]}{ROTATED_MARK}{stamp}-0{ACTIVE_SUFFIX}")
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TrainingRows:
    """One tenant's pending decisions, and the process's writer they are joined into."""

    def __init__(self, pending: PendingDecisions, writer: RowWriter, metrics: Metrics, include_prompt: bool):
        self.pending = pending
        self.writer = writer
        self.include_prompt = include_prompt
        self._metrics = metrics
        self._unmatched = metrics.training_rows.labels("unmatched")

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics) -> TrainingRows | None:
        writer = RowWriter.from_settings(settings, metrics)
        if writer is None:
            return None
        return cls(cls.pending_for(settings), writer, metrics, settings.training_rows_include_prompt)

    @staticmethod
    def pending_for(settings: Settings) -> PendingDecisions:
        return PendingDecisions(settings.training_rows_pending, settings.training_rows_pending_ttl_seconds)

    def for_tenant(self, settings: Settings) -> TrainingRows:
        """A tenant's own pending decisions (one tenant cannot join another's), same writer."""
        return TrainingRows(self.pending_for(settings), self.writer, self._metrics, self.include_prompt)

    def keep(self, request_id: str, decision: PendingDecision) -> None:
        self.pending.add(request_id, decision)

    def join(
        self,
        request_id: str,
        deployment_id: str,
        *,
        success: bool,
        quality: float | None,
        latency_ms: float | None,
        tenant: str,
        embedder_sha256: str,
    ) -> bool:
        """Queue the row for this outcome; False when no kept decision ranked that deployment
        (or it already has its row)."""
        decision = self.pending.get(request_id)
        model = None
        if decision is not None and deployment_id not in decision.joined:
            model = next((m for d, m in decision.ranked if d == deployment_id), None)
        if decision is None or model is None:
            self._unmatched.inc()
            return False
        decision.joined.add(deployment_id)
        return self.writer.offer(
            functools.partial(
                make_row,
                request_id,
                decision,
                deployment_id=deployment_id,
                model=model,
                success=success,
                quality=quality,
                latency_ms=latency_ms,
                tenant=tenant,
                embedder_sha256=embedder_sha256,
                feedback_at=time.time(),
            )
        )

    def close(self) -> None:
        self.writer.close()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:64] or "host"
