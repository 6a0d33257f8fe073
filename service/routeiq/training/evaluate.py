"""`routeiq eval`: trained routers and the zero-config baselines on a held-out set, in one run.

Everything the tables in bench/RESULTS.md ("Trained routers") say comes from one call of `run`:
per-model prediction quality, nine-model routing, strong/weak pair curves (APGR, CPT) against
random, prompt-length, the centroid pipeline's `complexity` and an oracle, and each router's
inference cost beyond the embedding.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from routeiq.artifacts.integrity import sha256_file
from routeiq.decision.catalog import Catalog
from routeiq.decision.classify import ComplexityModel, classify
from routeiq.decision.estimators import CentroidEstimator
from routeiq.decision.prompt import view_of
from routeiq.decision.signals import extract_signals
from routeiq.errors import ArtifactError, InvalidRequest
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.settings import Settings
from routeiq.snapshot import centroids_for
from routeiq.trained.router import TrainedEstimator, TrainedRouter
from routeiq.training import data
from routeiq.training.embeddings import DEFAULT_CACHE_DIR, embed_examples
from routeiq.training.scores import PairCurve, auc, pair_curve, threshold_policy
from routeiq.training.train import training_set

log = logging.getLogger("routeiq.training")
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EvalPlan:
    data: Path
    routers: Path
    catalog: Path
    pairs: tuple[tuple[str, str], ...]
    train_data: Path | None = None
    names: tuple[str, ...] = ()
    timing_runs: int = 2000
    cache_dir: Path | None = DEFAULT_CACHE_DIR


@dataclass
class RouterResult:
    name: str
    kind: str
    predicted: F64  # [n, eval models], NaN where the router does not know the model
    graph_bytes: int
    verified_split: bool | None
    timing_us: dict[str, float] = field(default_factory=dict)


@dataclass
class EvalResult:
    plan: EvalPlan
    models: list[str]
    costs: F64
    premium: npt.NDArray[np.bool_]
    actual: F64
    routers: list[RouterResult]
    baseline_scores: dict[str, F64]
    info: dict[str, Any]
    refused: dict[str, str]


def _load_routers(plan: EvalPlan, embedder: OnnxEmbedder) -> tuple[list[TrainedRouter], dict[str, str]]:
    routers, refused = [], {}
    for manifest in sorted(plan.routers.glob("*.json")):
        if plan.names and manifest.stem not in plan.names:
            continue
        try:
            routers.append(TrainedRouter(manifest, embedder.fingerprint))
        except ArtifactError as exc:
            refused[manifest.stem] = exc.message
    if not routers:
        raise InvalidRequest(f"no router could be loaded from {plan.routers}: {refused or 'none found'}")
    return routers, refused


def _complexity_and_length(
    examples: list[data.Example], x: npt.NDArray[np.float32], settings: Settings, embedder: OnnxEmbedder
) -> tuple[F64, F64]:
    """The live pipeline's `complexity` and task length for each prompt (same signals, same
    classify, same vectors)."""
    centroids = centroids_for(settings, embedder)
    model = ComplexityModel.load(settings.models_path / "complexity.json")
    complexity, length = [], []
    for example, vector in zip(examples, x, strict=True):
        signals = extract_signals(view_of(example.request), 0)
        result = classify(
            vector.astype(np.float32),
            signals,
            centroids,
            model,
            min_confidence=settings.min_category_confidence,
        )
        complexity.append(result.complexity)
        length.append(float(signals.task_tokens))
    return np.array(complexity), np.array(length)


def _timing(
    router: TrainedRouter, vector: npt.NDArray[np.float32], runs: int, catalog: Catalog
) -> dict[str, float]:
    """Median/p99 microseconds of one prediction for one prompt, and of the whole strategy
    estimate over the catalog's candidates (name matching + clamping included)."""
    from routeiq.decision.classify import Classification

    one = vector[None, :]
    for _ in range(min(200, runs)):
        router.predict(one)
    samples = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        router.predict(one)
        samples[i] = time.perf_counter() - start
    strategy = TrainedEstimator(router, CentroidEstimator(ComplexityModel(0.0, {}, {}, (0.2, 0.4, 0.6, 0.8))))
    entries = list(catalog.entries)
    classification = Classification("conversation", 1.0, False, 0.5, "moderate", {}, {}, {})
    estimate = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        strategy.estimate(vector, classification, entries)
        estimate[i] = time.perf_counter() - start
    return {
        "predict_p50_us": float(np.percentile(samples, 50) * 1e6),
        "predict_p99_us": float(np.percentile(samples, 99) * 1e6),
        "estimate_p50_us": float(np.percentile(estimate, 50) * 1e6),
    }


