"""Serving trained routers: verify, load into onnxruntime, predict per-candidate quality.

A router is refused (ArtifactError, with the reason) when its manifest is malformed, its graph's
sha256 differs from the manifest, or it was trained on another embedder's vectors (its
predictions would be meaningless). The graph is hashed from the very bytes handed to
onnxruntime.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from routeiq.artifacts.integrity import verified_bytes
from routeiq.decision.catalog import CatalogEntry
from routeiq.decision.classify import Classification
from routeiq.decision.estimators import PRIOR_SOURCE, Estimator
from routeiq.decision.names import TRAINED_PREFIX, model_names
from routeiq.errors import ArtifactError
from routeiq.inference.onnx import onnx_session
from routeiq.trained.manifest import INPUT_NAME, OUTPUT_NAME, RouterManifest

log = logging.getLogger("routeiq.trained")


class TrainedRouter:
    """One verified router graph on an onnxruntime session: [N, dim] embeddings -> [N, models]."""

    def __init__(self, manifest_path: Path, embedder_sha256: str, *, intra_op_threads: int = 1) -> None:
        manifest = RouterManifest.load(manifest_path)
        if manifest.embedder_sha256 != embedder_sha256:
            raise ArtifactError(
                f"router {manifest.name!r} was trained on embedder {manifest.embedder_name} "
                f"(sha256 {manifest.embedder_sha256[:12]}…) but the service runs sha256 "
                f"{embedder_sha256[:12]}…; retrain it with `routeiq train` on this embedder"
            )
        graph = verified_bytes(
            manifest_path.with_name(manifest.graph_file),
            manifest.graph_sha256,
            what=f"router {manifest.name!r} graph",
        )
        session = onnx_session(
            graph, what=f"router {manifest.name!r} graph", intra_op_threads=intra_op_threads
        )
        self._check_signature(session, manifest)
        self._session = session
        self.manifest = manifest
        self.name = manifest.name
        self._columns: dict[str, int] = {}
        for index, model in enumerate(manifest.models):
            for key in model_names(model):
                self._columns.setdefault(key, index)

    @staticmethod
    def _check_signature(session: Any, manifest: RouterManifest) -> None:
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if [i.name for i in inputs] != [INPUT_NAME] or OUTPUT_NAME not in [o.name for o in outputs]:
            raise ArtifactError(
                f"router {manifest.name!r} graph must take {INPUT_NAME!r} and give {OUTPUT_NAME!r}"
            )
        width = inputs[0].shape[-1]
        if isinstance(width, int) and width != manifest.dimension:
            raise ArtifactError(
                f"router {manifest.name!r} takes {width}-d vectors, manifest says {manifest.dimension}"
            )

    def column(self, entry: CatalogEntry) -> int | None:
        """The output column for this candidate's model, or None when the router never saw it."""
        for key in model_names(entry.model, entry.model_group, entry.deployment_id):
            if key in self._columns:
                return self._columns[key]
        return None

    def predict(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        batch = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.manifest.dimension)
        out: npt.NDArray[np.float32] = self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]
        return out


class TrainedEstimator:
    """`ml:<name>`: the router's predicted quality per candidate; the fallback estimator's
    estimate (source "prior") for candidates whose model the router does not know."""

    def __init__(self, router: TrainedRouter, fallback: Estimator) -> None:
        self.router = router
        self.name = f"{TRAINED_PREFIX}{router.name}"
        self._fallback = fallback

    def estimate(
        self,
        vector: npt.NDArray[np.float32],
        classification: Classification,
        entries: Sequence[CatalogEntry],
    ) -> list[tuple[float, str]]:
        columns = [self.router.column(entry) for entry in entries]
        if all(c is None for c in columns):
            return self._fallback.estimate(vector, classification, entries)
        predicted = self.router.predict(vector)[0]
        prior: list[tuple[float, str]] | None = None
        out: list[tuple[float, str]] = []
        for index, column in enumerate(columns):
            if column is None:
                prior = prior or self._fallback.estimate(vector, classification, entries)
                out.append((prior[index][0], PRIOR_SOURCE))
            else:
                quality = min(max(float(predicted[column]), 0.0), 1.0)
                out.append((round(quality, 4), self.name))
        return out


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"loaded": self.loaded, "refused": self.refused}


def load_trained(
    folder: Path, embedder_sha256: str, fallback: Estimator, *, token_budget: int | None = None
) -> tuple[dict[str, Estimator], LoadReport]:
    """Every `<name>.json` + `<name>.onnx` in `folder` as `ml:<name>` estimators (the folder
    holds routers only). A router that fails verification is refused and reported, not loaded;
    the others still load. Whether a refusal stops start-up or a reload is the caller's call."""
    estimators: dict[str, Estimator] = {}
    report = LoadReport()
    if not folder.is_dir():
        return estimators, report
    for manifest_path in sorted(folder.glob("*.json")):
        try:
            router = TrainedRouter(manifest_path, embedder_sha256)
        except ArtifactError as exc:
            report.refused[manifest_path.stem] = exc.message
            log.error("router refused: %s", exc.message)
            continue
        if token_budget is not None and router.manifest.token_budget != token_budget:
            # Long prompts would be embedded differently from the training data: served, but said.
            log.warning(
                "router %s was trained with token budget %d, the service embeds %d tokens; "
                "retrain with the service's ROUTEIQ_TOKEN_BUDGET for matching vectors",
                router.name,
                router.manifest.token_budget,
                token_budget,
            )
        estimator = TrainedEstimator(router, fallback)
        estimators[estimator.name] = estimator
        report.loaded.append(estimator.name)
    return estimators, report
