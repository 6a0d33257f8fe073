"""The decision pipeline: signals -> profile -> session -> embed -> classify -> strategy -> select.

Each stage is a plain function over typed values in `routeiq.decision` (pure: no I/O); this
module composes them with the inference threads and shared state, times each stage and records
metrics once. A decision reads one snapshot from start to end. CPU-bound embedding runs on the
engine's inference threads, never on the loop; a cached embedding never leaves the loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

from routeiq.decision.catalog import CatalogEntry
from routeiq.decision.classify import Classification, classify, describe
from routeiq.decision.estimators import Estimator
from routeiq.decision.experiments import Assignment, KeyKind, assign
from routeiq.decision.names import CENTROID, TRAINED_PREFIX
from routeiq.decision.policy import Scored, Selection, select
from routeiq.decision.premium_share import keep_premium_share
from routeiq.decision.profiles import Profile
from routeiq.decision.prompt import embed_segments, view_of
from routeiq.decision.schemas import CandidateExplain, RouteRequest, RouteResponse
from routeiq.decision.sessions import SessionRecord, session_key, session_record, sticky_entry
from routeiq.decision.signals import Signals, extract_signals
from routeiq.engine import Engine
from routeiq.errors import DeadlineUnmet, InvalidRequest, NoCandidate, Overloaded, TenantOverShare
from routeiq.inference.cache import cache_key
from routeiq.inference.embedder import Vector
from routeiq.inference.fair_share import Verdict
from routeiq.observability.metrics import label
from routeiq.observability.recent_decisions import Explainer
from routeiq.observability.stopwatch import Stopwatch
from routeiq.observability.training_rows import PendingDecision
from routeiq.snapshot import Snapshot

MAX_FALLBACKS = 5


@dataclass
class Context:
    """Per-request inputs that do not come from the body."""

    request_id: str
    profile_header: str | None = None
    session_header: str | None = None
    # When the caller stops waiting (time.perf_counter() clock), from `X-RouteIQ-Deadline-Ms`.
    deadline: float | None = None


async def decide(engine: Engine, request: RouteRequest, ctx: Context) -> RouteResponse:
    """One decision, then what is shared about it: the experiment counter (exact across replicas)
    and this worker's recent-decisions buffer."""
    response, explain = await _decide(engine, engine.snapshot, request, ctx)
    if response.experiment and response.variant:
        await engine.state.count_decision(response.experiment, response.variant, response.experiment_phase)
        engine.metrics.experiment_decisions.labels(label(response.experiment), label(response.variant)).inc()
    engine.recent.add(response, explain)
    # Every candidate the caller offered, not only the pick: its gateway may fall back to any of
    # them, and a worker that served one request of that gateway then knows them all.
    if request.candidates:
        engine.decided_ids.add(c.deployment_id for c in request.candidates)
    return response


async def _decide(
    engine: Engine, snap: Snapshot, request: RouteRequest, ctx: Context
) -> tuple[RouteResponse, Explainer | None]:
    watch = Stopwatch()
    settings = engine.settings
    view = view_of(request)
    signals = extract_signals(view, len(request.tools or ()))
    segments = embed_segments(view, settings.token_budget)
    if not segments:
        raise InvalidRequest(
            "the request has no text to route: messages carry no user or system text",
            field="messages" if request.messages is not None else "prompt",
        )
    watch.lap("signals")

    metadata = request.metadata or {}
    profile = snap.profiles.resolve(
        ctx.profile_header,
        request.profile or _str(metadata.get("routeiq_profile")),
        request.team,
        request.key_alias,
    )
    entries, catalog_note = snap.catalog.candidates_for(request)
    watch.lap("profile")

    key = session_key(request, ctx.session_header, view)
    assignment = _assignment(engine, snap, request, ctx, profile, key)
    if assignment is not None and assignment.profile is not None:
        profile = assignment.profile
    sticky = await _session_choice(engine, key, profile, signals, entries)
    watch.lap("session")
    if sticky is not None:
        response = _session_response(engine, sticky, profile, ctx, signals, request, watch)
        _mark_assignment(response, assignment, ())
        return response, None

    vector = await _embed(engine, segments, ctx.deadline)
    watch.lap("embed")
    classification = classify(
        vector,
        signals,
        snap.centroids,
        snap.complexity,
        min_confidence=settings.min_category_confidence,
    )
    watch.lap("classify")

    estimator, estimator_notes = _estimator(snap, assignment)
    estimates = estimator.estimate(vector, classification, entries)
    watch.lap("strategy")
    # A trained router drives the ranking only when it knew at least one candidate's model.
    predicted = any(source.startswith(TRAINED_PREFIX) for _, source in estimates)
    selection = await _select(engine, entries, estimates, profile, classification, signals, predicted)
    chosen = selection.ranked[0]
    if key is not None and profile.sticky_sessions:
        await engine.state.set_session(
            key, session_record(chosen.entry, profile, classification), settings.session_ttl_seconds
        )
    watch.lap("select")

    response = RouteResponse(
        model=chosen.entry.model,
        deployment_id=chosen.entry.deployment_id,
        model_group=chosen.entry.model_group,
        fallbacks=[s.entry.deployment_id for s in selection.ranked[1 : 1 + MAX_FALLBACKS]],
        profile=profile.name,
        tier=classification.tier,
        category=classification.category,
        confidence=classification.confidence,
        complexity=classification.complexity,
        strategy=_strategy_name(estimator, classification, predicted),
        reason=_reason(profile, classification, selection, catalog_note),
        request_id=ctx.request_id,
        timings_ms={},
    )
    if request.explain:
        response.signals, response.scores, response.candidates = _explained(
            signals, classification, selection
        )
    _mark_assignment(response, assignment, estimator_notes)
    _spend(engine, selection, signals.approx_tokens)
    _finish(engine, response, watch)
    if engine.training_rows is not None:
        _keep_for_learning(engine, ctx, response, vector, classification, selection, signals, segments)

    def explain() -> dict[str, Any]:
        # Built only when someone opens it (GET /admin/decisions/{id}/explain): the buffer
        # holds references to what this decision computed anyway, so /route pays nothing.
        shown, scores, candidates = _explained(signals, classification, selection)
        return {"signals": shown, "scores": scores, "candidates": [c.model_dump() for c in candidates]}

    return response, explain


