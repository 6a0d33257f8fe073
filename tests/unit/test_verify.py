"""`routeiq verify` (run by the Docker build): passes on the shipped models, refuses edited ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from routeiq.artifacts.integrity import write_manifest
from routeiq.cli import main
from routeiq.decision.centroids import Centroids, CentroidSet
from routeiq.errors import ArtifactError
from routeiq.selfcheck import CENTROID_TOLERANCE, compare, verify
from routeiq.settings import Settings, default_models_path


def _set(labels: tuple[str, ...], matrix: list[list[float]]) -> CentroidSet:
    return CentroidSet(labels, np.asarray(matrix, dtype=np.float32), tuple(1 for _ in labels))


def _centroids(categories: CentroidSet) -> Centroids:
    tiers = _set(("simple",), [[1.0, 0.0]])
    return Centroids(embedder="x", dimension=2, categories=categories, tiers=tiers)


def test_shipped_models_verify() -> None:
    report = verify(Settings())
    assert report.categories >= 2 and report.tiers == 5
    assert report.centroid_max_diff < 1e-4  # same machine class as the build: near bit-exact
    assert "ok: embedder" in report.summary()


def test_compare_accepts_order_changes_and_small_drift() -> None:
    stored = _centroids(_set(("a", "b"), [[1.0, 0.0], [0.0, 1.0]]))
    rebuilt = _centroids(_set(("b", "a"), [[0.0, 1.0 - CENTROID_TOLERANCE / 2], [1.0, 0.0]]))
    assert compare(stored, rebuilt) == pytest.approx(CENTROID_TOLERANCE / 2, rel=1e-3)


def test_compare_refuses_drift_and_missing_classes() -> None:
    stored = _centroids(_set(("a", "b"), [[1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(ArtifactError, match=r"categories\.b differ"):
        compare(stored, _centroids(_set(("a", "b"), [[1.0, 0.0], [0.0, 0.99]])))
    with pytest.raises(ArtifactError, match="differ from the prototypes"):
        compare(stored, _centroids(_set(("a",), [[1.0, 0.0]])))


def test_edited_centroids_file_fails_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = default_models_path()
    models = tmp_path / "models"
    shutil.copytree(shipped, models, ignore=shutil.ignore_patterns("embedder"))
    data = json.loads((models / "centroids.json").read_text(encoding="utf-8"))
    label = next(iter(data["categories"]))
    data["categories"][label]["vector"][0] += 0.01  # a hand edit, small enough to look harmless
    (models / "centroids.json").write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setenv("ROUTEIQ_MODELS_PATH", str(models))
    monkeypatch.setenv("ROUTEIQ_EMBEDDER_PATH", str(shipped / "embedder"))

    # models/manifest.json pins the file: the edit is refused before anything is rebuilt ...
    assert main(["verify"]) == 2
    assert "centroids.json" in capsys.readouterr().err
    # ... and an edit whose author also regenerated the manifest is still caught by the rebuild.
    write_manifest(models)
    assert main(["verify"]) == 2
    assert f"categories.{label} differ from a rebuild" in capsys.readouterr().err
