"""Fair share of inference capacity between tenants, and the order their embeddings run in.

Two parts, both on the event loop (no locks):

- `FairShare` tracks each tenant's use of one gate (decisions in flight, or embeddings running
  or queued). `admit` lets anyone in while the gate itself admits: an idle tenant's share is
  lent, not reserved. Once the gate is full, a tenant whose part of what was admitted recently
  is below its weight's part among the active tenants (or that holds nothing) still gets in —
  the gate may run over its capacity, never past 2x — and a tenant over its share is refused
  as such. So overload lands on whoever causes it. Judged on recent admissions rather than on
  what is held now: a tenant sending a little holds one or two at a time, which says nothing
  about who is filling the queue.
- `FairDispatcher` hands the next free inference thread to the waiting tenant that has used
  the least of its share recently, instead of first come first served: a tenant sending little
  goes ahead of another's backlog, so it waits at most for a running embedding to finish.

With one tenant both reduce to the gate alone and a plain FIFO.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any, Literal, Protocol, TypeVar

T = TypeVar("T")
Verdict = Literal["ok", "over_share", "full"]


class Gate(Protocol):
    in_flight: int

    @property
    def capacity(self) -> int: ...

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...


class FairShare:
    """Per-tenant use of one gate: what each holds now, and how much it was admitted recently
    (a count decaying with a half-life of `HALF_LIFE_S`). Keys are tenant names from
    configuration, and idle tenants are dropped: bounded."""

    HALF_LIFE_S = 1.0

    def __init__(
        self, weights: Mapping[str, float] | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.weights: dict[str, float] = dict(weights or {})
        self.held: dict[str, int] = {}
        self.recent: dict[str, float] = {}
        self._clock = clock
        self._at = clock()

    def used_share(self, tenant: str) -> float:
        """The tenant's part of what was admitted recently, 0..1."""
        self._decay()
        total = sum(self.recent.values())
        return self.recent.get(tenant, 0.0) / total if total else 0.0

    def fair_share(self, tenant: str) -> float:
        """Its weight's part among the tenants active now (holding or recently admitted)."""
        active = set(self.held) | set(self.recent) | {tenant}
        return self.weights.get(tenant, 1.0) / sum(self.weights.get(t, 1.0) for t in active)

    def others_active(self, tenant: str) -> bool:
        """Another tenant holds or was recently admitted: whether `tenant` is refused is then
        this share's call (it may be within its share, and admitted past a full gate)."""
        self._decay()
        return any(t != tenant for t in set(self.held) | set(self.recent))

    def admit(self, gate: Gate, tenant: str) -> Verdict:
        if gate.try_acquire():
            self._take(tenant)
            return "ok"
        self._decay()
        if not any(t != tenant for t in set(self.held) | set(self.recent)):
            return "full"  # no other tenant active: plain overload, as with one tenant
        within = self.held.get(tenant, 0) == 0 or self.used_share(tenant) < self.fair_share(tenant)
        if within and gate.in_flight < 2 * gate.capacity:
            gate.in_flight += 1  # within its share: admitted past the full gate
            self._take(tenant)
            return "ok"
        return "over_share"

    def release(self, gate: Gate, tenant: str) -> None:
        gate.release()
        left = self.held.get(tenant, 0) - 1
        if left > 0:
            self.held[tenant] = left
        else:
            self.held.pop(tenant, None)

    def _take(self, tenant: str) -> None:
        self.held[tenant] = self.held.get(tenant, 0) + 1
        self.recent[tenant] = self.recent.get(tenant, 0.0) + 1.0

    def _decay(self) -> None:
        now = self._clock()
        factor = 0.5 ** ((now - self._at) / self.HALF_LIFE_S)
        self._at = now
        for tenant in list(self.recent):
            self.recent[tenant] *= factor
            if self.recent[tenant] < 0.05:
                del self.recent[tenant]


class FairDispatcher:
    """Runs jobs on `executor` with at most `slots` at once; the next job is the oldest of the
    waiting tenant that `share` says used least of its share recently (ties: the one waiting
    longest)."""

    def __init__(self, executor: Executor, slots: int, share: FairShare | None = None) -> None:
        self._executor = executor
        self._slots = slots
        self._share = share
        self._running = 0
        self._waiting: dict[str, deque[tuple[Callable[[], Any], asyncio.Future[Any]]]] = {}
        self._turns: deque[str] = deque()  # tenants with work waiting, longest waiting first

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    async def run(self, tenant: str, job: Callable[[], T]) -> T:
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        queue = self._waiting.get(tenant)
        if queue is None:
            queue = self._waiting[tenant] = deque()
            self._turns.append(tenant)
        queue.append((job, done))
        self._pump()
        return await done

    def _pump(self) -> None:
        while self._running < self._slots and self._turns:
            tenant = self._next_tenant()
            self._turns.remove(tenant)
            queue = self._waiting[tenant]
            job, done = queue.popleft()
            if queue:
                self._turns.append(tenant)  # its next job waits for the others' turns
            else:
                del self._waiting[tenant]
            if done.cancelled():
                continue
            self._running += 1
            running = asyncio.get_running_loop().run_in_executor(self._executor, job)
            running.add_done_callback(functools.partial(self._finished, done=done))

    def _next_tenant(self) -> str:
        share = self._share
        if share is None or len(self._turns) == 1:
            return self._turns[0]
        return min(self._turns, key=lambda t: share.used_share(t) / share.fair_share(t))

    def _finished(self, running: asyncio.Future[Any], *, done: asyncio.Future[Any]) -> None:
        self._running -= 1
        if not done.cancelled():
            if running.cancelled():
                done.cancel()
            elif (exc := running.exception()) is not None:
                done.set_exception(exc)
            else:
                done.set_result(running.result())
        self._pump()