def _keep_for_learning(
    engine: Engine,
    ctx: Context,
    response: RouteResponse,
    vector: Vector,
    classification: Classification,
    selection: Selection,
    signals: Signals,
    segments: list[str],
) -> None:
    """Keep what a training row needs until /feedback reports the outcome: one object and one
    dict insert, after the decision's timings are taken. The vector is the one computed (or
    cached) above, shared, not copied; the text only when the operator opted in."""
    rows = engine.training_rows
    assert rows is not None
    shortlist = selection.ranked[: 1 + MAX_FALLBACKS]
    rows.keep(
        ctx.request_id,
        PendingDecision(
            at=time.time(),
            embedding=vector,
            category=classification.category,
            tier=classification.tier,
            complexity=classification.complexity,
            low_confidence=classification.low_confidence,
            strategy=response.strategy,
            experiment=response.experiment,
            variant=response.variant,
            tokens=signals.approx_tokens,
            ranked=tuple((s.entry.deployment_id, s.entry.model) for s in shortlist),
            prompt="\n".join(segments) if rows.include_prompt else None,
        ),
    )


def _explained(
    signals: Signals, classification: Classification, selection: Selection
) -> tuple[dict[str, Any], dict[str, Any], list[CandidateExplain]]:
    shown = signals.as_dict()
    shown["notes"] = describe(classification)["notes"]
    scores = {
        "category": classification.category_scores,
        "tier": classification.tier_scores,
        "complexity_features": classification.features,
    }
    return shown, scores, _explain(selection)


def _spend(engine: Engine, selection: Selection, tokens: int) -> None:
    """Estimated spend of this decision and of the premium alternative: the prompt's tokens at
    the blended catalog price of the chosen deployment, and at that of the best-ranked premium
    candidate (the most expensive one when none is premium). The dashboard's saving is the gap."""
    chosen = selection.ranked[0]
    scored = selection.ranked + selection.excluded
    premium = [s for s in scored if s.entry.tier == "premium"] or scored
    alternative = max(premium, key=lambda s: (s.quality, s.cost))
    metrics = engine.metrics
    metrics.spend.labels(metrics.deployment_label(chosen.entry.deployment_id)).inc(chosen.cost * tokens / 1e6)
    metrics.premium_spend.inc(alternative.cost * tokens / 1e6)


def _assignment(
    engine: Engine, snap: Snapshot, request: RouteRequest, ctx: Context, profile: Profile, key: str | None
) -> Assignment | None:
    if not engine.settings.ab_testing_enabled:
        return None
    user = f"{request.team or ''}|{request.user}" if request.user else None
    keys: dict[KeyKind, str | None] = {"session": key, "user": user, "request": ctx.request_id}
    return assign(snap.experiments, snap.profiles, profile, keys)


