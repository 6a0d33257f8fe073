"""Online premium budget: keep the share of decisions that go to premium-tier models at or under
ROUTEIQ_PREMIUM_SHARE_TARGET over a sliding window (ROUTEIQ_PREMIUM_SHARE_WINDOW_SECONDS).

The counts live in the state backend (replicas sharing Redis share one window); this module only
decides. When the chosen candidate is premium and taking it would push the share over the
target, the best-ranked non-premium candidate is taken instead (the ranking already says which
is next best) and the decision's reason says `premium_budget`. Reading and counting are two
steps, so concurrent replicas can overshoot by the decisions in flight between them; the window
corrects it next.
"""

from __future__ import annotations

from routeiq.decision.policy import Selection


def keep_premium_share(selection: Selection, premium: int, total: int, target: float) -> bool:
    """Move a non-premium candidate to the top when the chosen premium one would exceed the
    target share; True when it did."""
    chosen = selection.ranked[0]
    if chosen.entry.tier != "premium" or (premium + 1) / (total + 1) <= target:
        return False
    alternative = next(
        (
            i
            for i, s in enumerate(selection.ranked)
            if s.entry.tier != "premium" and "circuit_open" not in s.demoted
        ),
        None,
    )
    if alternative is None:
        return False
    selection.ranked.insert(0, selection.ranked.pop(alternative))
    selection.notes.append("premium_budget")
    return True
