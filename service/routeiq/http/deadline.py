"""`X-RouteIQ-Deadline-Ms`: how long the caller waits for a decision. One reading of it for the
connection layer, the shedding middleware and the handlers."""

from __future__ import annotations

import math

HEADER = "X-RouteIQ-Deadline-Ms"
MAX_MS = 600_000.0  # ten minutes: longer is not a deadline a gateway sets for a routing call


# The share of the caller's time the service plans to use. The rest covers what its estimate
# (queue wait + one embedding) does not see: the decision's other stages, the event loop's own
# queue when the worker is busy, the response's way back and the caller's clock starting before
# ours. Measured: planning on the whole budget kept goodput but left the accepted p99 ~25%
# over it at 4x load (bench/RESULTS.md, "Overload").
PLANNED_SHARE = 0.8


def seconds_of(value: str | bytes) -> float | None:
    """The time the service plans to take for a caller who sent `value`, in seconds
    (PLANNED_SHARE of it); None when the value is not a number of milliseconds in (0, MAX_MS]
    (NaN and infinities included)."""
    try:
        ms = float(value)
    except ValueError:
        return None
    return ms / 1000 * PLANNED_SHARE if not math.isnan(ms) and 0 < ms <= MAX_MS else None