def run(plan: EvalPlan, settings: Settings) -> EvalResult:
    embedder = OnnxEmbedder(settings.embedder_dir, intra_op_threads=settings.ort_intra_op_threads)
    budget = settings.token_budget
    examples = data.dedupe(data.load_examples(plan.data, budget))
    catalog = Catalog.load(plan.catalog)
    models = data.model_names(examples)
    entries = {}
    for model in models:
        entry = catalog.lookup(model)
        if entry is None or entry.blended_cost is None:
            raise InvalidRequest(f"{plan.catalog} has no price for model {model!r}", field="catalog")
        entries[model] = entry
    costs = np.array([entries[m].blended_cost for m in models], dtype=np.float64)
    premium = np.array([entries[m].tier == "premium" for m in models])
    actual, mask = data.score_matrix(examples, models)
    if not mask.all():
        raise InvalidRequest("evaluation rows must score every model (routing accuracy needs all)")
    x = embed_examples(embedder, examples, budget, plan.cache_dir)
    info: dict[str, Any] = {
        "eval_rows": len(examples),
        "eval_sha256": data.data_hash(examples),
        "embedder": embedder.name,
        "embedder_sha256": embedder.fingerprint,
        "token_budget": budget,
        "complexity_sha256": sha256_file(settings.models_path / "complexity.json"),
    }
    split_hash = None
    if plan.train_data is not None:
        ts = training_set(plan.train_data, plan.data, budget)
        split_hash = ts.info["data_sha256"]
        info["train"] = ts.info
        raw = data.load_examples(plan.train_data, budget)
        info["eval_prompts_in_raw_train_file"] = len(raw) - len(data.exclude(raw, examples))
    complexity, length = _complexity_and_length(examples, x, settings, embedder)
    routers, refused = _load_routers(plan, embedder)
    results = []
    for router in routers:
        raw_pred = router.predict(x).astype(np.float64)
        predicted = np.full((len(examples), len(models)), np.nan)
        for j, model in enumerate(models):
            col = router.column(entries[model])
            if col is not None:
                predicted[:, j] = raw_pred[:, col]
        trained_on = router.manifest.training.get("data_sha256")
        results.append(
            RouterResult(
                name=router.name,
                kind=router.manifest.kind,
                predicted=predicted,
                graph_bytes=(plan.routers / router.manifest.graph_file).stat().st_size,
                verified_split=None if split_hash is None else trained_on == split_hash,
                timing_us=_timing(router, x[0], plan.timing_runs, catalog),
            )
        )
    for strong, weak in plan.pairs:
        for model in (strong, weak):
            if model not in models:
                raise InvalidRequest(f"pair model {model!r} is not scored in {plan.data}", field="pair")
    return EvalResult(
        plan=plan,
        models=models,
        costs=costs,
        premium=premium,
        actual=actual.astype(np.float64),
        routers=results,
        baseline_scores={"prompt length": length, "centroid complexity": complexity},
        info=info,
        refused=refused,
    )


# ---------------------------------------------------------------- derived numbers


def pair_curves(result: EvalResult, strong: str, weak: str) -> dict[str, PairCurve]:
    i, j = result.models.index(strong), result.models.index(weak)
    qs, qw = result.actual[:, i], result.actual[:, j]
    n = len(qs)
    curves = {"random": pair_curve(np.zeros(n), qs, qw)}
    for name, score in result.baseline_scores.items():
        curves[name] = pair_curve(score, qs, qw)
    for router in result.routers:
        p = router.predicted
        if not (np.isnan(p[:, i]).any() or np.isnan(p[:, j]).any()):
            curves[router.name] = pair_curve(p[:, i] - p[:, j], qs, qw)
    curves["oracle"] = pair_curve(qs - qw, qs, qw)
    return curves


def routing_summary(result: EvalResult, router: RouterResult) -> dict[str, float]:
    known = ~np.isnan(router.predicted).any(axis=0)
    p, y = router.predicted[:, known], result.actual[:, known]
    rows = np.arange(len(y))
    pick = p.argmax(axis=1)
    aucs = [auc(p[:, m], y[:, m] >= 0.5) for m in range(p.shape[1])]
    return {
        "mae": float(np.abs(p - y).mean()),
        "auc": float(np.nanmean(aucs)),
        "accuracy": float((y[rows, pick] >= y.max(axis=1) - 1e-9).mean()),
        "quality": float(y[rows, pick].mean()),
        "cost": float(result.costs[known][pick].mean()),
    }


def threshold_curve(result: EvalResult, router: RouterResult) -> list[dict[str, float]]:
    """Cost, quality and premium share of the serving rule at thresholds 0..1."""
    known = ~np.isnan(router.predicted).any(axis=0)
    p, y = router.predicted[:, known], result.actual[:, known]
    costs, premium = result.costs[known], result.premium[known]
    rows = np.arange(len(y))
    out = []
    for threshold in np.linspace(0.0, 1.0, 101):
        pick = threshold_policy(p, costs, float(threshold))
        out.append(
            {
                "threshold": float(threshold),
                "quality": float(y[rows, pick].mean()),
                "cost": float(costs[pick].mean()),
                "premium_share": float(premium[pick].mean()),
            }
        )
    return out


def per_model_auc(result: EvalResult, router: RouterResult) -> dict[str, float]:
    return {
        model: auc(router.predicted[:, m], result.actual[:, m] >= 0.5)
        for m, model in enumerate(result.models)
        if not np.isnan(router.predicted[:, m]).any()
    }
