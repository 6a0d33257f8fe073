"""The category head: a multinomial logistic layer over the embedding (`models/category_head.json`).

Nearest-centroid keeps one mean per class, so a class whose prompts spread over several styles
(a one-line chat question and a long support message are both `conversation`) is summarised by a
point between them. A linear layer fitted on the same prototypes can weigh the directions that
separate classes; on prototypes held out by cross-validation it makes fewer mistakes (the
numbers are in bench/RESULTS.md, "Category head"). It is plain JSON (weights, bias, labels), bound
to the embedder that made it like the centroids, and fitted by `tools/fit_category_head.py`.

The head answers only for the bundled categories: a user or tenant prototype file (which may add
a category or move one) switches the decision back to centroids rebuilt from all prototypes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from routeiq.artifacts.files import load_json
from routeiq.errors import ArtifactError


@dataclass(frozen=True)
class CategoryHead:
    embedder: str  # sha256 of the embedder graph the head was fitted on
    labels: tuple[str, ...]
    weights: npt.NDArray[np.float32]  # (dim, classes)
    bias: npt.NDArray[np.float32]  # (classes,)
    # Share of the nearest-centroid softmax mixed into the head's probabilities (0 = head alone):
    # chosen with the weights by tools/fit_category_head.py.
    centroid_weight: float = 0.0

    def probabilities(self, vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        z = (vector @ self.weights + self.bias).astype(np.float64)
        z -= z.max()
        e = np.exp(z)
        probs: npt.NDArray[np.float64] = e / e.sum()
        return probs


def to_json(head: CategoryHead, about: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "embedder_sha256": head.embedder,
        "labels": list(head.labels),
        "weights": [[round(float(x), 6) for x in row] for row in head.weights],
        "bias": [round(float(x), 6) for x in head.bias],
        "centroid_weight": head.centroid_weight,
        "about": about,
    }


def load(path: Path, fingerprint: str, dimension: int) -> CategoryHead:
    data = load_json(path, what="category head")
    if not isinstance(data, dict):
        raise ArtifactError(f"category head {path} must be a JSON object")
    if data.get("embedder_sha256") != fingerprint:
        raise ArtifactError(
            f"category head {path} was fitted on embedder {data.get('embedder_sha256')!r}, but the "
            f"loaded embedder is {fingerprint!r}; run `python tools/fit_category_head.py --write`."
        )
    try:
        labels = tuple(str(x) for x in data["labels"])
        weights = np.asarray(data["weights"], dtype=np.float32)
        bias = np.asarray(data["bias"], dtype=np.float32)
        centroid_weight = float(data.get("centroid_weight", 0.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"category head {path} is malformed: {exc!r}") from exc
    if len(set(labels)) != len(labels) or len(labels) < 2:
        raise ArtifactError(f"category head {path}: labels must be at least two distinct names")
    if weights.shape != (dimension, len(labels)) or bias.shape != (len(labels),):
        raise ArtifactError(
            f"category head {path}: weights {weights.shape} / bias {bias.shape} do not fit "
            f"dimension {dimension} and {len(labels)} labels"
        )
    if not (np.isfinite(weights).all() and np.isfinite(bias).all()):
        raise ArtifactError(f"category head {path}: weights must be finite numbers")
    if not 0.0 <= centroid_weight <= 1.0:
        raise ArtifactError(f"category head {path}: centroid_weight must be in [0, 1]")
    return CategoryHead(
        embedder=fingerprint, labels=labels, weights=weights, bias=bias, centroid_weight=centroid_weight
    )
