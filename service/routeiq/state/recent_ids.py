"""`RecentIds`: the deployment ids this worker decided for lately, bounded and expiring.

`POST /feedback` accepts an outcome only for a deployment the service knows: one in the catalog
or one it picked (or offered as a fallback) recently. Anything else would be kept in state for
ever, and every later decision reads the breaker view built from it — so an id nobody routed to
is ignored at the boundary, before it reaches state. The store is an LRU in order of last use:
adding and looking up are O(1), the oldest entries fall off the front, and decisions never scan
it.

One exception, so that feedback still works when a load balancer sends a gateway's `/route` to
one replica and its `/feedback` to another (which never saw the candidates): `admit` lets a few
never-seen ids in per minute (a token bucket) and remembers them. A gateway's deployments are
a handful and are learned at the first outcome; a flood of made-up ids gets that many a minute.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable


class RecentIds:
    def __init__(
        self,
        capacity: int,
        ttl_seconds: float,
        new_per_minute: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.ttl_seconds = ttl_seconds
        self.new_per_minute = new_per_minute
        self._clock = clock
        self._items: OrderedDict[str, float] = OrderedDict()  # id -> last seen
        self._tokens = float(new_per_minute)
        self._refilled = clock()

    def admit(self, key: str) -> bool:
        """`key` is known, or is let in now from the budget of never-seen ids (and remembered)."""
        if key in self:
            return True
        now = self._clock()
        rate = self.new_per_minute / 60.0
        self._tokens = min(float(self.new_per_minute), self._tokens + (now - self._refilled) * rate)
        self._refilled = now
        if self._tokens < 1.0 or self.capacity <= 0:
            return False
        self._tokens -= 1.0
        self.add((key,))
        return True

    def add(self, ids: Iterable[str]) -> None:
        if self.capacity <= 0:
            return
        now = self._clock()
        items = self._items
        for key in ids:
            if key in items:
                items.move_to_end(key)
            elif len(items) >= self.capacity:
                items.popitem(last=False)
            items[key] = now

    def __contains__(self, key: object) -> bool:
        seen = self._items.get(key)  # type: ignore[call-overload]
        if seen is None:
            return False
        if self._clock() - seen > self.ttl_seconds:
            del self._items[key]  # type: ignore[arg-type]
            return False
        return True

    def __len__(self) -> int:
        return len(self._items)
