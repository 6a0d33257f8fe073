"""Circuit breakers per deployment, fed by POST /feedback outcomes.

closed --(failure rate >= R over >= N outcomes inside a window)--> open
open   --(open_seconds later)--> half-open: up to `half_open_probes` decisions may pick it
half-open --(that many successes)--> closed;  --(any failure)--> open again

Open deployments are demoted by decision.policy.select, never removed (an open circuit is still
better than no answer). The same machine runs in Lua inside Redis (state/lua.py, driven by
state/redis_state.py); this is the process-local one, and the integration tests hold both to the
same behaviour.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

BreakerStateName = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class BreakerPolicy:
    enabled: bool = True
    window_seconds: float = 60.0
    min_requests: int = 5
    failure_rate: float = 0.5
    open_seconds: float = 30.0
    half_open_probes: int = 1


@dataclass(frozen=True)
class CircuitView:
    """What routing needs: `open` deployments are demoted now (open, or half-open with every probe
    slot taken); `probing` ones are half-open with probe slots left (a pick claims one)."""

    open: frozenset[str] = frozenset()
    probing: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BreakerInfo:
    state: BreakerStateName
    window_requests: int = 0
    window_failures: int = 0
    seconds_until_half_open: float | None = None
    probes_claimed: int = 0
    probe_successes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "window_requests": self.window_requests,
            "window_failures": self.window_failures,
            "seconds_until_half_open": self.seconds_until_half_open,
            "probes_claimed": self.probes_claimed,
            "probe_successes": self.probe_successes,
        }


@dataclass
class _Breaker:
    window_start: float = 0.0
    requests: int = 0
    failures: int = 0
    reopen_at: float | None = None  # set while open or half-open (half-open once it has passed)
    probes: int = 0
    probe_successes: int = 0
    probes_expire: float = 0.0


# Most deployments with a breaker per process; past it the least recently fed one is forgotten
# (a forgotten deployment starts closed again, which is what an unknown one is anyway).
MAX_BREAKERS = 20_000


@dataclass
class MemoryBreakers:
    policy: BreakerPolicy
    clock: Callable[[], float]
    max_items: int = MAX_BREAKERS
    _items: OrderedDict[str, _Breaker] = field(default_factory=OrderedDict)
    # Open or half-open ones: what `view` reads on every decision, so it never walks the rest.
    _tripped: set[str] = field(default_factory=set)

    def record(self, deployment_id: str, success: bool) -> None:
        if not self.policy.enabled:
            return
        now, p = self.clock(), self.policy
        b = self._items.get(deployment_id)
        if b is None:
            if len(self._items) >= self.max_items:
                forgotten, _ = self._items.popitem(last=False)
                self._tripped.discard(forgotten)
            b = self._items[deployment_id] = _Breaker(window_start=now)
        else:
            self._items.move_to_end(deployment_id)
        if b.reopen_at is not None:
            if b.reopen_at > now:
                return  # open: late outcomes of requests sent before it opened change nothing
            if success:
                b.probe_successes += 1
                if b.probe_successes >= p.half_open_probes:
                    self._items[deployment_id] = _Breaker(window_start=now)
                    self._tripped.discard(deployment_id)
            else:
                self._trip(deployment_id, b, now)
            return
        if now - b.window_start >= p.window_seconds:
            b.window_start, b.requests, b.failures = now, 0, 0
        b.requests += 1
        b.failures += 0 if success else 1
        if b.requests >= p.min_requests and b.failures / b.requests >= p.failure_rate:
            self._trip(deployment_id, b, now)

    def _trip(self, deployment_id: str, b: _Breaker, now: float) -> None:
        self._tripped.add(deployment_id)
        b.reopen_at = now + self.policy.open_seconds
        b.requests = b.failures = b.probes = b.probe_successes = 0

    def view(self) -> CircuitView:
        now = self.clock()
        demoted, probing = set(), set()
        for deployment_id in self._tripped:
            b = self._items[deployment_id]
            if b.reopen_at is None:
                continue
            if b.reopen_at > now or self._probes(b, now) >= self.policy.half_open_probes:
                demoted.add(deployment_id)
            else:
                probing.add(deployment_id)
        return CircuitView(frozenset(demoted), frozenset(probing))

    def _probes(self, b: _Breaker, now: float) -> int:
        # Claimed probes lapse after open_seconds: a probe whose outcome never comes back must
        # not leave the deployment demoted for ever.
        if b.probes and b.probes_expire <= now:
            b.probes = 0
        return b.probes

    def claim_probe(self, deployment_id: str) -> None:
        b = self._items.get(deployment_id)
        now = self.clock()
        if b is None or b.reopen_at is None or b.reopen_at > now:
            return
        if self._probes(b, now) == 0:
            b.probes_expire = now + self.policy.open_seconds
        b.probes += 1

    def info(self) -> dict[str, BreakerInfo]:
        now = self.clock()
        out: dict[str, BreakerInfo] = {}
        for deployment_id, b in self._items.items():
            if b.reopen_at is None:
                if now - b.window_start >= self.policy.window_seconds or not b.requests:
                    continue
                out[deployment_id] = BreakerInfo("closed", b.requests, b.failures)
            elif b.reopen_at > now:
                out[deployment_id] = BreakerInfo("open", seconds_until_half_open=round(b.reopen_at - now, 3))
            else:
                out[deployment_id] = BreakerInfo(
                    "half_open",
                    probes_claimed=self._probes(b, now),
                    probe_successes=b.probe_successes,
                )
        return out

    def reset(self, deployment_id: str) -> bool:
        self._tripped.discard(deployment_id)
        return self._items.pop(deployment_id, None) is not None
