"""RouteLLM's cost-quality metrics for a router score (higher = send to the strong model).

Routing the top fraction f of prompts (by score) to the strong model gives a quality q(f).
PGR(f) = (q(f) - q_weak) / (q_strong - q_weak); APGR is its mean over f in [0, 1]; CPT(x) is the
smallest strong-call fraction whose PGR reaches x. A random score has APGR ~0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RoutingCurve:
    fractions: FloatArray  # share of calls sent to the strong model
    pgr: FloatArray  # performance gap recovered at each fraction
    apgr: float
    cpt50: float
    cpt80: float


def routing_curve(
    score: npt.ArrayLike, strong: npt.ArrayLike, weak: npt.ArrayLike, steps: int = 100
) -> RoutingCurve:
    s = np.asarray(score, dtype=np.float64)
    q_strong, q_weak = np.asarray(strong, dtype=np.float64), np.asarray(weak, dtype=np.float64)
    n = len(s)
    # Stable descending order; ties broken by position so the curve is deterministic.
    order = np.lexsort((np.arange(n), -s))
    gain = (q_strong - q_weak)[order]
    cumulative = np.concatenate([[0.0], np.cumsum(gain)])
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.rint(fractions * n).astype(int)
    quality = (q_weak.sum() + cumulative[counts]) / n
    gap = q_strong.mean() - q_weak.mean()
    pgr = (quality - q_weak.mean()) / gap if gap > 0 else np.zeros_like(quality)
    apgr = float(np.trapezoid(pgr, fractions))
    return RoutingCurve(fractions, pgr, apgr, _cpt(fractions, pgr, 0.5), _cpt(fractions, pgr, 0.8))


def _cpt(fractions: FloatArray, pgr: FloatArray, target: float) -> float:
    reached = np.nonzero(pgr >= target)[0]
    return float(fractions[reached[0]]) if len(reached) else 1.0
