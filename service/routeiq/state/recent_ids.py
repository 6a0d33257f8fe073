"""`RecentIds`: the deployment ids this worker decided for lately, bounded and expiring.

`POST /feedback` accepts an outcome only for a deployment the service knows: one in the catalog
or one it picked (or offered as a fallback) recently. Anything else would be kept in state for
ever, and every later decision reads the breaker view built from it — so an id nobody routed to
is ignored at the boundary, before it reaches state. The store is an LRU in order of last use:
adding and looking up are O(1), the oldest entries fall off the front, and decisions never scan
it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable


class RecentIds:
    def __init__(
        self, capacity: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._items: OrderedDict[str, float] = OrderedDict()  # id -> last seen

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
