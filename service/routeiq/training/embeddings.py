"""Embed training prompts exactly as the service does, cached on disk between runs.

The cache key binds the embedder's sha256, the token budget and the text of every prompt, so a
stale file can never be reused for other prompts or another model. Files are plain `.npy`
(loaded with allow_pickle=False).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from routeiq.inference.embedder import OnnxEmbedder
from routeiq.training.data import Example

log = logging.getLogger("routeiq.training")

DEFAULT_CACHE_DIR = Path(".cache/routeiq/embeddings")


def cache_path(cache_dir: Path, embedder: OnnxEmbedder, budget: int, examples: Sequence[Example]) -> Path:
    digest = hashlib.sha256()
    for example in examples:
        digest.update("\x1f".join(example.segments).encode("utf-8", "surrogatepass"))
        digest.update(b"\x1e")
    name = f"{embedder.fingerprint[:16]}-b{budget}-n{len(examples)}-{digest.hexdigest()[:24]}.npy"
    return cache_dir / name


def embed_examples(
    embedder: OnnxEmbedder,
    examples: Sequence[Example],
    budget: int,
    cache_dir: Path | None = DEFAULT_CACHE_DIR,
) -> npt.NDArray[np.float32]:
    """[n, dim] L2-normalised vectors, one per example, batch-1 like the live service."""
    path = cache_path(cache_dir, embedder, budget, examples) if cache_dir is not None else None
    if path is not None and path.is_file():
        cached = np.load(path, allow_pickle=False)
        if cached.shape == (len(examples), embedder.dimension):
            return np.asarray(cached, dtype=np.float32)
    start = time.perf_counter()
    vectors = embedder.embed([list(e.segments) for e in examples], budget)
    log.info("embedded %d prompts in %.1f s", len(examples), time.perf_counter() - start)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, vectors, allow_pickle=False)
        tmp.replace(path)
    return vectors
