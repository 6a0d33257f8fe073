"""Recent decisions, per worker: a bounded ring buffer for GET /admin/decisions.

Per worker on purpose: it costs nothing shared and answers "what did this process just decide";
every answer carries the worker's pid so a caller knows which one it saw.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from routeiq.decision.schemas import RouteResponse

FILTERS = ("model", "deployment_id", "profile", "strategy", "tier", "category", "experiment", "variant")


class RecentDecisions:
    def __init__(self, size: int) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=max(size, 0))

    def add(self, response: RouteResponse) -> None:
        if self._items.maxlen == 0:
            return
        self._items.append(
            {
                "at": round(time.time(), 3),
                "request_id": response.request_id,
                "model": response.model,
                "deployment_id": response.deployment_id,
                "profile": response.profile,
                "strategy": response.strategy,
                "tier": response.tier,
                "category": response.category,
                "complexity": response.complexity,
                "experiment": response.experiment,
                "variant": response.variant,
                "reason": response.reason,
                "total_ms": response.timings_ms.get("total"),
            }
        )

    def query(
        self, filters: Mapping[str, str | None], since: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Newest first; every given filter must match exactly."""
        wanted = {k: v for k, v in filters.items() if v is not None and k in FILTERS}
        out: list[dict[str, Any]] = []
        for item in reversed(self._items):
            if since is not None and item["at"] < since:
                break
            if all(item.get(k) == v for k, v in wanted.items()):
                out.append(item)
                if len(out) >= limit:
                    break
        return out

    def __len__(self) -> int:
        return len(self._items)
