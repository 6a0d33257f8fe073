"""Micro-batching, measured: does gathering concurrent embeddings into one ONNX run pay here?

Two ways to serve N concurrent callers (asyncio tasks, like the service's request handlers)
on the same inference thread pool (ROUTEIQ_INFERENCE_THREADS):
- unbatched: each caller submits its own batch-1 run (what the service does);
- batched: callers hand their token ids to a collector that waits up to `--window-ms` for
  more (or until `--max-batch`), buckets them by length (pads only within a bucket of
  similar length) and runs each bucket as one batch on the pool.

Also reports the consistency cost: cosine between a text embedded inside a padded batch and
the same text alone (dynamic int8 quantisation takes one activation scale per input tensor).

Usage: python bench/batching.py [--seconds 5] [--concurrency 1 8 32] [--tokens 32 mixed]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from prompts import load_mix, prompts_of_length
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.settings import Settings


@dataclass
class _Pending:
    ids: list[int]
    future: asyncio.Future[np.ndarray]


@dataclass
class MicroBatcher:
    """Collects token-id rows for up to `window_s`, then runs length buckets as batches."""

    embedder: OnnxEmbedder
    executor: ThreadPoolExecutor
    window_s: float
    max_batch: int
    bucket: int = 16  # rows whose lengths differ by < bucket tokens share a batch
    _pending: list[_Pending] = field(default_factory=list)
    _timer: asyncio.TimerHandle | None = None
    batches: int = 0
    rows: int = 0

    async def embed(self, ids: list[int]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        item = _Pending(ids, loop.create_future())
        self._pending.append(item)
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.window_s, self._flush)
        return await item.future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        buckets: dict[int, list[_Pending]] = {}
        for item in pending:
            buckets.setdefault(len(item.ids) // self.bucket, []).append(item)
        loop = asyncio.get_running_loop()
        for group in buckets.values():
            self.batches += 1
            self.rows += len(group)
            run = loop.run_in_executor(self.executor, self.embedder.embed_ids, [g.ids for g in group])
            run.add_done_callback(lambda f, g=group: _deliver(f, g))  # type: ignore[misc]


def _deliver(done: asyncio.Future[np.ndarray], group: list[_Pending]) -> None:
    matrix = done.result()
    for row, item in zip(matrix, group, strict=True):
        item.future.set_result(row)


async def _drive(
    concurrency: int, seconds: float, rows: Sequence[list[int]], call: object
) -> tuple[int, list[float]]:
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []

    async def worker(offset: int) -> None:
        i = offset
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            await call(rows[i % len(rows)])  # type: ignore[operator]
            latencies.append(time.perf_counter() - start)
            i += concurrency

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return len(latencies), latencies


def measure(
    embedder: OnnxEmbedder,
    threads: int,
    rows: Sequence[list[int]],
    concurrency: int,
    seconds: float,
    window_ms: float,
    max_batch: int,
) -> dict[str, float]:
    executor = ThreadPoolExecutor(threads)

    async def unbatched(ids: list[int]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        return (await loop.run_in_executor(executor, embedder.embed_ids, [ids]))[0]  # type: ignore[no-any-return]

    async def run_both() -> dict[str, float]:
        # Interleave 1 s slices of each mode: on a shared machine the load changes by the second,
        # and both modes must see the same neighbours.
        batcher = MicroBatcher(embedder, executor, window_ms / 1000, max_batch)
        lat_u: list[float] = []
        lat_b: list[float] = []
        slices = max(1, round(seconds))
        for _ in range(slices):
            lat_u += (await _drive(concurrency, seconds / slices, rows, unbatched))[1]
            lat_b += (await _drive(concurrency, seconds / slices, rows, batcher.embed))[1]
        return {
            "unbatched_per_s": len(lat_u) / seconds,
            "unbatched_p99_ms": float(np.percentile(lat_u, 99) * 1000),
            "batched_per_s": len(lat_b) / seconds,
            "batched_p99_ms": float(np.percentile(lat_b, 99) * 1000),
            "mean_batch": batcher.rows / max(batcher.batches, 1),
        }

    try:
        return asyncio.run(run_both())
    finally:
        executor.shutdown()


def consistency(embedder: OnnxEmbedder, rows: Sequence[list[int]], batch: int) -> tuple[float, float]:
    """Mean and worst cosine of a row embedded inside a batch vs alone."""
    cosines = []
    for start in range(0, len(rows) - batch + 1, batch):
        group = list(rows[start : start + batch])
        together = embedder.embed_ids(group)
        for row, vec in zip(group, together, strict=True):
            cosines.append(float(np.dot(embedder.embed_ids([row])[0], vec)))
    return float(np.mean(cosines)), float(np.min(cosines))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--window-ms", type=float, default=2.0)
    parser.add_argument("--max-batch", type=int, default=16)
    args = parser.parse_args()
    settings = Settings()
    embedder = OnnxEmbedder(settings.embedder_dir, intra_op_threads=settings.ort_intra_op_threads)
    budget = settings.token_budget
    workloads = {
        "32-token": [embedder.token_ids([p], budget) for p in prompts_of_length(embedder, 32, 64)],
        "mixed": [embedder.token_ids(segs, budget) for segs in load_mix(embedder, 256, budget)],
    }
    print(
        f"Command: `python bench/batching.py --seconds {args.seconds} --window-ms {args.window_ms} "
        f"--max-batch {args.max_batch}` — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {settings.inference_threads} inference "
        f"threads x {settings.ort_intra_op_threads} ORT thread\n"
    )
    print(
        "| workload | concurrency | unbatched /s | unbatched p99 ms | batched /s | batched p99 ms | mean batch | batched ÷ unbatched |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, rows in workloads.items():
        for c in args.concurrency:
            r = measure(
                embedder, settings.inference_threads, rows, c, args.seconds, args.window_ms, args.max_batch
            )
            print(
                f"| {name} | {c} | {r['unbatched_per_s']:.0f} | {r['unbatched_p99_ms']:.1f} | {r['batched_per_s']:.0f} | "
                f"{r['batched_p99_ms']:.1f} | {r['mean_batch']:.1f} | {r['batched_per_s'] / r['unbatched_per_s']:.2f} |"
            )
    for name, rows in workloads.items():
        for batch in (8, 16):
            mean, worst = consistency(embedder, rows[:48], batch)
            print(
                f"\nconsistency, {name}, batch {batch}: cosine to batch-1 mean {mean:.4f}, worst {worst:.4f}"
            )


if __name__ == "__main__":
    main()