async def _select(
    engine: Engine,
    entries: list[CatalogEntry],
    estimates: list[tuple[float, str]],
    profile: Profile,
    classification: Classification,
    signals: Signals,
    predicted: bool,
) -> Selection:
    """Policy over the live breaker view and the premium budget; 422 when nothing can serve."""
    circuits = await engine.state.circuit_view()
    selection = select(
        entries, estimates, profile, classification, signals, circuits.open, predicted=predicted
    )
    await _premium_budget(engine, profile, selection)
    if not selection.ranked:
        raise NoCandidate(
            f"no candidate satisfies profile {profile.name!r} for this request",
            field="candidates",
            excluded={s.entry.deployment_id: s.excluded for s in selection.excluded},
        )
    chosen = selection.ranked[0].entry.deployment_id
    if chosen in circuits.probing:
        # Half-open breaker: this decision is one of its probes.
        await engine.state.claim_probe(chosen)
        selection.notes.append(f"circuit_probe:{chosen}")
    return selection


async def _premium_budget(engine: Engine, profile: Profile, selection: Selection) -> None:
    settings = engine.settings
    target = settings.premium_share_target
    if target is None or profile.name not in settings.premium_share_profiles or not selection.ranked:
        return
    window = settings.premium_share_window_seconds
    premium, total = await engine.state.premium_share(window)
    if keep_premium_share(selection, premium, total, target):
        engine.metrics.budget_downgrades.inc()
    went_premium = selection.ranked[0].entry.tier == "premium"
    await engine.state.count_premium_decision(went_premium, window)
    engine.metrics.premium_share.set((premium + went_premium) / (total + 1))


def _strategy_name(estimator: Estimator, classification: Classification, predicted: bool) -> str:
    if predicted:
        return estimator.name  # the router's qualities decided, whatever the category
    if classification.heuristic:
        return "heuristic"
    if classification.low_confidence:
        return "default"
    # a trained router that knew none of the candidates: the priors decided
    return CENTROID if estimator.name.startswith(TRAINED_PREFIX) else estimator.name


def _estimator(snap: Snapshot, assignment: Assignment | None) -> tuple[Estimator, tuple[str, ...]]:
    """The active strategy's estimator, or the variant's; one not loaded here -> centroid."""
    if assignment is None or not assignment.strategy:
        return snap.estimator(), ()
    estimator = snap.estimator(assignment.strategy)
    if estimator.name != assignment.strategy:
        return estimator, (f"strategy_missing:{assignment.strategy}->{estimator.name}",)
    return estimator, ()


def _mark_assignment(response: RouteResponse, assignment: Assignment | None, extra: tuple[str, ...]) -> None:
    if assignment is None:
        return
    response.experiment, response.variant = assignment.experiment, assignment.variant
    response.experiment_phase = assignment.phase
    response.reason = " ".join((response.reason, *assignment.notes, *extra))


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


async def _embed(engine: Engine, segments: list[str], deadline: float | None = None) -> Vector:
    """Local cache, then the shared cache (if configured), then an inference thread — admitted
    only while the embedding queue has room: past it the request is answered 503 at once
    (Retry-After): a caller with a ~50 ms budget gains nothing from a longer queue. With the
    caller's deadline known, also refused when the expected wait plus one embedding would pass
    it, and skipped (not embedded) if it has passed by the time a thread is free: an answer
    nobody waits for is an embedding taken from a request that could still be served."""
    budget = engine.settings.token_budget
    key = cache_key(segments, budget, engine.cache_scope)
    cached = engine.cache.get(key)
    if cached is not None:
        engine.metrics.cache.labels("hit").inc()
        return cached
    shared = engine.shared_cache
    if shared is not None:
        cached = await shared.get(key)
        if cached is not None:
            engine.metrics.cache.labels("shared_hit").inc()
            engine.cache.put(key, cached)
            return cached
    engine.metrics.cache.labels("miss").inc()
    queue = engine.admission.embeddings
    if deadline is not None and queue.would_miss(deadline - time.perf_counter()):
        missed(engine)
    share = engine.capacity.embeddings
    verdict = share.admit(queue, engine.tenant)
    if verdict != "ok":
        refuse(engine, verdict, "the embedding queue is full", "queue_full")
    try:
        admitted = time.perf_counter()
        matrix, seconds = await engine.capacity.dispatch.run(
            engine.tenant, lambda: _timed_embed(engine, segments, budget, deadline, admitted)
        )
        if matrix is None:
            missed(engine)
        queue.observe(seconds)
    finally:
        share.release(queue, engine.tenant)
    vector: Vector = matrix[0]
    engine.cache.put(key, vector)
    if shared is not None:
        shared.put(key, vector)
    return vector


