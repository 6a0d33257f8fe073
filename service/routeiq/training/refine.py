"""`routeiq refine`: learn a candidate router from production rows, compare it with the active
strategy on the newest rows, write it as a verified models folder, propose an A/B experiment.

The newest share of rows (by decision time) is held back, not a random share: the candidate is
judged on traffic it has not seen and that came after what it learnt from, as it would be once
deployed. The candidate never replaces the active strategy here: it is written beside it, and
only an experiment started through the admin API routes traffic with it.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from routeiq.artifacts.integrity import write_manifest
from routeiq.decision.catalog import CatalogEntry
from routeiq.decision.classify import Classification
from routeiq.decision.estimators import Estimator
from routeiq.decision.names import TRAINED_PREFIX
from routeiq.decision.schemas import Tier
from routeiq.errors import InvalidRequest
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.settings import Settings
from routeiq.snapshot import Snapshot, load_snapshot
from routeiq.trained.manifest import KINDS, NAME_PATTERN
from routeiq.training import production_rows
from routeiq.training.export import write_router
from routeiq.training.production_rows import ProductionRows
from routeiq.training.scores import auc, replay_pair_curve
from routeiq.training.trainers import CHOSEN, TRAINERS, Trained, masked_bce

SCORERS = ("candidate", "active", "random", "length")
MIN_ROWS_FLOOR = 20


@dataclass(frozen=True)
class RefinePlan:
    rows: tuple[Path, ...]
    out: Path
    name: str = "refined"
    kind: str = "knn"
    holdout_share: float = 0.2
    min_rows: int = 200
    pairs: tuple[tuple[str, str], ...] = ()
    seed: int = 0
    tenant: str | None = None


@dataclass
class RefineResult:
    router: str  # the candidate's strategy name, ml:<name>
    active: str
    out: Path
    rows: int
    train_rows: int
    holdout_rows: int
    skipped: dict[str, int]
    models: list[str]
    # scorer -> {"auc": ..., "mae": ...} on the held-back rows (the served model's outcome)
    outcome_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    # "STRONG:WEAK" -> scorer -> APGR (replay estimate), plus the pair's row counts
    pairs: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "candidate": self.router,
            "active": self.active,
            "rows": self.rows,
            "train_rows": self.train_rows,
            "holdout_rows": self.holdout_rows,
            "skipped": self.skipped,
            "outcome_scores": self.outcome_scores,
            "pairs": self.pairs,
        }

    def table(self) -> str:
        """The comparison, as printed."""
        width = max([16, *(len(p) + 6 for p in self.pairs)])
        lines = [
            f"rows: {self.rows} ({self.train_rows} to fit, the newest {self.holdout_rows} held back); "
            f"skipped: {self.skipped}",
            " " * width + "".join(f"{s:>11}" for s in SCORERS),
        ]
        for metric in ("auc", "mae"):
            cells = [self.outcome_scores.get(s, {}).get(metric, math.nan) for s in SCORERS]
            lines.append(f"{'outcome ' + metric:{width}}" + "".join(_cell(v) for v in cells))
        for pair, scores in self.pairs.items():
            lines.append(
                f"{'APGR ' + pair:{width}}" + "".join(_cell(scores.get(s, math.nan)) for s in SCORERS)
            )
        lines.append(
            f"candidate = {self.router}, active = {self.active}. APGR is a replay estimate on the "
            "held-back rows (unbiased only where the served model was assigned at random, as in "
            "an A/B experiment); promote the candidate through an experiment, never directly."
        )
        return "\n".join(lines)


def _cell(value: float) -> str:
    return f"{'n/a':>11}" if value is None or math.isnan(value) else f"{value:>11.3f}"


def run(plan: RefinePlan, settings: Settings) -> RefineResult:
    _check_plan(plan)
    embedder = OnnxEmbedder(settings.embedder_dir, intra_op_threads=settings.ort_intra_op_threads)
    rows = production_rows.load(list(plan.rows), embedder.fingerprint, embedder.dimension, plan.tenant)
    models = sorted(set(rows.model))
    if len(rows) < plan.min_rows:
        raise InvalidRequest(
            f"too few training rows: {len(rows)} usable in {rows.files} file(s) "
            f"(skipped {rows.skipped}); refine needs at least {plan.min_rows} (--min-rows). "
            "Keep ROUTEIQ_TRAINING_ROWS_DIR on and /feedback reporting request_id for longer.",
            field="rows",
        )
    if len(models) < 2:
        raise InvalidRequest(
            f"the rows name one model only ({models}); a router ranks two or more", field="rows"
        )
    n_hold = max(1, math.ceil(len(rows) * plan.holdout_share))
    order = np.arange(len(rows))  # rows are in decision-time order
    train, hold = rows.take(order[:-n_hold]), rows.take(order[-n_hold:])
    fit_models = sorted(set(train.model))
    trained = _fit(plan.kind, train, fit_models)

    snap = load_snapshot(settings, embedder)
    active = snap.estimator()
    result = RefineResult(
        router=f"{TRAINED_PREFIX}{plan.name}",
        active=active.name,
        out=plan.out,
        rows=len(rows),
        train_rows=len(train),
        holdout_rows=len(hold),
        skipped=rows.skipped,
        models=fit_models,
    )
    _score(result, trained, fit_models, active, snap, hold, plan)
    _write(plan, settings, embedder, trained, fit_models, train, result)
    return result


def _check_plan(plan: RefinePlan) -> None:
    if plan.kind not in KINDS:
        raise InvalidRequest(f"unknown router kind {plan.kind!r}; known: {list(KINDS)}", field="kind")
    if not NAME_PATTERN.match(plan.name):
        raise InvalidRequest(f"router name {plan.name!r} must match {NAME_PATTERN.pattern}", field="name")
    if not 0.05 <= plan.holdout_share <= 0.5:
        raise InvalidRequest("--holdout-share must be between 0.05 and 0.5", field="holdout_share")
    if plan.min_rows < MIN_ROWS_FLOOR:
        raise InvalidRequest(f"--min-rows must be at least {MIN_ROWS_FLOOR}", field="min_rows")
    if plan.out.exists() and any(plan.out.iterdir()):
        raise InvalidRequest(f"{plan.out} exists and is not empty; name a new folder", field="out")


def _targets(
    rows: ProductionRows, models: list[str]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """One known score per row: the served model's outcome; the other models' are unknown."""
    y = np.zeros((len(rows), len(models)), np.float32)
    mask = np.zeros_like(y)
    column = {m: i for i, m in enumerate(models)}
    for i, model in enumerate(rows.model):
        if model in column:
            y[i, column[model]] = rows.label[i]
            mask[i, column[model]] = 1.0
    return y, mask


def _fit(kind: str, train: ProductionRows, models: list[str]) -> Trained:
    """Settings chosen on the newest tenth of the fitting rows, then refitted on all of them
    (the way `routeiq train` does, with a time split instead of a random one)."""
    y, mask = _targets(train, models)
    n_val = max(1, len(train) // 10)
    fit, val = slice(0, len(train) - n_val), slice(len(train) - n_val, None)
    probe = TRAINERS[kind](train.x[fit], y[fit], mask[fit], val=(train.x[val], y[val], mask[val]))
    chosen = CHOSEN[kind]
    final: Trained = TRAINERS[kind](train.x, y, mask, val=None, **{chosen: int(probe.settings[chosen])})
    return final


def _classification(rows: ProductionRows, i: int) -> Classification:
    """The decision's classification as the row kept it (what the centroid estimator reads)."""
    return Classification(
        category=rows.category[i],
        confidence=1.0,
        low_confidence=rows.low_confidence[i],
        complexity=float(rows.complexity[i]),
        tier=cast(Tier, rows.tier[i]),
        category_scores={},
        tier_scores={},
        features={},
    )


