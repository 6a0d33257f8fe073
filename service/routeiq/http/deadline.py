"""`X-RouteIQ-Deadline-Ms`: how long the caller waits for a decision. One reading of it for the
connection layer, the shedding middleware and the handlers."""

from __future__ import annotations

import math

HEADER = "X-RouteIQ-Deadline-Ms"
MAX_MS = 600_000.0  # ten minutes: longer is not a deadline a gateway sets for a routing call


def seconds_of(value: str | bytes) -> float | None:
    """The caller's time in seconds, or None when the value is not a number of milliseconds in
    (0, MAX_MS] (NaN and infinities included)."""
    try:
        ms = float(value)
    except ValueError:
        return None
    return ms / 1000 if not math.isnan(ms) and 0 < ms <= MAX_MS else None
