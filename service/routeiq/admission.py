"""Admission to the inference threads: refuse at once what would wait longer than it is worth.

A caller (the gateway) gives a decision ~50 ms; a request that waits longer in our queue is
abandoned anyway, after it has cost us an embedding. So a new embedding is admitted only
(1) while fewer than `threads x depth_per_thread` are running or queued (a hard cap), and
(2) when the wait it would see — embeddings ahead of it x recent time per embedding / threads —
is within `max_wait_s`. The second bound follows the machine: on a quiet 2-core box 16 queued
32-token embeddings wait ~20 ms, on a CPU-throttled or crowded one they can wait 300 ms (measured
in bench/RESULTS.md, "Performance under load"); a fixed count cannot tell the two apart.

Everything here runs on the event loop (no locks); `observe` is fed the wall time of each
embedding as its thread saw it, contention included.
"""

from __future__ import annotations

from dataclasses import dataclass

_SMOOTHING = 0.1  # weight of the newest embedding time in the moving average


@dataclass
class EmbedQueue:
    threads: int
    depth_per_thread: int
    max_wait_s: float
    in_flight: int = 0
    avg_embed_s: float = 0.0  # unknown until the first embedding (warm-up supplies it)

    @property
    def capacity(self) -> int:
        return self.threads * self.depth_per_thread

    def expected_wait_s(self) -> float:
        """Wait of an embedding admitted now: the ones ahead of it that must finish before a
        thread is free, spread over the threads."""
        ahead = self.in_flight - self.threads + 1
        return 0.0 if ahead <= 0 else ahead * self.avg_embed_s / self.threads

    def try_acquire(self) -> bool:
        if self.in_flight >= self.capacity or self.expected_wait_s() > self.max_wait_s:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1

    def observe(self, seconds: float) -> None:
        if self.avg_embed_s == 0.0:
            self.avg_embed_s = seconds
        else:
            self.avg_embed_s += _SMOOTHING * (seconds - self.avg_embed_s)
