"""Fair share of inference capacity between tenants, and the order their embeddings run in.

Two parts, both on the event loop (no locks):

- `FairShare` counts what each tenant holds of one gate (decisions in flight, or embeddings
  running or queued). A tenant's share is the gate's capacity split by the configured weights.
  `admit` lets anyone in while the gate itself admits — an idle tenant's share is lent, not
  reserved; once it is full only a tenant still under its share gets in (the gate may then
  run over its capacity by at most the sum of shares, i.e. 2x), and a tenant over its share
  is refused as such. So overload lands on whoever causes it.
- `FairDispatcher` hands embeddings to the inference threads round-robin over tenants with
  work waiting, instead of first come first served: a tenant sending little does not wait
  behind another's backlog, so its latency stays near what it is alone.

With one tenant both reduce to the gate alone and a plain FIFO.
"""

from __future__ import annotations

import asyncio
import functools
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
    """Per-tenant holdings of one gate. Keys are tenant names from configuration, and a tenant
    holding nothing is dropped: bounded."""

    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        self.weights: dict[str, float] = dict(weights or {})
        self.held: dict[str, int] = {}

    def share(self, tenant: str, capacity: int) -> float:
        tenants = set(self.weights) | set(self.held) | {tenant}
        total = sum(self.weights.get(t, 1.0) for t in tenants)
        return capacity * self.weights.get(tenant, 1.0) / total

    def admit(self, gate: Gate, tenant: str) -> Verdict:
        if gate.try_acquire():
            self._take(tenant)
            return "ok"
        if not any(t != tenant for t in set(self.weights) | set(self.held)):
            return "full"  # no other tenant to protect: plain overload, as with one tenant
        if self.held.get(tenant, 0) < max(1.0, self.share(tenant, gate.capacity)):
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


class FairDispatcher:
    """Runs jobs on `executor` with at most `slots` at once, taking the next job round-robin
    over the tenants that have one waiting."""

    def __init__(self, executor: Executor, slots: int) -> None:
        self._executor = executor
        self._slots = slots
        self._running = 0
        self._waiting: dict[str, deque[tuple[Callable[[], Any], asyncio.Future[Any]]]] = {}
        self._turns: deque[str] = deque()  # tenants with work waiting, in serving order

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
            tenant = self._turns.popleft()
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
