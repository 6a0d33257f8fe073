"""Online premium budget: keep the share of decisions that go to premium-tier models at or under
ROUTEIQ_PREMIUM_SHARE_TARGET over a sliding window (ROUTEIQ_PREMIUM_SHARE_WINDOW_SECONDS).

Counts live in the state backend, so replicas sharing Redis share one window. When the chosen
candidate is premium and taking it would push the share over the target, the best-ranked
non-premium candidate is taken instead (the ranking already says which is next best) and the
decision's reason says `premium_budget`. Reading and counting are two steps, so concurrent
replicas can overshoot by the decisions in flight between them; the window corrects it next.
"""

from __future__ import annotations

from .engine import Engine
from .policy import Selection
from .profiles import Profile


async def apply_premium_budget(engine: Engine, profile: Profile, selection: Selection) -> None:
    settings = engine.settings
    target = settings.premium_share_target
    if target is None or profile.name not in settings.premium_share_profiles or not selection.ranked:
        return
    window = settings.premium_share_window_seconds
    premium, total = await engine.state.premium_share(window)
    chosen = selection.ranked[0]
    if chosen.entry.tier == "premium" and (premium + 1) / (total + 1) > target:
        alternative = next(
            (
                i
                for i, s in enumerate(selection.ranked)
                if s.entry.tier != "premium" and "circuit_open" not in s.demoted
            ),
            None,
        )
        if alternative is not None:
            selection.ranked.insert(0, selection.ranked.pop(alternative))
            selection.notes.append("premium_budget")
            engine.metrics.budget_downgrades.inc()
    went_premium = selection.ranked[0].entry.tier == "premium"
    await engine.state.count_premium_decision(went_premium, window)
    engine.metrics.premium_share.set((premium + went_premium) / (total + 1))