def _entry(snap: Snapshot, rows: ProductionRows, model: str) -> CatalogEntry | None:
    for dep, m in zip(rows.deployment_id, rows.model, strict=True):
        if m == model:
            entry = snap.catalog.lookup(dep, m)
            if entry is not None:
                return entry
    return snap.catalog.lookup(model)


def _active_quality(
    active: Estimator, hold: ProductionRows, i: int, entries: list[CatalogEntry]
) -> list[float]:
    return [q for q, _ in active.estimate(hold.x[i], _classification(hold, i), entries)]


def _score(
    result: RefineResult,
    trained: Trained,
    models: list[str],
    active: Estimator,
    snap: Snapshot,
    hold: ProductionRows,
    plan: RefinePlan,
) -> None:
    rng = np.random.default_rng(plan.seed)
    n = len(hold)
    predicted = trained.predict(hold.x)
    column = {m: i for i, m in enumerate(models)}
    known = np.array([m in column for m in hold.model])
    ok = hold.success & known
    cand_q = np.array([predicted[i, column[m]] if m in column else np.nan for i, m in enumerate(hold.model)])
    active_q = np.full(n, np.nan)
    for i in range(n):
        entry = snap.catalog.lookup(hold.deployment_id[i], hold.model[i])
        if entry is not None:
            active_q[i] = _active_quality(active, hold, i, [entry])[0]
    label = hold.label.astype(np.float64)
    y, mask = _targets(hold, models)
    result.outcome_scores = {
        "candidate": {
            "auc": auc(cand_q[known], ok[known]),
            "mae": float(np.nanmean(np.abs(cand_q - label))),
            "bce": masked_bce(predicted, y, mask),
        },
        "active": _outcome(active_q, label, hold.success),
        "random": {"auc": auc(rng.random(n), hold.success)},
        # longer prompts fail more often: the length-only baseline predicts quality from -length
        "length": {"auc": auc(-hold.tokens, hold.success)},
    }
    for strong, weak in plan.pairs or _default_pairs(hold, result.models):
        result.pairs[f"{strong}:{weak}"] = _pair(strong, weak, predicted, column, active, snap, hold, rng)


