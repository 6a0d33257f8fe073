"""Admission: refuse at once what would wait longer than it is worth, instead of queueing.

Two gates, one object (`Admission`), both checked on the event loop (no locks):

- `decisions`: decisions in flight (running or waiting), capped at ROUTEIQ_MAX_CONCURRENT_REQUESTS.
- `embeddings`: the inference threads' queue. A caller (the gateway) gives a decision ~50 ms; a
  request that waits longer in our queue is abandoned anyway, after it has cost us an embedding.
  So a new embedding is admitted only (1) while fewer than `threads x depth_per_thread` are
  running or queued (a hard cap), and (2) when the wait it would see — embeddings ahead of it x
  recent time per embedding / threads — is within `max_wait_s`. The second bound follows the
  machine: on a quiet 2-core box 16 queued 32-token embeddings wait ~20 ms, on a CPU-throttled or
  crowded one they can wait 300 ms (bench/RESULTS.md, "Performance under load"); a fixed count
  cannot tell the two apart. `observe` is fed the wall time of each embedding as its thread saw
  it, contention included.
"""

from __future__ import annotations

from dataclasses import dataclass

from routeiq.settings import Settings

_SMOOTHING = 0.1  # weight of the newest embedding time in the moving average


@dataclass
class DecisionGate:
    """At most `capacity` decisions in flight."""

    capacity: int
    in_flight: int = 0

    def try_acquire(self) -> bool:
        if self.in_flight >= self.capacity:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1


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

    def full(self) -> bool:
        """A new embedding would be refused now."""
        return self.in_flight >= self.capacity or self.expected_wait_s() > self.max_wait_s

    def try_acquire(self) -> bool:
        if self.full():
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1

    def would_miss(self, seconds_left: float) -> bool:
        """An embedding admitted now would end after `seconds_left` (the caller's deadline).
        Never while nothing waits ahead of it: an idle worker always tries, so a time per
        embedding measured in a burst of contention cannot keep refusing everything once the
        burst is over (only embeddings that run update it)."""
        wait = self.expected_wait_s()
        return wait > 0 and wait + self.avg_embed_s > seconds_left

    def observe(self, seconds: float) -> None:
        if self.avg_embed_s == 0.0:
            self.avg_embed_s = seconds
        else:
            self.avg_embed_s += _SMOOTHING * (seconds - self.avg_embed_s)


@dataclass
class Admission:
    decisions: DecisionGate
    embeddings: EmbedQueue

    def shedding(self, seconds_left: float | None = None) -> str | None:
        """Which gate would refuse a new decision now (the `reason` label of the refusal), if
        any. Checked before a request's body is read
        (`http.middleware.ShedMiddleware`): under overload a refusal then costs a few
        microseconds instead of parsing, validation and signals, and that CPU stays with the
        requests that were accepted. A cached prompt arriving while the queue is full is
        refused too — the price of not reading bodies we will most likely refuse. With the
        caller's time left (`seconds_left`), also `deadline` when an embedding would end
        after it."""
        if self.decisions.in_flight >= self.decisions.capacity:
            return "overloaded"
        if self.embeddings.full():
            return "queue_full"
        if seconds_left is not None and self.embeddings.would_miss(seconds_left):
            return "deadline"  # the caller's X-RouteIQ-Deadline-Ms, counted from now
        return None

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        return cls(
            DecisionGate(settings.max_concurrent_requests),
            EmbedQueue(
                settings.inference_threads,
                settings.queue_depth_per_thread,
                settings.max_queue_wait_ms / 1000,
            ),
        )
