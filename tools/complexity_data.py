"""Per-prompt complexity features for the dcrouter data, computed by the service's own stages.

Used by bench/eval_complexity.py (the in-distribution dcrouter_test check). Vectors are cached under .cache/
keyed by the embedder sha256 and the data file's hash, so refits take seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from routeiq.decision.centroids import Centroids
from routeiq.decision.classify import ComplexityModel, classify
from routeiq.decision.prompt import embed_segments, view_of
from routeiq.decision.schemas import RouteRequest
from routeiq.decision.signals import Signals, extract_signals
from routeiq.inference.embedder import OnnxEmbedder

ROOT = Path(__file__).resolve().parents[1]
# The public LLMRouter data folder (ulab-uiuc/LLMRouter, data/; MIT), not kept in this repository.
DATA = Path(os.environ.get("LLMROUTER_DATA", "llmrouter-data-not-set"))
CACHE = ROOT / ".cache"


@dataclass
class Split:
    prompts: list[str]
    scores: np.ndarray  # (n, models)
    models: list[str]
    vectors: np.ndarray
    signals: list[Signals]


def load_split(path: Path, embedder: OnnxEmbedder, budget: int, exclude: set[str] = frozenset()) -> Split:
    rows = [r for r in json.loads(path.read_text()) if r["question"] not in exclude]
    seen: set[str] = set()
    unique = [r for r in rows if not (r["question"] in seen or seen.add(r["question"]))]
    models = list(unique[0]["scores"])
    prompts = [r["question"] for r in unique]
    scores = np.array([[r["scores"][m] for m in models] for r in unique], dtype=np.float64)
    views = [view_of(RouteRequest(prompt=p)) for p in prompts]
    key = hashlib.sha256(("\x1e".join(prompts) + embedder.fingerprint + str(budget)).encode()).hexdigest()[
        :16
    ]
    cache = CACHE / f"vectors-{path.stem}-{key}.npy"
    if cache.exists():
        vectors = np.load(cache)
    else:
        vectors = embedder.embed([embed_segments(v, budget) for v in views], budget)
        CACHE.mkdir(exist_ok=True)
        np.save(cache, vectors)
    return Split(prompts, scores, models, vectors, [extract_signals(v, 0) for v in views])


def features(split: Split, centroids: Centroids, model: ComplexityModel, min_confidence: float):  # type: ignore[no-untyped-def]
    """(feature matrix over FEATURES without category_prior, categories or None, complexity now)."""
    rows, cats, now = [], [], []
    for vector, sig in zip(split.vectors, split.signals, strict=True):
        c = classify(vector, sig, centroids, model, min_confidence=min_confidence)
        rows.append(c.features)
        cats.append(None if c.low_confidence else c.category)
        now.append(c.complexity)
    return rows, cats, np.array(now)
