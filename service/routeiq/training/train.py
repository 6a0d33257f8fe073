"""`routeiq train`: data -> embeddings (cached) -> trainers -> ONNX graphs + manifests."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routeiq.errors import InvalidRequest
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.trained.manifest import KINDS, NAME_PATTERN, RouterManifest
from routeiq.training import data
from routeiq.training.embeddings import DEFAULT_CACHE_DIR, embed_examples
from routeiq.training.export import write_router
from routeiq.training.trainers import CHOSEN, TRAINERS, Trained, masked_bce

log = logging.getLogger("routeiq.training")


@dataclass(frozen=True)
class TrainPlan:
    data: Path
    out: Path
    prefix: str
    token_budget: int  # the service's ROUTEIQ_TOKEN_BUDGET: train on the vectors it will serve
    kinds: tuple[str, ...] = KINDS
    holdout: Path | None = None
    val_share: float = 0.1
    seed: int = 0
    cache_dir: Path | None = DEFAULT_CACHE_DIR


@dataclass(frozen=True)
class TrainingSet:
    examples: list[data.Example]
    info: dict[str, Any]


def training_set(path: Path, holdout: Path | None, budget: int) -> TrainingSet:
    """The rows a router trains on: deduplicated by prompt, minus every prompt of `holdout`."""
    rows = data.load_examples(path, budget)
    unique = data.dedupe(rows)
    info: dict[str, Any] = {
        "source": path.name,
        "rows_in_file": len(rows),
        "duplicates_dropped": len(rows) - len(unique),
    }
    examples = unique
    if holdout is not None:
        held = data.load_examples(holdout, budget)
        examples = data.exclude(unique, held)
        info["holdout"] = holdout.name
        info["holdout_sha256"] = data.data_hash(held)
        info["holdout_prompts_dropped"] = len(unique) - len(examples)
    if len(examples) < 10:
        raise InvalidRequest(f"{path}: only {len(examples)} usable rows; need at least 10", field="data")
    info["rows"] = len(examples)
    info["data_sha256"] = data.data_hash(examples)
    return TrainingSet(examples, info)


def run(plan: TrainPlan, embedder: OnnxEmbedder) -> list[tuple[RouterManifest, Trained]]:
    """Train every kind in the plan; each router's manifest and the parameters in its graph."""
    unknown = set(plan.kinds) - set(KINDS)
    if unknown:
        raise InvalidRequest(f"unknown router kinds {sorted(unknown)}; known: {list(KINDS)}", field="kinds")
    for kind in plan.kinds:
        if not NAME_PATTERN.match(f"{plan.prefix}-{kind}"):
            raise InvalidRequest(f"router name prefix {plan.prefix!r} must match {NAME_PATTERN.pattern}")
    ts = training_set(plan.data, plan.holdout, plan.token_budget)
    x = embed_examples(embedder, ts.examples, plan.token_budget, plan.cache_dir)
    models = data.model_names(ts.examples)
    y, mask = data.score_matrix(ts.examples, models)
    rng = np.random.default_rng(plan.seed)
    order = rng.permutation(len(x))
    n_val = int(len(x) * plan.val_share)
    val_rows, fit_rows = order[:n_val], order[n_val:]
    manifests: list[tuple[RouterManifest, Trained]] = []
    for kind in plan.kinds:
        start = time.perf_counter()
        val = (x[val_rows], y[val_rows], mask[val_rows]) if n_val else None
        # Choose settings on the validation slice, then refit on every row with them.
        probe = TRAINERS[kind](x[fit_rows], y[fit_rows], mask[fit_rows], val=val)
        metrics: dict[str, Any] = {}
        if val is not None:
            pred = probe.predict(val[0])
            metrics = {
                "validation_rows": n_val,
                "validation_bce": round(masked_bce(pred, val[1], val[2]), 4),
                "validation_mae": round(float((np.abs(pred - val[1]) * val[2]).sum() / val[2].sum()), 4),
            }
        final = _refit(kind, probe.settings, x, y, mask)
        name = f"{plan.prefix}-{kind}"
        manifest = write_router(
            plan.out,
            name,
            final,
            models=models,
            embedder_name=embedder.name,
            embedder_sha256=embedder.fingerprint,
            dimension=embedder.dimension,
            token_budget=plan.token_budget,
            training={**ts.info, "seed": plan.seed, "validation_share": plan.val_share},
            metrics=metrics,
        )
        log.info("trained %s in %.1f s", name, time.perf_counter() - start)
        manifests.append((manifest, final))
    return manifests


def _refit(kind: str, settings: dict[str, Any], x: Any, y: Any, mask: Any) -> Trained:
    """The final router on all rows, with the setting the validation slice chose."""
    chosen = CHOSEN[kind]
    trained: Trained = TRAINERS[kind](x, y, mask, val=None, **{chosen: int(settings[chosen])})
    return trained