def refuse(engine: Engine, verdict: Verdict, what: str, reason: str) -> NoReturn:
    """Overload: 429 for a tenant over its share (the others are still served), 503 when
    there is no other tenant to protect."""
    metrics = engine.metrics
    if verdict == "over_share":
        metrics.rejected.labels("tenant_over_share").inc()
        metrics.tenant_refusals.labels(metrics.tenant_label(engine.tenant), "over_share").inc()
        raise TenantOverShare(
            f"{what} and tenant {engine.tenant!r} holds its share of it; retry shortly",
            retry_after=1,
            tenant=engine.tenant,
        )
    metrics.rejected.labels(reason).inc()
    metrics.tenant_refusals.labels(metrics.tenant_label(engine.tenant), "overloaded").inc()
    raise Overloaded(f"{what}; retry shortly", retry_after=1)


def missed(engine: Engine) -> NoReturn:
    engine.metrics.rejected.labels("deadline").inc()
    raise DeadlineUnmet()


def _timed_embed(
    engine: Engine, segments: list[str], budget: int, deadline: float | None, admitted: float
) -> tuple[npt.NDArray[np.float32] | None, float]:
    """Runs on an inference thread; its wall time (contention included) feeds admission. None,
    without embedding, when it queued for this thread (at least half an embedding's time: not
    just a slow hand-over) and one embedding from now would end past the caller's deadline."""
    start = time.perf_counter()
    embed_s = engine.admission.embeddings.avg_embed_s
    if deadline is not None and start - admitted >= embed_s / 2 and start + embed_s > deadline:
        return None, 0.0
    matrix = engine.embedder.embed([segments], budget)
    return matrix, time.perf_counter() - start


async def _session_choice(
    engine: Engine, key: str | None, profile: Profile, signals: Signals, entries: list[CatalogEntry]
) -> tuple[SessionRecord, CatalogEntry] | None:
    """Keep the conversation's model unless the profile changed or forbids it now, or its
    breaker is open (see `decision.sessions.sticky_entry`)."""
    if key is None or not profile.sticky_sessions:
        return None
    record = await engine.state.get_session(key, engine.settings.session_ttl_seconds)
    if record is None:
        return None
    entry = sticky_entry(record, profile, signals, entries)
    if entry is None:
        return None
    if entry.deployment_id in await engine.state.open_circuits():
        return None
    return record, entry


def _session_response(
    engine: Engine,
    sticky: tuple[SessionRecord, CatalogEntry],
    profile: Profile,
    ctx: Context,
    signals: Signals,
    request: RouteRequest,
    watch: Stopwatch,
) -> RouteResponse:
    record, entry = sticky
    response = RouteResponse(
        model=entry.model,
        deployment_id=entry.deployment_id,
        model_group=entry.model_group,
        fallbacks=[],
        profile=profile.name,
        tier=record.tier,
        category=record.category,
        confidence=1.0,
        complexity=record.complexity,
        strategy="session",
        reason="session_affinity:tool_loop" if signals.tool_loop else "session_affinity",
        request_id=ctx.request_id,
        timings_ms={},
    )
    if request.explain:
        response.signals = signals.as_dict()
    _finish(engine, response, watch)
    return response


def _reason(profile: Profile, c: Classification, selection: Selection, note: str | None) -> str:
    parts = [f"{profile.name}:{profile.prefer}", f"target:{selection.target_reason}"]
    parts.extend(n for n in c.notes if n.startswith(("rule:", "low_confidence", "non_english")))
    parts.extend(selection.notes)
    if note:
        parts.append(note)
    return " ".join(parts)


def _explain(selection: Selection) -> list[CandidateExplain]:
    ranked = [_explain_row(s, rank) for rank, s in enumerate(selection.ranked)]
    return ranked + [_explain_row(s, None) for s in selection.excluded]


def _explain_row(s: Scored, rank: int | None) -> CandidateExplain:
    return CandidateExplain(
        deployment_id=s.entry.deployment_id,
        model=s.entry.model,
        tier=s.entry.tier,
        expected_quality=s.quality,
        quality_source=s.quality_source,
        est_cost_per_mtok=round(s.cost, 4),
        rank=rank,
        excluded=s.excluded,
        demoted=s.demoted,
    )


def _finish(engine: Engine, response: RouteResponse, watch: Stopwatch) -> None:
    total = watch.total_ms()
    response.timings_ms = {k: round(v, 3) for k, v in watch.laps_ms.items()}
    response.timings_ms["total"] = round(total, 3)
    stage = engine.metrics.stage
    for name, ms in watch.laps_ms.items():
        stage(name).observe(ms / 1000)
    stage("total").observe(total / 1000)
    tenant = engine.metrics.tenant_label(engine.tenant)
    engine.metrics.tenant_decisions.labels(tenant).inc()
    engine.metrics.tenant_duration.labels(tenant).observe(total / 1000)
    engine.metrics.decisions.labels(
        engine.metrics.model_label(response.model),
        engine.metrics.deployment_label(response.deployment_id),
        response.tier,
        label(response.category),
        label(response.profile),
        label(response.strategy),
    ).inc()