def _outcome(q: npt.NDArray[np.float64], label: npt.NDArray[np.float64], success: Any) -> dict[str, float]:
    have = ~np.isnan(q)
    if not have.any():
        return {"auc": math.nan, "mae": math.nan}
    return {"auc": auc(q[have], success[have]), "mae": float(np.abs(q[have] - label[have]).mean())}


def _default_pairs(hold: ProductionRows, models: list[str]) -> list[tuple[str, str]]:
    """The two models served most among the held-back rows; the strong one is the one with the
    better mean outcome there."""
    counts = {m: hold.model.count(m) for m in models}
    top = sorted((m for m in models if counts[m] >= 5), key=lambda m: -counts[m])[:2]
    if len(top) < 2:
        return []
    mean = {m: float(hold.label[np.array(hold.model) == m].mean()) for m in top}
    strong, weak = sorted(top, key=lambda m: -mean[m])
    return [(strong, weak)]


def _pair(
    strong: str,
    weak: str,
    predicted: npt.NDArray[np.float32],
    column: dict[str, int],
    active: Estimator,
    snap: Snapshot,
    hold: ProductionRows,
    rng: np.random.Generator,
) -> dict[str, float]:
    served = np.array(hold.model)
    rows = np.nonzero((served == strong) | (served == weak))[0]
    logged_strong = served[rows] == strong
    quality = hold.label[rows]
    out: dict[str, float] = {
        "rows_strong": int(logged_strong.sum()),
        "rows_weak": int((~logged_strong).sum()),
    }
    if strong in column and weak in column:
        score = predicted[rows, column[strong]] - predicted[rows, column[weak]]
        out["candidate"] = replay_pair_curve(score, logged_strong, quality).apgr
    entries = [_entry(snap, hold, strong), _entry(snap, hold, weak)]
    if entries[0] is not None and entries[1] is not None:
        pair_entries = [entries[0], entries[1]]
        gaps = [_active_quality(active, hold, int(i), pair_entries) for i in rows]
        out["active"] = replay_pair_curve([s - w for s, w in gaps], logged_strong, quality).apgr
    out["random"] = replay_pair_curve(rng.random(len(rows)), logged_strong, quality).apgr
    out["length"] = replay_pair_curve(hold.tokens[rows], logged_strong, quality).apgr
    return out


def _write(
    plan: RefinePlan,
    settings: Settings,
    embedder: OnnxEmbedder,
    trained: Trained,
    models: list[str],
    train: ProductionRows,
    result: RefineResult,
) -> None:
    """The candidate folder: the active models folder as it is (so nothing changes by deploying
    it), plus the candidate router, under a fresh manifest."""
    shutil.copytree(
        settings.models_path, plan.out, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True
    )
    routers = plan.out / "routers"
    if settings.routers_path is not None:  # routers kept outside the models folder come along
        shutil.copytree(settings.routers_path, routers, dirs_exist_ok=True)
    if (routers / f"{plan.name}.json").exists():
        shutil.rmtree(plan.out)
        raise InvalidRequest(
            f"a router named {plan.name!r} exists already; choose another --name", field="name"
        )
    digest = hashlib.sha256(train.x.tobytes() + "\x1f".join(train.model).encode() + train.label.tobytes())
    write_router(
        routers,
        plan.name,
        trained,
        models=models,
        embedder_name=embedder.name,
        embedder_sha256=embedder.fingerprint,
        dimension=embedder.dimension,
        token_budget=settings.token_budget,
        training={
            "source": "production rows (routeiq refine)",
            "rows": result.train_rows,
            "holdout_rows": result.holdout_rows,
            "holdout": f"the newest {plan.holdout_share:.0%} by decision time",
            "fitted_until": float(train.at[-1]) if len(train) else None,
            "data_sha256": digest.hexdigest(),
            "seed": plan.seed,
        },
        metrics={"refine": result.to_json()},
    )
    write_manifest(plan.out)


def experiment_body(result: RefineResult, name: str | None = None) -> dict[str, Any]:
    """The `POST /admin/experiments` body that puts the candidate beside the active strategy,
    half the traffic each, assigned by session, user, then request."""
    return {
        "name": name or f"refine-{result.router[len(TRAINED_PREFIX) :]}",
        "variants": [
            {"name": "active", "weight": 50, "strategy": result.active},
            {"name": "candidate", "weight": 50, "strategy": result.router},
        ],
    }
