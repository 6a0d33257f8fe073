"""Fit the category head (models/category_head.json) on the category prototypes — the one rebuild.

Data: the `categories` prototypes of models/prototypes.yaml (written by the project), embedded
exactly as a request is (the service's text extraction, at the serving token budget). Nothing
from the evaluation sets is fitted on or scored: bench/data/labelled_prompts.jsonl is not read,
and LLMRouter's test queries are read only to remove them from the validation rows.

Three settings are chosen, each candidate scored by the service's own `classify()` (signals and
rules included, so a head whose confidence keeps the low-confidence rules from firing where
they would help loses there):
- the L2 strength,
- a temperature the logits are divided by (how sure the head's probabilities are),
- the share of the nearest-centroid softmax mixed into the head's probabilities;
only candidates that leave at most 2 points more prompts below the confidence line than the
centroids do are eligible (below it policy ignores the category, so an unsure head changes
routing too). Scores: (a) 5-fold cross-validation over the prototypes (folds fixed by seed;
centroids and head refitted per fold) and, with `--rows`, (b) the LLMRouter train-side rows
built by tools/decontaminate.py (mapped tasks only, at most 150 per category); the choice is the
best mean of (a) and (b). Classes are weighted to equal total weight, so a class with more
prototypes does not win ties by count.

Usage:
  python tools/fit_category_head.py [--rows ROWS.jsonl --llmrouter DIR]            # table only
  python tools/fit_category_head.py [--rows ROWS.jsonl --llmrouter DIR] --write    # and write
  routeiq artifacts manifest                   # then re-pin the models folder
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from routeiq.decision import category_head, centroids
from routeiq.decision.centroids import Centroids, CentroidSet, load_prototypes
from routeiq.decision.classify import ComplexityModel, classify
from routeiq.decision.prompt import embed_segments, view_of
from routeiq.decision.schemas import RouteRequest
from routeiq.decision.signals import Signals, extract_signals
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.settings import Settings

F32 = npt.NDArray[np.float32]
L2_GRID = (1e-4, 1e-3, 1e-2)
TEMPERATURES = (0.25, 0.5, 1.0, 2.0)
CENTROID_WEIGHTS = (0.0, 0.5)
LOW_CONFIDENCE_SLACK = 0.02
PER_CATEGORY = 150
ROOT = Path(__file__).resolve().parents[1]
FOLDS = 5
SEED = 0


def fit(x: F32, y: npt.NDArray[np.int64], classes: int, l2: float, iters: int = 800) -> tuple[F32, F32]:
    """Multinomial logistic regression, class-balanced, by full-batch gradient descent (the
    problem is small and convex; no optimiser dependency)."""
    n, dim = x.shape
    onehot = np.eye(classes)[y]
    counts = np.bincount(y, minlength=classes).astype(np.float64)
    sample = (n / (classes * np.maximum(counts, 1)))[y]
    w = np.zeros((dim, classes))
    b = np.zeros(classes)
    step = 2.0
    for _ in range(iters):
        z = x @ w + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) * sample[:, None] / n
        w -= step * (x.T @ g + l2 * w)
        b -= step * g.sum(axis=0)
    return w.astype(np.float32), b.astype(np.float32)


def _embed(embedder: OnnxEmbedder, texts: list[str], budget: int) -> tuple[F32, list[Signals]]:
    views = [view_of(RouteRequest(prompt=t)) for t in texts]
    x = np.stack([embedder.embed([embed_segments(v, budget)], budget)[0] for v in views]).astype(np.float32)
    return x, [extract_signals(v, 0) for v in views]


def _with_centroids(base: Centroids, labels: tuple[str, ...], x: F32, y: npt.NDArray[np.int64]) -> Centroids:
    means = np.stack([x[y == c].mean(axis=0) for c in range(len(labels))])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    counts = tuple(int((y == c).sum()) for c in range(len(labels)))
    return replace(base, categories=CentroidSet(labels, means.astype(np.float32), counts), head=None)


def _accuracy(
    found: Centroids,
    x: F32,
    sigs: list[Signals],
    y: npt.NDArray[np.int64],
    model: ComplexityModel,
    floor: float,
) -> tuple[float, float]:
    """Accuracy, and the share of prompts left below the confidence line (policy then ignores
    the category: a head that is right but unsure changes routing as much as one that is wrong)."""
    labels = found.categories.labels
    got = [classify(v, s, found, model, min_confidence=floor) for v, s in zip(x, sigs, strict=True)]
    right = float(np.mean([labels.index(g.category) == t for g, t in zip(got, y, strict=True)]))
    return right, float(np.mean([g.low_confidence for g in got]))


def _validation_rows(
    rows: Path, llmrouter: Path | None, labels: tuple[str, ...]
) -> tuple[list[str], list[int]]:
    mapping = json.loads((ROOT / "bench/data/task_category_map.json").read_text())["map"]
    held: set[str] = set()
    if llmrouter is not None:  # keep LLMRouter's test queries out of every choice
        for line in (llmrouter / "default_query_test.jsonl").read_text(encoding="utf-8").split("\n"):
            if line.strip():
                held.add(json.loads(line)["query"])
    by: dict[str, list[str]] = defaultdict(list)
    for line in rows.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        row = json.loads(line)
        category = mapping.get(row["source"])
        if category in labels and row["prompt"] not in held:
            by[category].append(row["prompt"])
    rng = np.random.default_rng(SEED)
    texts, ys = [], []
    for category, prompts in sorted(by.items()):
        for i in rng.permutation(len(prompts))[:PER_CATEGORY]:
            texts.append(prompts[int(i)])
            ys.append(labels.index(category))
    return texts, ys


def _head(
    fingerprint: str, labels: tuple[str, ...], w: F32, b: F32, temperature: float, centroid_weight: float
) -> category_head.CategoryHead:
    return category_head.CategoryHead(
        embedder=fingerprint,
        labels=labels,
        weights=(w / temperature).astype(np.float32),
        bias=(b / temperature).astype(np.float32),
        centroid_weight=centroid_weight,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    parser.add_argument(
        "--rows", type=Path, help="routing rows from tools/decontaminate.py build (validation)"
    )
    parser.add_argument(
        "--llmrouter",
        type=Path,
        default=os.environ.get("LLMROUTER_DATA"),
        help="LLMRouter data folder: its test queries are removed from the validation rows",
    )
    args = parser.parse_args()
    settings = Settings()
    floor = settings.min_category_confidence
    embedder = OnnxEmbedder(settings.embedder_dir, intra_op_threads=settings.ort_intra_op_threads)
    models = settings.models_path
    path = models / "prototypes.yaml"
    model = ComplexityModel.load(models / "complexity.json")
    base = centroids.build(embedder, load_prototypes(path))
    prototypes = load_prototypes(path)["categories"]
    labels = tuple(prototypes)
    k = len(labels)
    budget = settings.token_budget
    texts = [p for label in labels for p in prototypes[label]]
    y = np.asarray([i for i, label in enumerate(labels) for _ in prototypes[label]], dtype=np.int64)
    x, sigs = _embed(embedder, texts, budget)
    val: tuple[F32, list[Signals], npt.NDArray[np.int64]] | None = None
    if args.rows:
        vt, vy = _validation_rows(args.rows, Path(args.llmrouter) if args.llmrouter else None, labels)
        vx, vs = _embed(embedder, vt, budget)
        val = (vx, vs, np.asarray(vy, dtype=np.int64))

    folds = np.random.default_rng(SEED).integers(0, FOLDS, len(y))
    candidates: list[tuple[str, float | None, float, float]] = [("centroid", None, 1.0, 1.0)]
    candidates += [
        (f"head l2={l2:g} T={t:g} centroid share={m:g}", l2, t, m)
        for l2 in L2_GRID
        for t in TEMPERATURES
        for m in CENTROID_WEIGHTS
    ]
    cv: dict[str, list[float]] = defaultdict(list)
    cv_low: dict[str, list[float]] = defaultdict(list)
    for f in range(FOLDS):
        tr, te = folds != f, folds == f
        fold = _with_centroids(base, labels, x[tr], y[tr])
        te_sigs = [sigs[i] for i in np.flatnonzero(te)]
        heads = {l2: fit(x[tr], y[tr], k, l2) for l2 in L2_GRID}
        for name, l2, t, m in candidates:
            found = fold
            if l2 is not None:
                w, b = heads[l2]
                found = replace(fold, head=_head(embedder.fingerprint, labels, w, b, t, m))
            right, low = _accuracy(found, x[te], te_sigs, y[te], model, floor)
            cv[name].append(right)
            cv_low[name].append(low)
    whole = {l2: fit(x, y, k, l2) for l2 in L2_GRID}
    table: dict[str, dict[str, float]] = {}
    print(f"Category accuracy through classify() (rules included), budget {budget}, {len(y)} prototypes:")
    print("| candidate | prototype 5-fold CV | LLMRouter train-side rows | mean | low-confidence share |")
    print("|---|---|---|---|---|")
    for name, l2, t, m in candidates:
        row = {"prototype_cv": float(np.mean(cv[name]))}
        lows = [float(np.mean(cv_low[name]))]
        if val is not None:
            found = replace(base, head=None)
            if l2 is not None:
                w, b = whole[l2]
                found = replace(base, head=_head(embedder.fingerprint, labels, w, b, t, m))
            row["llmrouter_train_rows"], low = _accuracy(found, *val, model, floor)
            lows.append(low)
        row["mean"] = float(np.mean(list(row.values())))
        row["low_confidence_share"] = float(np.mean(lows))
        table[name] = row
        rows_cell = f"{row['llmrouter_train_rows']:.3f}" if val is not None else "—"
        print(
            f"| {name} | {row['prototype_cv']:.3f} | {rows_cell} | {row['mean']:.3f} | "
            f"{row['low_confidence_share']:.3f} |"
        )
    # A head may not leave more prompts below the confidence line than the centroids do.
    ceiling = table["centroid"]["low_confidence_share"] + LOW_CONFIDENCE_SLACK
    heads_only = [
        c for c in candidates if c[1] is not None and table[c[0]]["low_confidence_share"] <= ceiling
    ]
    name, l2, t, m = max(heads_only, key=lambda c: table[c[0]]["mean"])
    assert l2 is not None
    print(f"chosen: {name}")
    if not args.write:
        return
    w, b = whole[l2]
    head = _head(embedder.fingerprint, labels, w, b, t, m)
    about = {
        "fitted_by": "python tools/fit_category_head.py"
        + (" --rows ROWS" if val is not None else "")
        + " --write",
        "data": "models/prototypes.yaml categories",
        "prototypes_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "token_budget": budget,
        "l2": l2,
        "temperature": t,
        "centroid_share": m,
        "validation": {n: {k2: round(v, 4) for k2, v in r.items()} for n, r in table.items()},
    }
    out = models / "category_head.json"
    out.write_text(json.dumps(category_head.to_json(head, about)) + "\n", encoding="utf-8")
    print(f"wrote {out}; now run `routeiq artifacts manifest`")


if __name__ == "__main__":
    main()
