"""Recent decisions, per worker: a bounded ring buffer for GET /admin/decisions.

Per worker on purpose: it costs nothing shared and answers "what did this process just decide";
every answer carries the worker's pid so a caller knows which one it saw.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from routeiq.decision.schemas import RouteResponse

# Builds a decision's explain view on demand from what the decision computed anyway.
Explainer = Callable[[], dict[str, Any]]
FILTERS = ("model", "deployment_id", "profile", "strategy", "tier", "category", "experiment", "variant")


class RecentDecisions:
    def __init__(self, size: int) -> None:
        self._items: deque[tuple[dict[str, Any], Explainer | None]] = deque(maxlen=max(size, 0))

    def add(self, response: RouteResponse, explain: Explainer | None = None) -> None:
        if self._items.maxlen == 0:
            return
        self._items.append(
            (
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
                    "explainable": explain is not None,
                },
                explain,
            )
        )

    def query(
        self, filters: Mapping[str, str | None], since: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Newest first; every given filter must match exactly."""
        wanted = {k: v for k, v in filters.items() if v is not None and k in FILTERS}
        out: list[dict[str, Any]] = []
        for item, _ in reversed(self._items):
            if since is not None and item["at"] < since:
                break
            if all(item.get(k) == v for k, v in wanted.items()):
                out.append(item)
                if len(out) >= limit:
                    break
        return out

    def explain(self, request_id: str) -> dict[str, Any] | None:
        """The decision's record with its explain view (signals, scores, every candidate), or
        None when it has left the buffer. A session answer has no explain (nothing was ranked)."""
        for item, explainer in reversed(self._items):
            if item["request_id"] == request_id:
                return {**item, "explain": explainer() if explainer is not None else None}
        return None

    def __len__(self) -> int:
        return len(self._items)
