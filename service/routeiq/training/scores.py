"""Evaluation metrics, pure numpy.

Strong/weak pair curves follow RouteLLM: rank prompts by a score (higher = more in need of the
strong model), send the top share p to the strong model, the rest to the weak one.
PGR(p) = (quality(p) - quality(weak)) / (quality(strong) - quality(weak)); APGR is the area under
PGR over p in [0, 1]; CPT(x) is the smallest share of strong calls with PGR >= x. Ties in the
score are split evenly (the expected curve under random tie-breaking), so a constant score gives
the random router's straight line, APGR 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PairCurve:
    shares: F64  # share of prompts sent to the strong model, 0..1
    pgr: F64
    quality: F64

    @property
    def apgr(self) -> float:
        return float(np.trapezoid(self.pgr, self.shares))

    def cpt(self, target: float) -> float:
        """Smallest share of strong calls that recovers `target` of the gap (1.0 if never)."""
        hit = np.nonzero(self.pgr >= target - 1e-12)[0]
        return float(self.shares[hit[0]]) if len(hit) else 1.0


def pair_curve(score: npt.ArrayLike, strong: npt.ArrayLike, weak: npt.ArrayLike) -> PairCurve:
    s = np.asarray(score, dtype=np.float64)
    qs, qw = np.asarray(strong, dtype=np.float64), np.asarray(weak, dtype=np.float64)
    n = len(s)
    order = np.argsort(-s, kind="stable")
    gain = (qs - qw)[order]
    sorted_scores = s[order]
    # Curve points only at the ends of tie groups; linear in between = random order within ties.
    ends = np.nonzero(np.append(sorted_scores[1:] != sorted_scores[:-1], True))[0] + 1
    counts = np.concatenate([[0], ends])
    cum = np.concatenate([[0.0], np.cumsum(gain)[ends - 1]])
    k = np.arange(n + 1)
    total_gain = np.interp(k, counts, cum)
    quality = (qw.sum() + total_gain) / n
    gap = qs.mean() - qw.mean()
    pgr = (quality - qw.mean()) / gap if gap > 0 else np.full(n + 1, np.nan)
    return PairCurve(k / n, pgr, quality)


def auc(score: npt.ArrayLike, label: npt.ArrayLike) -> float:
    """ROC AUC by the rank-sum formula (ties get average ranks); NaN with one class only."""
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(label, dtype=bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(s, kind="stable")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    start = 0
    for end in np.append(np.nonzero(sorted_s[1:] != sorted_s[:-1])[0] + 1, len(s)):
        ranks[order[start:end]] = (start + end + 1) / 2
        start = end
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def threshold_policy(predicted: F64, costs: F64, threshold: float) -> npt.NDArray[np.int64]:
    """The serving rule under a trained router: the cheapest model whose predicted quality meets
    the threshold (ties: higher prediction), else the best-predicted one. Returns a column per row."""
    meets = predicted >= threshold
    # Lexicographic: cost ascending, then prediction descending, among those that meet it.
    cost_rank = np.unique(costs, return_inverse=True)[1].astype(np.float64)
    key = np.where(meets, cost_rank[None, :] * 10.0 - predicted, np.inf)
    choice = key.argmin(axis=1)
    fallback = predicted.argmax(axis=1)
    out: npt.NDArray[np.int64] = np.where(meets.any(axis=1), choice, fallback).astype(np.int64)
    return out


def replay_pair_curve(
    score: npt.ArrayLike, logged_strong: npt.ArrayLike, quality: npt.ArrayLike, seed: int = 0
) -> PairCurve:
    """The strong/weak pair curve from logged outcomes, where each prompt was answered by one
    of the two models only (production rows). The replay estimate: the policy "top share p by
    score to the strong model" is scored on the rows where it agrees with what was served.
    Unbiased when the served model was assigned at random (an A/B experiment); with rows logged
    by a routing policy it favours policies like that one, which is why promotion goes through
    an experiment. Ties are broken in a fixed random order (the random router's expectation)."""
    s = np.asarray(score, dtype=np.float64)
    strong = np.asarray(logged_strong, dtype=bool)
    q = np.asarray(quality, dtype=np.float64)
    n = len(s)
    shuffle = np.random.default_rng(seed).permutation(n)
    order = shuffle[np.argsort(-s[shuffle], kind="stable")]
    st, qq = strong[order], q[order]
    # Top k rows go to the strong model: matched are the strong-served among them and the
    # weak-served among the rest.
    top_sum = np.concatenate([[0.0], np.cumsum(qq * st)])
    top_n = np.concatenate([[0], np.cumsum(st)])
    weak_q, weak_n = np.concatenate([[0.0], np.cumsum(qq * ~st)]), np.concatenate([[0], np.cumsum(~st)])
    rest_sum, rest_n = weak_q[-1] - weak_q, weak_n[-1] - weak_n
    matched = np.maximum(top_n + rest_n, 1)
    value = (top_sum + rest_sum) / matched
    q_weak = float(q[~strong].mean()) if (~strong).any() else float("nan")
    q_strong = float(q[strong].mean()) if strong.any() else float("nan")
    gap = q_strong - q_weak
    pgr = (value - q_weak) / gap if gap > 0 else np.full(n + 1, np.nan)
    return PairCurve(np.arange(n + 1) / max(n, 1), pgr, value)
