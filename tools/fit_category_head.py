"""Fit the category head (models/category_head.json) on the category prototypes — the one rebuild.

Data: the `categories` prototypes of models/prototypes.yaml (written by the project), embedded
exactly as a request is (the service's text extraction, at the serving token budget). Nothing
from the evaluation sets (bench/data/labelled_prompts.jsonl, LLMRouter's test queries) is read.

The one setting, the L2 strength, is chosen by 5-fold cross-validation over the prototypes
(folds fixed by seed); the printed table compares the head with nearest-centroid on the same
folds. Classes are weighted to equal total weight, so a class with more prototypes does not win
ties by count.

Usage:
  python tools/fit_category_head.py            # cross-validation table only
  python tools/fit_category_head.py --write    # and write models/category_head.json
  routeiq artifacts manifest                   # then re-pin the models folder
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import numpy.typing as npt

from routeiq.decision import category_head
from routeiq.decision.centroids import load_prototypes
from routeiq.decision.prompt import embed_segments, view_of
from routeiq.decision.schemas import RouteRequest
from routeiq.inference.embedder import OnnxEmbedder
from routeiq.settings import Settings

F32 = npt.NDArray[np.float32]
L2_GRID = (1e-4, 1e-3, 1e-2, 3e-2)
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


def centroid_predict(x: F32, y: npt.NDArray[np.int64], classes: int, test: F32) -> npt.NDArray[np.int64]:
    means = np.stack([x[y == c].mean(axis=0) for c in range(classes)])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    out: npt.NDArray[np.int64] = (test @ means.T).argmax(axis=1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    embedder = OnnxEmbedder(settings.embedder_dir, intra_op_threads=settings.ort_intra_op_threads)
    path = settings.models_path / "prototypes.yaml"
    prototypes = load_prototypes(path)["categories"]
    labels = tuple(prototypes)
    texts = [p for label in labels for p in prototypes[label]]
    y = np.asarray([i for i, label in enumerate(labels) for _ in prototypes[label]], dtype=np.int64)
    budget = settings.token_budget
    x = np.stack(
        [embedder.embed([embed_segments(view_of(RouteRequest(prompt=t)), budget)], budget)[0] for t in texts]
    ).astype(np.float32)

    folds = np.random.default_rng(SEED).integers(0, FOLDS, len(y))
    k = len(labels)
    cv: dict[str, float] = {}
    for name, l2 in [("centroid", None), *((f"head l2={v:g}", v) for v in L2_GRID)]:
        right = 0
        for f in range(FOLDS):
            tr, te = folds != f, folds == f
            if l2 is None:
                pred = centroid_predict(x[tr], y[tr], k, x[te])
            else:
                w, b = fit(x[tr], y[tr], k, l2)
                pred = (x[te] @ w + b).argmax(axis=1)
            right += int((pred == y[te]).sum())
        cv[name] = right / len(y)
    print(f"{FOLDS}-fold CV accuracy over {len(y)} prototypes ({k} categories, budget {budget}):")
    for name, acc in cv.items():
        print(f"  {name}: {acc:.3f}")
    best = max(L2_GRID, key=lambda v: (cv[f"head l2={v:g}"], v))
    print(f"chosen l2 = {best:g}")
    if not args.write:
        return
    w, b = fit(x, y, k, best)
    head = category_head.CategoryHead(embedder=embedder.fingerprint, labels=labels, weights=w, bias=b)
    about = {
        "fitted_by": "python tools/fit_category_head.py --write",
        "data": "models/prototypes.yaml categories",
        "prototypes_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "token_budget": budget,
        "l2": best,
        "cv_accuracy": {name: round(acc, 4) for name, acc in cv.items()},
    }
    out = settings.models_path / "category_head.json"
    out.write_text(json.dumps(category_head.to_json(head, about)) + "\n", encoding="utf-8")
    print(f"wrote {out}; now run `routeiq artifacts manifest`")


if __name__ == "__main__":
    main()
