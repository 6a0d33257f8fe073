"""One stopwatch for every timed sequence: decision stages and start-up artifact loads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Stopwatch:
    """Milliseconds per named lap; a name lapped twice adds up."""

    laps_ms: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    _last: float = 0.0

    def __post_init__(self) -> None:
        self._last = self.started

    def lap(self, name: str) -> float:
        now = time.perf_counter()
        ms = (now - self._last) * 1000
        self.laps_ms[name] = self.laps_ms.get(name, 0.0) + ms
        self._last = now
        return ms

    def total_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000
